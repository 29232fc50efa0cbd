//! Plain stochastic gradient descent.

use ndarray::Axis;
use recur_core::{Error, Float, ParamSet, Result};

use crate::kernel::{check_inputs, check_positive, check_slot, for_each_unique_row, zip2};
use crate::state::snapshot;
use crate::{Optimizer, OptimizerState};

/// Stochastic gradient descent: `θ ← θ − lr · g`.
///
/// Stateless. Sparse gradient rows are honoured: only the listed rows are read and
/// written, which gives exactly the dense result because the other rows have zero gradient.
///
/// ```
/// use ndarray::array;
/// use recur_optim::{Optimizer, Sgd};
///
/// # fn main() -> recur_core::Result<()> {
/// let mut sgd = Sgd::new(0.5_f64)?;
/// let mut params = array![1.0, 2.0];
/// sgd.step(&mut params, &array![0.2, -0.4])?;
/// assert!((params[0] - 0.9).abs() < 1e-12 && (params[1] - 2.2).abs() < 1e-12);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Sgd<F> {
    lr: F,
    steps: u64,
    /// Scratch for de-duplicating sparse rows (not part of the state).
    row_mask: Vec<bool>,
}

impl<F: Float> Sgd<F> {
    /// SGD with learning rate `lr`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `lr` is not finite and positive.
    pub fn new(lr: F) -> Result<Self> {
        check_positive("learning rate", lr)?;
        Ok(Self {
            lr,
            steps: 0,
            row_mask: Vec::new(),
        })
    }
}

impl<F: Float> Sgd<F> {
    /// `θ ← θ − lr · g`, slot by slot, reading only the listed rows of sparse gradients.
    /// A slot whose shapes differ, or a row out of range, stops with
    /// [`Error::LayoutMismatch`] before that slot is written.
    fn apply(&mut self, params: &mut dyn ParamSet<F>, grads: &dyn ParamSet<F>) -> Result<()> {
        let lr = self.lr;
        let update = |p: &mut F, g: F| *p -= lr * g;
        for i in 0..params.slot_count() {
            let g = grads.slot(i);
            let mut p = params.slot_mut(i).value;
            check_slot(i, g.name, p.shape(), g.value.shape(), g.rows)?;
            match g.rows {
                Some(rows) => {
                    for_each_unique_row(&mut self.row_mask, rows, p.len_of(Axis(0)), |r| {
                        zip2(
                            p.index_axis_mut(Axis(0), r),
                            g.value.index_axis(Axis(0), r),
                            update,
                        );
                    })
                }
                None => zip2(p, g.value, update),
            }
        }
        self.steps += 1;
        Ok(())
    }
}

impl<F: Float> Optimizer<F> for Sgd<F> {
    fn name(&self) -> &'static str {
        "sgd"
    }

    fn step(&mut self, params: &mut dyn ParamSet<F>, grads: &dyn ParamSet<F>) -> Result<()> {
        check_inputs(params, grads, self.steps, true)?;
        self.apply(params, grads)
    }

    /// Skips the layout comparison and the finiteness scan; shapes and sparse rows are
    /// still checked slot by slot as the update goes.
    fn step_prechecked(
        &mut self,
        params: &mut dyn ParamSet<F>,
        grads: &dyn ParamSet<F>,
    ) -> Result<()> {
        if params.slot_count() != grads.slot_count() {
            return check_inputs(params, grads, self.steps, true);
        }
        self.apply(params, grads)
    }

    fn plain_step_rate(&self) -> Option<F> {
        Some(self.lr)
    }

    crate::optimizer::rate_and_steps!();

    fn reset(&mut self) {
        self.steps = 0;
    }

    fn state(&self) -> OptimizerState<F> {
        snapshot(self.name(), &[("lr", self.lr)], self.steps, Vec::new())
    }

    fn load_state(&mut self, mut state: OptimizerState<F>) -> Result<()> {
        let mut hyper = state.open(self.name())?;
        let lr = hyper.take("lr")?;
        hyper.finish()?;
        if let Some(slot) = state.slots.first() {
            return Err(Error::LayoutMismatch {
                slot: 0,
                name: slot.name.clone(),
                reason: "sgd keeps no per-slot buffers, the state has some".to_string(),
            });
        }
        *self = Self {
            steps: state.steps,
            ..Self::new(lr)?
        };
        Ok(())
    }
}
