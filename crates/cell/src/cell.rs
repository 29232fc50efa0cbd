//! The `Cell` trait: one step of a recurrence, forward and backward.

use std::fmt::Debug;

use ndarray::{s, Array2, ArrayView2, ArrayViewMut2, Axis};
use recur_core::{Float, Input, ParamSet, Result};

/// One step of a recurrent layer: `state_t = cell(x_t, state_{t−1}; θ)`.
///
/// **State layout.** A batch of states is one matrix `[batch, state_size]`. An Elman cell's
/// state is just `h_t`; a cell with memory (an LSTM's `(h_t, c_t)`) or a [`Stack`](crate::Stack)
/// of layers keeps its parts side by side. The output `h_t` that the readout (or the next
/// layer) reads is the `hidden_size` columns from [`Cell::hidden_offset`]. One flat matrix
/// lets the engine store, stack and carry any cell's state without knowing its parts, and
/// lets a gradient of the state have the state's type.
///
/// **Contract.** `forward` writes `next` completely and fills `cache` with whatever private
/// intermediates `backward` needs beyond `x`, `prev` and `next` (which the engine keeps).
/// `backward` receives a [`StepRecord`] of the forward step and [`StepDeltas`]: it may
/// overwrite `d_next` as scratch, writes `d_prev` (overwriting), *adds* `∂L/∂x` into `d_x`
/// when the caller asks for it, and *adds* the step's parameter gradients into `grads`.
/// Neither may allocate in steady state: the engine calls them once per time step.
///
/// **Deferred gradients.** A cell whose weight gradients are sums over steps of products
/// (`hᵀ·δa`) can ask for a *tape* ([`Cell::tape_width`] columns per row): the engine then
/// hands each backward step its rows of a sequence-long matrix, the cell writes there what
/// those products need (its `δa`), and after the sweep [`Cell::backward_sequence`] adds the
/// gradients of all steps at once, one deep product in place of one shallow product per
/// step. The default is no tape.
///
/// Besides the sizes and the parameter accessors, a cell writes [`Cell::new_cache`],
/// [`Cell::forward`] and [`Cell::backward`]; the helpers of [`crate::step`] do the shape
/// checks and the token gather/scatter that most cells share.
pub trait Cell<F: Float>: Send + Sync + Debug {
    /// The type of the cell's gradients, with the layout of [`Cell::params`] (for a leaf
    /// cell, the type of its parameters too).
    type Params: ParamSet<F> + Clone + Debug + Send + Sync;
    /// Private per-step intermediates kept from `forward` for `backward`.
    type Cache: Debug + Send + Sync;

    /// Number of input features (or the vocabulary size for token inputs).
    fn input_size(&self) -> usize;

    /// Number of hidden units `h_t` exposed to the readout.
    fn hidden_size(&self) -> usize;

    /// Columns of the state matrix; at least [`Cell::hidden_size`]. Default: equal to it.
    fn state_size(&self) -> usize {
        self.hidden_size()
    }

    /// First column of the output `h_t` inside the state matrix. Default: 0.
    fn hidden_offset(&self) -> usize {
        0
    }

    /// The parameters, as a set whose slots match [`Cell::Params`] one for one. A leaf cell
    /// returns its parameter struct; a composite ([`Stack`](crate::Stack)) returns itself,
    /// walking its layers' sets.
    fn params(&self) -> &dyn ParamSet<F>;

    /// The parameters, writable (for optimizers and gradient checks).
    fn params_mut(&mut self) -> &mut dyn ParamSet<F>;

    /// A zero gradient with the layout of [`Cell::params`]: for a leaf cell,
    /// `params::zeroed(&self.params)`.
    fn zero_grads(&self) -> Self::Params;

    /// An empty cache for a batch of `batch` rows, to be filled by [`Cell::forward`].
    fn new_cache(&self, batch: usize) -> Self::Cache;

    /// Tells a step's cache, before [`Cell::forward`], whether the step is part of
    /// training (a backward pass will follow) or of evaluation and generation. A cell whose
    /// forward pass differs between the two, as a [`Stack`](crate::Stack) with dropout
    /// does, keeps the flag in its cache; the default ignores it. The engine calls this
    /// for every step; a cell is in evaluation mode unless told otherwise.
    fn set_training(&self, cache: &mut Self::Cache, training: bool) {
        let _ = (cache, training);
    }

    /// A zero state for `batch` sequences, shape `[batch, state_size]`.
    fn zero_state(&self, batch: usize) -> Array2<F> {
        Array2::zeros((batch, self.state_size()))
    }

    /// The hidden output `h` inside a state matrix (see [`Cell::hidden_offset`]).
    fn hidden<'a>(&self, state: ArrayView2<'a, F>) -> ArrayView2<'a, F> {
        let from = self.hidden_offset();
        state.slice_move(s![.., from..from + self.hidden_size()])
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

    /// Pulls `deltas.d_next = ∂L/∂next` back through the step: writes `deltas.d_prev =
    /// ∂L/∂prev`, adds `∂L/∂x` into `deltas.d_x` when it is given, and adds the step's
    /// parameter gradients into `grads`. `d_next` holds one block of `batch` rows and may
    /// be overwritten.
    ///
    /// # Errors
    /// Shape mismatches (the engine checks once per sequence; cells check cheaply per step);
    /// a `d_x` given for token inputs (see [`crate::step::check_deltas`]).
    fn backward(
        &self,
        step: StepRecord<'_, F, Self::Cache>,
        deltas: StepDeltas<'_, F>,
        grads: &mut Self::Params,
    ) -> Result<()>;

    /// Columns of tape a backward step writes for [`Cell::backward_sequence`] (see the
    /// trait's docs); 0, the default, for a cell that adds every gradient at its step.
    fn tape_width(&self) -> usize {
        0
    }

    /// Adds the parameter gradients that the backward steps of a sweep left on the tape.
    /// The caller calls it once after a sweep whose steps were given tape rows, with
    /// those steps' inputs, states and tape. The default (no tape) does nothing.
    ///
    /// # Errors
    /// Shape mismatches between the record and the cell.
    fn backward_sequence(&self, sweep: SweepRecord<'_, F>, grads: &mut Self::Params) -> Result<()> {
        let _ = (sweep, grads);
        Ok(())
    }

    /// [`Cell::backward`] for several gradients through the same step at once:
    /// `d_next`, `d_prev` (and `d_x`) hold `n` blocks of `batch` rows each (block `i` is
    /// rows `i·batch..(i+1)·batch`), and `grads` receives the sum of all blocks' parameter
    /// gradients.
    ///
    /// The per-output truncation scheme needs this: at a step it carries one gradient per
    /// output that still reaches back through the step. The default loops over blocks; a cell
    /// can override it to do one matrix product for all blocks (as [`crate::Elman`] does),
    /// since the backward step is linear in `d_next`.
    ///
    /// # Errors
    /// As [`Cell::backward`]; also when the row count is not a multiple of the batch.
    fn backward_stacked(
        &self,
        step: StepRecord<'_, F, Self::Cache>,
        deltas: StepDeltas<'_, F>,
        grads: &mut Self::Params,
    ) -> Result<()> {
        let batch = crate::step::check_deltas("backward_stacked", self, step, &deltas)?;
        let StepDeltas {
            mut d_next,
            mut d_prev,
            mut d_x,
            mut tape,
        } = deltas;
        let mut d_x_blocks = d_x.as_mut().map(|d| d.axis_chunks_iter_mut(Axis(0), batch));
        for (d_next, d_prev) in d_next
            .axis_chunks_iter_mut(Axis(0), batch)
            .zip(d_prev.axis_chunks_iter_mut(Axis(0), batch))
        {
            let d_x = d_x_blocks.as_mut().and_then(Iterator::next);
            // The first block writes the tape; the others add their gradients directly.
            let tape = tape.take().map(ArrayViewMut2::reborrow);
            self.backward(
                step,
                StepDeltas {
                    d_next,
                    d_prev,
                    d_x,
                    tape,
                },
                grads,
            )?;
        }
        Ok(())
    }
}

/// What the forward pass kept of one step, handed back to [`Cell::backward`]: the step's
/// input, the states before and after it, and the cell's own cache.
#[derive(Debug)]
pub struct StepRecord<'a, F, K> {
    /// The step's input (`batch` rows or token ids).
    pub x: Input<'a, F>,
    /// The state before the step, `[batch, state_size]`.
    pub prev: ArrayView2<'a, F>,
    /// The state after the step, `[batch, state_size]`.
    pub next: ArrayView2<'a, F>,
    /// What [`Cell::forward`] stored for this step.
    pub cache: &'a K,
}

impl<F: Copy, K> Clone for StepRecord<'_, F, K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<F: Copy, K> Copy for StepRecord<'_, F, K> {}

/// The gradients one backward step reads and writes. Each holds `n ≥ 1` blocks of `batch`
/// rows (one block for [`Cell::backward`]).
#[derive(Debug)]
pub struct StepDeltas<'a, F> {
    /// `∂L/∂state_t`, `[n·batch, state_size]`; the cell may overwrite it as scratch.
    pub d_next: ArrayViewMut2<'a, F>,
    /// Written with `∂L/∂state_{t−1}`, same shape as `d_next`.
    pub d_prev: ArrayViewMut2<'a, F>,
    /// When given, `∂L/∂x_t` is *added* into it, `[n·batch, input_size]`: what lets one
    /// cell feed another. Only for dense inputs; token inputs have no input gradient.
    pub d_x: Option<ArrayViewMut2<'a, F>>,
    /// When given, this step's `[batch, tape_width]` rows of the sweep's tape: the cell
    /// writes all of them, and may leave parameter gradients there for
    /// [`Cell::backward_sequence`] instead of adding them into `grads`. When `None`, every
    /// gradient goes into `grads` at once.
    pub tape: Option<ArrayViewMut2<'a, F>>,
}

impl<'a, F> StepDeltas<'a, F> {
    /// Deltas without input gradient or tape.
    pub fn new(d_next: ArrayViewMut2<'a, F>, d_prev: ArrayViewMut2<'a, F>) -> Self {
        StepDeltas {
            d_next,
            d_prev,
            d_x: None,
            tape: None,
        }
    }
}

/// What a backward sweep hands to [`Cell::backward_sequence`]: for the `steps` steps it
/// swept, oldest first, row `s·batch + b` of each matrix (entry, for token ids) belongs to
/// step `s` of sequence `b`.
#[derive(Debug, Clone, Copy)]
pub struct SweepRecord<'a, F> {
    /// The steps' inputs, `steps·batch` rows or token ids.
    pub x: Input<'a, F>,
    /// The states before each step, `[steps·batch, state_size]`.
    pub prev: ArrayView2<'a, F>,
    /// The states after each step, `[steps·batch, state_size]`.
    pub next: ArrayView2<'a, F>,
    /// What the steps wrote on the tape, `[steps·batch, tape_width]`.
    pub tape: ArrayView2<'a, F>,
}
