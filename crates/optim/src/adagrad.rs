//! Adagrad: per-entry learning rates from the sum of squared gradients.

use ndarray::Axis;
use recur_core::{Float, ParamSet, Result};

use crate::kernel::{check_inputs, check_positive, for_each_unique_row, zip3};
use crate::state::{snapshot, PerSlot};
use crate::{Optimizer, OptimizerState};

/// Adagrad: `h ← h + g²`, `θ ← θ − lr · g / (√h + ε)`, element-wise, with `h` starting at 0.
///
/// `ε` is added outside the square root. Sparse gradient rows are honoured: a row without
/// gradient keeps both its `h` and its parameters, so updating only the listed rows gives
/// exactly the dense result (this is what makes Adagrad cheap on a large vocabulary).
///
/// ```
/// use ndarray::array;
/// use recur_optim::{Adagrad, Optimizer};
///
/// # fn main() -> recur_core::Result<()> {
/// let mut opt = Adagrad::new(0.1_f64, 1e-8)?;
/// let mut x = array![1.0];
/// opt.step(&mut x, &array![2.0])?; // h = 4, x = 1 − 0.1 · 2 / (2 + 1e-8)
/// assert!((x[0] - (1.0 - 0.2 / (2.0 + 1e-8))).abs() < 1e-12);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Adagrad<F> {
    lr: F,
    eps: F,
    steps: u64,
    sum_sq: PerSlot<F, 1>,
    /// Scratch for de-duplicating sparse rows (not part of the state).
    row_mask: Vec<bool>,
}

impl<F: Float> Adagrad<F> {
    /// Adagrad with learning rate `lr` and denominator offset `eps` (typically `1e-8`).
    ///
    /// # Errors
    /// [`recur_core::Error::InvalidConfig`] when `lr` or `eps` is not finite and positive.
    pub fn new(lr: F, eps: F) -> Result<Self> {
        check_positive("learning rate", lr)?;
        check_positive("eps", eps)?;
        Ok(Self {
            lr,
            eps,
            steps: 0,
            sum_sq: PerSlot::default(),
            row_mask: Vec::new(),
        })
    }

    /// The denominator offset ε.
    pub fn eps(&self) -> F {
        self.eps
    }
}

impl<F: Float> Optimizer<F> for Adagrad<F> {
    fn name(&self) -> &'static str {
        "adagrad"
    }

    fn step(&mut self, params: &mut dyn ParamSet<F>, grads: &dyn ParamSet<F>) -> Result<()> {
        check_inputs(params, grads, self.steps, true)?;
        self.sum_sq.check(grads)?;
        let (lr, eps) = (self.lr, self.eps);
        let update = |p: &mut F, g: F, h: &mut F| {
            *h += g * g;
            *p -= lr * g / (h.sqrt() + eps);
        };
        let sum_sq = self.sum_sq.get_or_alloc(grads);
        for (i, (_, [h])) in sum_sq.iter_mut().enumerate() {
            let g = grads.slot(i);
            let mut p = params.slot_mut(i).value;
            match g.rows {
                Some(rows) => {
                    for_each_unique_row(&mut self.row_mask, rows, p.len_of(Axis(0)), |r| {
                        zip3(
                            p.index_axis_mut(Axis(0), r),
                            g.value.index_axis(Axis(0), r),
                            h.index_axis_mut(Axis(0), r),
                            update,
                        );
                    })
                }
                None => zip3(p, g.value, h.view_mut(), update),
            }
        }
        self.steps += 1;
        Ok(())
    }

    crate::optimizer::rate_and_steps!();

    fn reset(&mut self) {
        self.steps = 0;
        self.sum_sq.clear();
    }

    fn state(&self) -> OptimizerState<F> {
        snapshot(
            self.name(),
            &[("lr", self.lr), ("eps", self.eps)],
            self.steps,
            self.sum_sq.to_state(),
        )
    }

    fn load_state(&mut self, mut state: OptimizerState<F>) -> Result<()> {
        let mut hyper = state.open(self.name())?;
        let lr = hyper.take("lr")?;
        let eps = hyper.take("eps")?;
        hyper.finish()?;
        let fresh = Self::new(lr, eps)?;
        let sum_sq = PerSlot::from_state(self.name(), state.slots)?;
        *self = Self {
            steps: state.steps,
            sum_sq,
            ..fresh
        };
        Ok(())
    }
}
