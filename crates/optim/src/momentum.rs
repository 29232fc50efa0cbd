//! Gradient descent with (classic or Nesterov) momentum.

use recur_core::{Float, ParamSet, Result};

use crate::kernel::{check_inputs, check_positive, check_unit, flush_subnormal, zip3};
use crate::state::{snapshot, PerSlot};
use crate::{Optimizer, OptimizerState};

/// Gradient descent with momentum, in the form where the velocity accumulates raw
/// gradients and the learning rate multiplies the step (so changing the learning rate acts
/// at once):
///
/// - classic: `v ← μ·v + g`, `θ ← θ − lr · v`;
/// - Nesterov: `v ← μ·v + g`, `θ ← θ − lr · (g + μ·v)` (the look-ahead gradient step,
///   evaluated with the new velocity).
///
/// `v` starts at zero, so the first step equals SGD's. Sparse gradient rows are ignored
/// (the update is dense): rows without gradient still move by their decaying velocity.
///
/// ```
/// use ndarray::array;
/// use recur_optim::{Momentum, Optimizer};
///
/// # fn main() -> recur_core::Result<()> {
/// let mut opt = Momentum::new(0.1_f64, 0.9)?;
/// let mut x = array![1.0];
/// opt.step(&mut x, &array![1.0])?; // v = 1,   x = 1 − 0.1
/// opt.step(&mut x, &array![1.0])?; // v = 1.9, x = 0.9 − 0.19
/// assert!((x[0] - 0.71).abs() < 1e-12);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Momentum<F> {
    lr: F,
    momentum: F,
    nesterov: bool,
    steps: u64,
    velocity: PerSlot<F, 1>,
}

impl<F: Float> Momentum<F> {
    /// Classic momentum with learning rate `lr` and momentum coefficient `momentum` (μ).
    ///
    /// # Errors
    /// [`recur_core::Error::InvalidConfig`] when `lr` is not finite and positive or
    /// `momentum` is not in `[0, 1)`.
    pub fn new(lr: F, momentum: F) -> Result<Self> {
        Self::build(lr, momentum, false)
    }

    /// Nesterov momentum with learning rate `lr` and momentum coefficient `momentum` (μ).
    ///
    /// # Errors
    /// As [`Momentum::new`].
    pub fn nesterov(lr: F, momentum: F) -> Result<Self> {
        Self::build(lr, momentum, true)
    }

    fn build(lr: F, momentum: F, nesterov: bool) -> Result<Self> {
        check_positive("learning rate", lr)?;
        check_unit("momentum", momentum)?;
        Ok(Self {
            lr,
            momentum,
            nesterov,
            steps: 0,
            velocity: PerSlot::default(),
        })
    }

    /// The momentum coefficient μ.
    pub fn momentum(&self) -> F {
        self.momentum
    }

    /// Whether this is the Nesterov variant.
    pub fn is_nesterov(&self) -> bool {
        self.nesterov
    }
}

impl<F: Float> Optimizer<F> for Momentum<F> {
    fn name(&self) -> &'static str {
        if self.nesterov {
            "nesterov"
        } else {
            "momentum"
        }
    }

    fn step(&mut self, params: &mut dyn ParamSet<F>, grads: &dyn ParamSet<F>) -> Result<()> {
        check_inputs(params, grads, self.steps, false)?;
        self.velocity.check(grads)?;
        let (lr, mu) = (self.lr, self.momentum);
        let velocity = self.velocity.get_or_alloc(grads);
        for (i, (_, [v])) in velocity.iter_mut().enumerate() {
            let (p, g) = (params.slot_mut(i).value, grads.slot(i).value);
            if self.nesterov {
                zip3(p, g, v.view_mut(), |p, g, v| {
                    *v = flush_subnormal(mu * *v + g);
                    *p -= lr * (g + mu * *v);
                });
            } else {
                zip3(p, g, v.view_mut(), |p, g, v| {
                    *v = flush_subnormal(mu * *v + g);
                    *p -= lr * *v;
                });
            }
        }
        self.steps += 1;
        Ok(())
    }

    crate::optimizer::rate_and_steps!();

    fn reset(&mut self) {
        self.steps = 0;
        self.velocity.clear();
    }

    fn state(&self) -> OptimizerState<F> {
        snapshot(
            self.name(),
            &[("lr", self.lr), ("momentum", self.momentum)],
            self.steps,
            self.velocity.to_state(),
        )
    }

    fn load_state(&mut self, mut state: OptimizerState<F>) -> Result<()> {
        let mut hyper = state.open(self.name())?;
        let lr = hyper.take("lr")?;
        let momentum = hyper.take("momentum")?;
        hyper.finish()?;
        let fresh = Self::build(lr, momentum, self.nesterov)?;
        let velocity = PerSlot::from_state(self.name(), state.slots)?;
        *self = Self {
            steps: state.steps,
            velocity,
            ..fresh
        };
        Ok(())
    }
}
