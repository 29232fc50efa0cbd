//! RMSprop: gradients divided by a running root-mean-square.

use recur_core::{Float, ParamSet, Result};

use crate::kernel::{check_inputs, check_positive, check_unit, flush_subnormal, zip3};
use crate::state::{snapshot, PerSlot};
use crate::{Optimizer, OptimizerState};

/// RMSprop: `s ← ρ·s + (1 − ρ)·g²`, `θ ← θ − lr · g / (√s + ε)`, element-wise, with `s`
/// starting at 0 and `ε` added outside the square root.
///
/// Sparse gradient rows are ignored (the update is dense): `s` decays in every row, so a
/// row-only update would differ from the dense one.
///
/// ```
/// use ndarray::array;
/// use recur_optim::{Optimizer, RmsProp};
///
/// # fn main() -> recur_core::Result<()> {
/// let mut opt = RmsProp::new(0.01_f64, 0.9, 1e-8)?;
/// let mut x = array![1.0];
/// opt.step(&mut x, &array![2.0])?; // s = 0.1 · 4 = 0.4
/// assert!((x[0] - (1.0 - 0.01 * 2.0 / (0.4_f64.sqrt() + 1e-8))).abs() < 1e-12);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RmsProp<F> {
    lr: F,
    decay: F,
    eps: F,
    steps: u64,
    mean_sq: PerSlot<F, 1>,
}

impl<F: Float> RmsProp<F> {
    /// RMSprop with learning rate `lr`, decay `decay` (ρ, typically 0.9) and denominator
    /// offset `eps` (typically `1e-8`).
    ///
    /// # Errors
    /// [`recur_core::Error::InvalidConfig`] when `lr` or `eps` is not finite and positive,
    /// or `decay` is not in `[0, 1)`.
    pub fn new(lr: F, decay: F, eps: F) -> Result<Self> {
        check_positive("learning rate", lr)?;
        check_unit("decay", decay)?;
        check_positive("eps", eps)?;
        Ok(Self {
            lr,
            decay,
            eps,
            steps: 0,
            mean_sq: PerSlot::default(),
        })
    }

    /// The decay ρ of the running mean of squared gradients.
    pub fn decay(&self) -> F {
        self.decay
    }

    /// The denominator offset ε.
    pub fn eps(&self) -> F {
        self.eps
    }
}

impl<F: Float> Optimizer<F> for RmsProp<F> {
    fn name(&self) -> &'static str {
        "rmsprop"
    }

    fn step(&mut self, params: &mut dyn ParamSet<F>, grads: &dyn ParamSet<F>) -> Result<()> {
        check_inputs(params, grads, self.steps, false)?;
        self.mean_sq.check(grads)?;
        let (lr, rho, eps) = (self.lr, self.decay, self.eps);
        let keep = F::one() - rho;
        let mean_sq = self.mean_sq.get_or_alloc(grads);
        for (i, (_, [s])) in mean_sq.iter_mut().enumerate() {
            let (p, g) = (params.slot_mut(i).value, grads.slot(i).value);
            zip3(p, g, s.view_mut(), |p, g, s| {
                *s = flush_subnormal(rho * *s + keep * g * g);
                *p -= lr * g / (s.sqrt() + eps);
            });
        }
        self.steps += 1;
        Ok(())
    }

    crate::optimizer::rate_and_steps!();

    fn reset(&mut self) {
        self.steps = 0;
        self.mean_sq.clear();
    }

    fn state(&self) -> OptimizerState<F> {
        snapshot(
            self.name(),
            &[("lr", self.lr), ("decay", self.decay), ("eps", self.eps)],
            self.steps,
            self.mean_sq.to_state(),
        )
    }

    fn load_state(&mut self, mut state: OptimizerState<F>) -> Result<()> {
        let mut hyper = state.open(self.name())?;
        let lr = hyper.take("lr")?;
        let decay = hyper.take("decay")?;
        let eps = hyper.take("eps")?;
        hyper.finish()?;
        let fresh = Self::new(lr, decay, eps)?;
        let mean_sq = PerSlot::from_state(self.name(), state.slots)?;
        *self = Self {
            steps: state.steps,
            mean_sq,
            ..fresh
        };
        Ok(())
    }
}
