//! The `Cell` trait: one step of a recurrence, forward and backward.

use ndarray::{s, Array2, ArrayView2, ArrayViewMut2, Axis};
use recur_core::{Float, Input, ParamSet, Result};
use serde::{de::DeserializeOwned, Serialize};

/// One step of a recurrent layer: `state_t = cell(x_t, state_{t−1}; θ)`.
///
/// **State layout.** A batch of states is one matrix `[batch, state_size]` whose first
/// `hidden_size` columns are the output `h_t` that the readout reads. An Elman cell's state
/// is just `h_t`; a cell with memory (an LSTM's `(h_t, c_t)`) keeps the rest in the later
/// columns. One flat matrix lets the engine store, stack and carry any cell's state
/// without knowing its parts, and lets a gradient of the state have the same type.
///
/// **Contract.** `forward` writes `next` completely and fills `cache` with whatever private
/// intermediates `backward` needs beyond `x`, `prev` and `next` (which the engine keeps).
/// `backward` receives `d_next = ∂L/∂state_t`, may overwrite it as scratch, writes
/// `d_prev = ∂L/∂state_{t−1}` (overwriting) and *adds* this step's parameter gradients
/// into `grads`. Neither may allocate in steady state: the engine calls them once per
/// time step.
pub trait Cell<F: Float>: Send + Sync + std::fmt::Debug {
    /// The cell's parameters; also the type of their gradients (see [`Cell::zero_grads`]).
    type Params: ParamSet<F> + Clone + std::fmt::Debug + Send + Sync + Serialize + DeserializeOwned;
    /// Private per-step intermediates kept from `forward` for `backward`.
    type Cache: std::fmt::Debug + Send + Sync;

    /// Number of input features (or the vocabulary size for token inputs).
    fn input_size(&self) -> usize;

    /// Number of hidden units `h_t` exposed to the readout.
    fn hidden_size(&self) -> usize;

    /// Columns of the state matrix; at least [`Cell::hidden_size`]. Default: equal to it.
    fn state_size(&self) -> usize {
        self.hidden_size()
    }

    /// The parameters.
    fn params(&self) -> &Self::Params;

    /// The parameters, writable (for optimizers and gradient checks).
    fn params_mut(&mut self) -> &mut Self::Params;

    /// A zero gradient with the layout of [`Cell::params`].
    fn zero_grads(&self) -> Self::Params;

    /// An empty cache for a batch of `batch` rows, to be filled by [`Cell::forward`].
    fn new_cache(&self, batch: usize) -> Self::Cache;

    /// A zero state for `batch` sequences, shape `[batch, state_size]`.
    fn zero_state(&self, batch: usize) -> Array2<F> {
        Array2::zeros((batch, self.state_size()))
    }

    /// The hidden output `h` inside a state matrix (its first `hidden_size` columns).
    fn hidden<'a>(&self, state: ArrayView2<'a, F>) -> ArrayView2<'a, F> {
        state.slice_move(s![.., ..self.hidden_size()])
    }

    /// Computes `next = cell(x, prev)` for a batch and fills `cache`.
    ///
    /// # Errors
    /// Shape mismatches between `x`, `prev`, `next` and the cell, or token ids out of range.
    fn forward(
        &self,
        x: Input<'_, F>,
        prev: ArrayView2<'_, F>,
        next: ArrayViewMut2<'_, F>,
        cache: &mut Self::Cache,
    ) -> Result<()>;

    /// Pulls `d_next = ∂L/∂next` back through the step: writes `d_prev = ∂L/∂prev` and adds
    /// the step's parameter gradients into `grads`. `d_next` may be overwritten.
    ///
    /// # Errors
    /// Shape mismatches (the engine checks once per sequence; cells check cheaply per step).
    #[allow(clippy::too_many_arguments)]
    fn backward(
        &self,
        x: Input<'_, F>,
        prev: ArrayView2<'_, F>,
        next: ArrayView2<'_, F>,
        cache: &Self::Cache,
        d_next: ArrayViewMut2<'_, F>,
        d_prev: ArrayViewMut2<'_, F>,
        grads: &mut Self::Params,
    ) -> Result<()>;

    /// [`Cell::backward`] for several gradients through the same step at once: `d_next` and
    /// `d_prev` hold `n` blocks of `batch` rows each (block `i` is rows `i·batch..(i+1)·batch`),
    /// and `grads` receives the sum of all blocks' parameter gradients.
    ///
    /// The per-output truncation scheme needs this: at a step it carries one gradient per
    /// output that still reaches back through the step. The default loops over blocks; a cell
    /// can override it to do one matrix product for all blocks (as [`crate::Elman`] does),
    /// since the backward step is linear in `d_next`.
    ///
    /// # Errors
    /// As [`Cell::backward`]; also when the row count is not a multiple of the batch.
    #[allow(clippy::too_many_arguments)]
    fn backward_stacked(
        &self,
        x: Input<'_, F>,
        prev: ArrayView2<'_, F>,
        next: ArrayView2<'_, F>,
        cache: &Self::Cache,
        mut d_next: ArrayViewMut2<'_, F>,
        mut d_prev: ArrayViewMut2<'_, F>,
        grads: &mut Self::Params,
    ) -> Result<()> {
        let batch = x.batch();
        check_stack("backward_stacked", batch, d_next.view(), d_prev.view())?;
        for (dn, dp) in d_next
            .axis_chunks_iter_mut(Axis(0), batch)
            .zip(d_prev.axis_chunks_iter_mut(Axis(0), batch))
        {
            self.backward(x, prev, next, cache, dn, dp, grads)?;
        }
        Ok(())
    }
}

/// Checks that two stacked gradient matrices have the same shape, a whole number of
/// `batch`-row blocks, and at least one block.
pub(crate) fn check_stack<F: Float>(
    op: &'static str,
    batch: usize,
    d_next: ArrayView2<'_, F>,
    d_prev: ArrayView2<'_, F>,
) -> Result<()> {
    let rows = d_next.nrows();
    if batch == 0 || rows == 0 || !rows.is_multiple_of(batch) || d_prev.dim() != d_next.dim() {
        return Err(recur_core::Error::shape(
            op,
            &[batch.max(1) * (rows / batch.max(1)).max(1), d_next.ncols()],
            d_prev.shape(),
        ));
    }
    Ok(())
}
