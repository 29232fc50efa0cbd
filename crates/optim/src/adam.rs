//! Adam: bias-corrected first and second moment estimates.

use recur_core::{Float, ParamSet, Result};

use crate::kernel::{check_inputs, check_positive, check_unit, flush_subnormal, zip4};
use crate::state::{snapshot, PerSlot};
use crate::{Optimizer, OptimizerState};

/// Adam, at update number `t` (1 for the first step):
///
/// ```text
/// m ← β₁·m + (1 − β₁)·g          m̂ = m / (1 − β₁ᵗ)
/// v ← β₂·v + (1 − β₂)·g²         v̂ = v / (1 − β₂ᵗ)
/// θ ← θ − lr · m̂ / (√v̂ + ε)
/// ```
///
/// element-wise, with `m = v = 0` at the start. The bias corrections are recomputed from
/// the step count, so a resumed optimizer continues exactly. Sparse gradient rows are
/// ignored (the update is dense): both moments decay in every row.
///
/// ```
/// use ndarray::array;
/// use recur_optim::{Adam, Optimizer};
///
/// # fn main() -> recur_core::Result<()> {
/// let mut opt = Adam::new(0.001_f64, 0.9, 0.999, 1e-8)?;
/// let mut x = array![1.0];
/// opt.step(&mut x, &array![-3.0])?;
/// // After bias correction the first step has size ≈ lr whatever the gradient's scale.
/// assert!((x[0] - 1.001).abs() < 1e-9);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Adam<F> {
    lr: F,
    beta1: F,
    beta2: F,
    eps: F,
    steps: u64,
    /// First and second moments per slot.
    moments: PerSlot<F, 2>,
}

impl<F: Float> Adam<F> {
    /// Adam with learning rate `lr`, moment decays `beta1` and `beta2` (typically 0.9 and
    /// 0.999) and denominator offset `eps` (typically `1e-8`).
    ///
    /// # Errors
    /// [`recur_core::Error::InvalidConfig`] when `lr` or `eps` is not finite and positive,
    /// or a β is not in `[0, 1)`.
    pub fn new(lr: F, beta1: F, beta2: F, eps: F) -> Result<Self> {
        check_positive("learning rate", lr)?;
        check_unit("beta1", beta1)?;
        check_unit("beta2", beta2)?;
        check_positive("eps", eps)?;
        Ok(Self {
            lr,
            beta1,
            beta2,
            eps,
            steps: 0,
            moments: PerSlot::default(),
        })
    }

    /// The first-moment decay β₁.
    pub fn beta1(&self) -> F {
        self.beta1
    }

    /// The second-moment decay β₂.
    pub fn beta2(&self) -> F {
        self.beta2
    }

    /// The denominator offset ε.
    pub fn eps(&self) -> F {
        self.eps
    }
}

impl<F: Float> Optimizer<F> for Adam<F> {
    fn name(&self) -> &'static str {
        "adam"
    }

    fn step(&mut self, params: &mut dyn ParamSet<F>, grads: &dyn ParamSet<F>) -> Result<()> {
        check_inputs(params, grads, self.steps, false)?;
        self.moments.check(grads)?;
        let (lr, b1, b2, eps) = (self.lr, self.beta1, self.beta2, self.eps);
        let one = F::one();
        // Power of the update number, not a running product, so resuming is exact.
        let t = F::from_f64_lossy((self.steps + 1) as f64);
        let correction1 = one - b1.powf(t);
        let correction2 = one - b2.powf(t);
        let moments = self.moments.get_or_alloc(grads);
        for (i, (_, [m, v])) in moments.iter_mut().enumerate() {
            let (p, g) = (params.slot_mut(i).value, grads.slot(i).value);
            zip4(p, g, m.view_mut(), v.view_mut(), |p, g, m, v| {
                *m = flush_subnormal(b1 * *m + (one - b1) * g);
                *v = flush_subnormal(b2 * *v + (one - b2) * g * g);
                let m_hat = *m / correction1;
                let v_hat = *v / correction2;
                *p -= lr * m_hat / (v_hat.sqrt() + eps);
            });
        }
        self.steps += 1;
        Ok(())
    }

    crate::optimizer::rate_and_steps!();

    fn reset(&mut self) {
        self.steps = 0;
        self.moments.clear();
    }

    fn state(&self) -> OptimizerState<F> {
        snapshot(
            self.name(),
            &[
                ("lr", self.lr),
                ("beta1", self.beta1),
                ("beta2", self.beta2),
                ("eps", self.eps),
            ],
            self.steps,
            self.moments.to_state(),
        )
    }

    fn load_state(&mut self, mut state: OptimizerState<F>) -> Result<()> {
        let mut hyper = state.open(self.name())?;
        let lr = hyper.take("lr")?;
        let beta1 = hyper.take("beta1")?;
        let beta2 = hyper.take("beta2")?;
        let eps = hyper.take("eps")?;
        hyper.finish()?;
        let fresh = Self::new(lr, beta1, beta2, eps)?;
        let moments = PerSlot::from_state(self.name(), state.slots)?;
        *self = Self {
            steps: state.steps,
            moments,
            ..fresh
        };
        Ok(())
    }
}
