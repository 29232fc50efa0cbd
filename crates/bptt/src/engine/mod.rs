//! The engine: forward over a batch of sequences, then truncated backpropagation through
//! time for any cell and readout.
//!
//! - this file: [`Bptt`], its public passes and the forward recurrence;
//! - `workspace`: the reused buffers and the row views cut from them;
//! - `outputs`: readout, loss and the readout's backward pass for all steps at once;
//! - `sweep`: the backward sweep over the recurrence for any truncation scheme;
//! - `stream`: windowed training over one long text with the state carried on.

mod outputs;
mod stream;
mod sweep;
mod workspace;

use ndarray::{s, ArrayView2};
use recur_cell::{Cell, Linear, Readout};
use recur_core::{Error, Float, Result};
use recur_loss::{Loss, Reduction};

pub(crate) use outputs::ReadoutGrad;
use outputs::Steps;
use workspace::{ensure, rows_pair, Workspace};

use crate::model::{Gradients, Model};
use crate::sequence::{SeqBatch, SeqInput};
use crate::truncation::Truncation;

/// The loss of a batch: the sum over counted (non-padding) rows, and their number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossReport {
    /// Sum of the per-row losses, accumulated in `f64`.
    pub total: f64,
    /// Rows (steps × sequences) that counted: padding rows excluded.
    pub counted: usize,
}

impl LossReport {
    /// Loss per counted row (per token, for a language model); 0 when nothing counted.
    pub fn mean(&self) -> f64 {
        if self.counted == 0 {
            0.0
        } else {
            self.total / self.counted as f64
        }
    }
}

/// Forward and truncated backward passes over batches of sequences, for any [`Cell`] and
/// [`Readout`].
///
/// A `Bptt` owns the workspace of one training or evaluation loop: buffers grow to the
/// largest batch seen and are then reused, so steady-state training allocates nothing per
/// time step.
///
/// **Backward, for any truncation.** Outputs are handled for all steps at once: one matrix
/// call of the readout gives the logits, the loss gives `∂L/∂z` for every row, and the
/// readout's backward pass gives its gradient and `∂L/∂h_t` from the outputs (`d_hidden`). The recurrence
/// is then swept once from the last step to the first. At each step the sweep carries one
/// gradient per backward pass of the scheme that still reaches back through that step
/// (one for full or chunked truncation, up to k + 1 for per-output), stacked as blocks of a
/// matrix, and pulls all of them through the cell at once with
/// [`Cell::backward_stacked`]. A pass's gradient is injected when the sweep reaches the
/// pass's last step and dropped after its first.
///
/// **Loss scaling.** With [`Reduction::Sum`] the gradient is that of the summed loss (the
/// tutorial's convention); with [`Reduction::Mean`] it is divided by the number of counted
/// rows that receive gradient, so the learning rate does not depend on batch, length or
/// truncation.
#[derive(Debug)]
pub struct Bptt<F: Float, C: Cell<F>, R: Readout<F> = Linear<F>> {
    truncation: Truncation,
    reduction: Reduction,
    ws: Workspace<F, C, R>,
}

impl<F: Float, C: Cell<F>, R: Readout<F>> Bptt<F, C, R> {
    /// An engine with the given truncation scheme and loss reduction.
    pub fn new(truncation: Truncation, reduction: Reduction) -> Self {
        Bptt {
            truncation,
            reduction,
            ws: Workspace::default(),
        }
    }

    /// The truncation scheme.
    pub fn truncation(&self) -> Truncation {
        self.truncation
    }

    /// The loss reduction.
    pub fn reduction(&self) -> Reduction {
        self.reduction
    }

    /// Runs the cell over `inputs` from `initial` (zeros when `None`), keeping every step's
    /// state and cache for a backward pass or for inspection with [`Bptt::states`].
    ///
    /// # Errors
    /// Empty batches, shape mismatches, token ids out of range.
    pub fn forward(
        &mut self,
        model: &Model<F, C, R>,
        inputs: SeqInput<'_, F>,
        initial: Option<ArrayView2<'_, F>>,
    ) -> Result<()> {
        self.forward_in(model, inputs, initial, false)
    }

    /// [`Bptt::forward`], telling the cell whether a backward pass will follow
    /// ([`Cell::set_training`]).
    fn forward_in(
        &mut self,
        model: &Model<F, C, R>,
        inputs: SeqInput<'_, F>,
        initial: Option<ArrayView2<'_, F>>,
        training: bool,
    ) -> Result<()> {
        model.check()?;
        let cell = model.cell();
        inputs.check(cell.input_size())?;
        let (seq_len, batch) = (inputs.seq_len(), inputs.batch());
        self.prepare(cell, seq_len, batch, initial)?;
        self.forward_steps(cell, inputs, 0, seq_len, training)?;
        self.ws.seq_len = seq_len;
        self.ws.batch = batch;
        Ok(())
    }

    /// Sizes the state and cache buffers for `steps` steps of `batch` sequences and writes
    /// the initial state.
    pub(crate) fn prepare(
        &mut self,
        cell: &C,
        steps: usize,
        batch: usize,
        initial: Option<ArrayView2<'_, F>>,
    ) -> Result<()> {
        let width = cell.state_size();
        let ws = &mut self.ws;
        ensure(&mut ws.states, (steps + 1) * batch, width);
        let mut first = ws.states.slice_mut(s![..batch, ..]);
        match initial {
            Some(h0) if h0.dim() == (batch, width) => first.assign(&h0),
            Some(h0) => return Err(Error::shape("initial state", &[batch, width], h0.shape())),
            None => first.fill(F::zero()),
        }
        if ws.cache_batch != batch {
            ws.caches.clear();
            ws.cache_batch = batch;
        }
        while ws.caches.len() < steps {
            ws.caches.push(cell.new_cache(batch));
        }
        Ok(())
    }

    /// The states of the last [`Bptt::forward`]: `[(seq_len + 1)·batch, state_size]`, the
    /// initial state first, row `(t + 1)·batch + b` after step `t` of sequence `b`.
    pub fn states(&self) -> ArrayView2<'_, F> {
        let ws = &self.ws;
        ws.states.slice(s![..(ws.seq_len + 1) * ws.batch, ..])
    }

    /// The state after the last step of the last forward pass, `[batch, state_size]`: pass
    /// it as `initial` to carry the state into the next batch.
    pub fn final_state(&self) -> ArrayView2<'_, F> {
        let ws = &self.ws;
        ws.states
            .slice(s![ws.seq_len * ws.batch..(ws.seq_len + 1) * ws.batch, ..])
    }

    /// The logits of the last [`Bptt::evaluate`] or [`Bptt::accumulate`] (or the newest
    /// segment of a stream), one row per step and sequence: row `t·batch + b`.
    pub fn logits(&self) -> ArrayView2<'_, F> {
        self.ws.logits.slice(s![..self.ws.output_rows, ..])
    }

    /// Bytes held by the workspace's numeric buffers (states, outputs, gradient stacks).
    /// While streaming it depends on the window, not on the length of the text.
    pub fn workspace_bytes(&self) -> usize {
        self.ws.bytes()
    }

    /// Forward pass and loss, no gradient (the cell in evaluation mode).
    ///
    /// # Errors
    /// As [`Bptt::forward`], plus target shape errors from the loss.
    pub fn evaluate(
        &mut self,
        model: &Model<F, C, R>,
        loss: &dyn Loss<F>,
        batch: SeqBatch<'_, F>,
        initial: Option<ArrayView2<'_, F>>,
    ) -> Result<LossReport> {
        let steps = self.forward_batch(model, batch, initial, false)?;
        self.outputs(model, loss, batch.targets, steps, None)
    }

    /// The forward pass over a batch whose targets are then checked against the steps run.
    fn forward_batch(
        &mut self,
        model: &Model<F, C, R>,
        batch: SeqBatch<'_, F>,
        initial: Option<ArrayView2<'_, F>>,
        training: bool,
    ) -> Result<Steps> {
        self.forward_in(model, batch.inputs, initial, training)?;
        let steps = Steps::whole(self.ws.seq_len);
        let outputs = model.readout().output_size();
        batch.targets.check(steps.to, self.ws.batch, outputs)?;
        Ok(steps)
    }

    /// Forward pass (the cell in training mode), loss and truncated backward pass; *adds*
    /// the gradient to `grads`.
    ///
    /// # Errors
    /// As [`Bptt::evaluate`]; [`Error::LayoutMismatch`] when `grads` does not fit the model.
    pub fn accumulate(
        &mut self,
        model: &Model<F, C, R>,
        loss: &dyn Loss<F>,
        batch: SeqBatch<'_, F>,
        initial: Option<ArrayView2<'_, F>>,
        grads: &mut Gradients<F, C, R>,
    ) -> Result<LossReport> {
        self.accumulate_with(model, loss, batch, initial, grads, ReadoutGrad::Store)
    }

    /// [`Bptt::accumulate`], with the readout's deferrable gradient stored or deferred.
    pub(crate) fn accumulate_with(
        &mut self,
        model: &Model<F, C, R>,
        loss: &dyn Loss<F>,
        batch: SeqBatch<'_, F>,
        initial: Option<ArrayView2<'_, F>>,
        grads: &mut Gradients<F, C, R>,
        mode: ReadoutGrad,
    ) -> Result<LossReport> {
        recur_core::params::check_same_layout(model, grads)?;
        let steps = self.forward_batch(model, batch, initial, true)?;
        self.truncation.passes(steps.to, &mut self.ws.passes);
        let readout = Some((&mut grads.readout, mode));
        let report = self.outputs(model, loss, batch.targets, steps, readout)?;
        self.sweep(model.cell(), batch.inputs, steps.from, &mut grads.cell)?;
        Ok(report)
    }

    /// The readout's input rows and `∂L/∂Z` of the last output pass (for the fused step).
    pub(crate) fn readout_rows(&self, cell: &C) -> (ArrayView2<'_, F>, ArrayView2<'_, F>) {
        self.ws.readout_rows(cell)
    }

    /// Runs steps `from..to` (local indices into `inputs` and the workspace).
    pub(crate) fn forward_steps(
        &mut self,
        cell: &C,
        inputs: SeqInput<'_, F>,
        from: usize,
        to: usize,
        training: bool,
    ) -> Result<()> {
        let ws = &mut self.ws;
        let b = inputs.batch();
        for t in from..to {
            let (prev, next) = rows_pair(&mut ws.states, t * b, (t + 1) * b, b);
            cell.set_training(&mut ws.caches[t], training);
            cell.forward(inputs.step(t), prev.view(), next, &mut ws.caches[t])?;
        }
        Ok(())
    }
}
