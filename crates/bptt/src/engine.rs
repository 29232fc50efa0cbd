//! The engine: forward over a batch of sequences, then truncated backpropagation through
//! time for any cell.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use std::ops::AddAssign;

use ndarray::{s, Array1, Array2, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis};
use recur_cell::Cell;
use recur_core::{Error, Float, Result};
use recur_loss::{Loss, Reduction};

use crate::model::{Gradients, Model};
use crate::sequence::{SeqBatch, SeqInput, SeqTargets};
use crate::truncation::{Pass, Truncation};

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

/// Forward and truncated backward passes over batches of sequences, for any [`Cell`].
///
/// A `Bptt` owns the workspace of one training or evaluation loop: buffers grow to the
/// largest batch seen and are then reused, so steady-state training allocates nothing per
/// time step.
///
/// **Backward, for any truncation.** Outputs are handled for all steps at once: one matrix
/// product gives the logits, the loss gives `∂L/∂z` for every row, and two more products
/// give the readout's gradient and `∂L/∂h_t` from the outputs (`d_hidden`). The recurrence
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
pub struct Bptt<F: Float, C: Cell<F>> {
    truncation: Truncation,
    reduction: Reduction,
    ws: Workspace<F, C>,
    /// `H·Hᵀ` and `Δ·Δᵀ` of a deferred readout gradient `Hᵀ·Δ`, for its norm.
    grams: [Vec<F>; 2],
}

/// What the readout's backward pass does with its weight gradient `Hᵀ·∂L/∂Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadoutWeights {
    /// Added into the gradient buffers, like every other gradient.
    Accumulate,
    /// Not stored: [`Bptt::deferred_readout_sq_norm`] gives its norm and
    /// [`Bptt::apply_deferred_readout`] adds it, scaled, straight to the weights.
    Defer,
}

/// Reused buffers. Row `t·batch + b` of a per-step matrix belongs to step `t`, sequence `b`;
/// `states` has one more step in front: the initial state.
#[derive(Debug)]
struct Workspace<F: Float, C: Cell<F>> {
    seq_len: usize,
    batch: usize,
    /// Rows of `logits` (and `d_logits`, `d_hidden`) the last output pass filled…
    output_rows: usize,
    /// …for the steps from this one on.
    output_from: usize,
    states: Array2<F>,
    caches: Vec<C::Cache>,
    cache_batch: usize,
    hidden: Array2<F>,
    logits: Array2<F>,
    d_logits: Array2<F>,
    row_loss: Array1<F>,
    d_hidden: Array2<F>,
    stack: Array2<F>,
    stack_prev: Array2<F>,
    passes: Vec<Pass>,
    live: VecDeque<usize>,
}

impl<F: Float, C: Cell<F>> Default for Workspace<F, C> {
    fn default() -> Self {
        Workspace {
            seq_len: 0,
            batch: 0,
            output_rows: 0,
            output_from: 0,
            states: Array2::zeros((0, 0)),
            caches: Vec::new(),
            cache_batch: 0,
            hidden: Array2::zeros((0, 0)),
            logits: Array2::zeros((0, 0)),
            d_logits: Array2::zeros((0, 0)),
            row_loss: Array1::zeros(0),
            d_hidden: Array2::zeros((0, 0)),
            stack: Array2::zeros((0, 0)),
            stack_prev: Array2::zeros((0, 0)),
            passes: Vec::new(),
            live: VecDeque::new(),
        }
    }
}

/// Makes `a` hold at least `rows` rows of exactly `cols` columns, reallocating only when it
/// is too small. Callers use the first `rows` rows. New arrays start on a cache line, so
/// the products read and write whole lines.
fn ensure<F: Float>(a: &mut Array2<F>, rows: usize, cols: usize) {
    if a.nrows() < rows || a.ncols() != cols {
        *a = recur_core::linalg::zeros_aligned((rows.max(a.nrows()), cols));
    }
}

impl<F: Float, C: Cell<F>> Bptt<F, C> {
    /// An engine with the given truncation scheme and loss reduction.
    pub fn new(truncation: Truncation, reduction: Reduction) -> Self {
        Bptt {
            truncation,
            reduction,
            ws: Workspace::default(),
            grams: [Vec::new(), Vec::new()],
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
        model: &Model<F, C>,
        inputs: SeqInput<'_, F>,
        initial: Option<ArrayView2<'_, F>>,
    ) -> Result<()> {
        model.check()?;
        let cell = model.cell();
        inputs.check(cell.input_size())?;
        let (seq_len, batch) = (inputs.seq_len(), inputs.batch());
        self.prepare(cell, seq_len, batch, initial)?;
        self.forward_steps(cell, inputs, 0, seq_len)?;
        self.ws.seq_len = seq_len;
        self.ws.batch = batch;
        Ok(())
    }

    /// Sizes the state and cache buffers for `steps` steps of `batch` sequences and writes
    /// the initial state.
    fn prepare(
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
        let ws = &self.ws;
        let arrays = [
            &ws.states,
            &ws.hidden,
            &ws.logits,
            &ws.d_logits,
            &ws.d_hidden,
            &ws.stack,
            &ws.stack_prev,
        ];
        let values: usize = arrays.iter().map(|a| a.len()).sum::<usize>() + ws.row_loss.len();
        values * std::mem::size_of::<F>()
            + ws.caches.len() * std::mem::size_of::<C::Cache>()
            + ws.passes.capacity() * std::mem::size_of::<Pass>()
    }

    /// Forward pass and loss, no gradient.
    ///
    /// # Errors
    /// As [`Bptt::forward`], plus target shape errors from the loss.
    pub fn evaluate(
        &mut self,
        model: &Model<F, C>,
        loss: &dyn Loss<F>,
        batch: SeqBatch<'_, F>,
        initial: Option<ArrayView2<'_, F>>,
    ) -> Result<LossReport> {
        self.forward(model, batch.inputs, initial)?;
        let steps = Steps::whole(self.ws.seq_len);
        batch
            .targets
            .check(steps.to, self.ws.batch, model.readout().output_size())?;
        self.outputs(model, loss, batch.targets, steps, None)
    }

    /// Forward pass, loss and truncated backward pass; *adds* the gradient to `grads`.
    ///
    /// # Errors
    /// As [`Bptt::evaluate`]; [`Error::LayoutMismatch`] when `grads` does not fit the model.
    pub fn accumulate(
        &mut self,
        model: &Model<F, C>,
        loss: &dyn Loss<F>,
        batch: SeqBatch<'_, F>,
        initial: Option<ArrayView2<'_, F>>,
        grads: &mut Gradients<F, C>,
    ) -> Result<LossReport> {
        self.accumulate_with(
            model,
            loss,
            batch,
            initial,
            grads,
            ReadoutWeights::Accumulate,
        )
    }

    /// [`Bptt::accumulate`], with the readout's weight gradient stored or deferred.
    pub(crate) fn accumulate_with(
        &mut self,
        model: &Model<F, C>,
        loss: &dyn Loss<F>,
        batch: SeqBatch<'_, F>,
        initial: Option<ArrayView2<'_, F>>,
        grads: &mut Gradients<F, C>,
        weights: ReadoutWeights,
    ) -> Result<LossReport> {
        recur_core::params::check_same_layout(model, grads)?;
        self.forward(model, batch.inputs, initial)?;
        let steps = Steps::whole(self.ws.seq_len);
        batch
            .targets
            .check(steps.to, self.ws.batch, model.readout().output_size())?;
        self.truncation.passes(steps.to, &mut self.ws.passes);
        let readout = Some((&mut grads.readout, weights));
        let report = self.outputs(model, loss, batch.targets, steps, readout)?;
        self.sweep(model.cell(), batch.inputs, steps.from, &mut grads.cell)?;
        Ok(report)
    }

    /// Squared Frobenius norm of the readout weight gradient `G = Hᵀ·Δ` that the last
    /// [`ReadoutWeights::Defer`] pass left unstored (`H`: the readout's input rows, `Δ`:
    /// `∂L/∂Z`), from two `rows × rows` Gram matrices: `‖G‖² = Σᵣₛ (H·Hᵀ)ᵣₛ (Δ·Δᵀ)ᵣₛ`.
    /// For a short batch that reads `Δ` once instead of writing and re-reading `G`.
    pub(crate) fn deferred_readout_sq_norm(&mut self, cell: &C) -> Result<f64> {
        let (h, d) = self.ws.readout_rows(cell);
        let rows = h.nrows();
        let [gram_h, gram_d] = &mut self.grams;
        let (mut gram_h, mut gram_d) = (square(gram_h, rows), square(gram_d, rows));
        recur_core::linalg::gemm(F::one(), h, h.t(), F::zero(), gram_h.view_mut())?;
        recur_core::linalg::gemm(F::one(), d, d.t(), F::zero(), gram_d.view_mut())?;
        let sum = ndarray::Zip::from(&gram_h)
            .and(&gram_d)
            .fold(0.0, |sum, &x, &y| {
                sum + x.to_f64_lossless() * y.to_f64_lossless()
            });
        // Rounding can take a true zero slightly below it.
        Ok(sum.max(0.0))
    }

    /// Adds `alpha·Hᵀ·Δ`, the deferred readout weight gradient of the last
    /// [`ReadoutWeights::Defer`] pass scaled by `alpha`, to the readout's weights.
    pub(crate) fn apply_deferred_readout(&self, model: &mut Model<F, C>, alpha: F) -> Result<()> {
        let (cell, readout) = model.parts_mut();
        let (h, d) = self.ws.readout_rows(cell);
        readout.add_to_weights(alpha, h, d)
    }

    /// Streaming training over one long batch of sequences: every `stride` steps,
    /// back-propagates through the last `window` steps and calls `update` with the
    /// accumulated gradient (which it must apply and zero), carrying the state forward.
    /// Only the last `window` steps are kept, so memory does not grow with the length.
    ///
    /// Returns the final state.
    pub(crate) fn stream(
        &mut self,
        model: &mut Model<F, C>,
        loss: &dyn Loss<F>,
        batch: SeqBatch<'_, F>,
        initial: Option<ArrayView2<'_, F>>,
        grads: &mut Gradients<F, C>,
        update: &mut UpdateFn<'_, F, C>,
    ) -> Result<Array2<F>> {
        let (Some(window), Some(stride)) = (self.truncation.window(), self.truncation.stride())
        else {
            return Err(Error::config(
                "truncation",
                "streaming needs a scheme with a stride (chunked, per-output or bptt:H:H')",
            ));
        };
        model.check()?;
        recur_core::params::check_same_layout(&*model, grads)?;
        let inputs = batch.inputs;
        inputs.check(model.cell().input_size())?;
        let (total, b) = (inputs.seq_len(), inputs.batch());
        batch
            .targets
            .check(total, b, model.readout().output_size())?;
        self.prepare(model.cell(), window, b, initial)?;
        // The window holds global steps first..done.
        let (mut first, mut done) = (0, 0);
        while done < total {
            let new = stride.min(total - done);
            // As in `Truncation::passes`: a short last segment keeps the stride grid.
            let keep_from = (done + stride).saturating_sub(window).max(first);
            self.slide(keep_from - first, done - first, b);
            first = keep_from;
            let local = |g: usize| g - first;
            let view = window_input(inputs, first, done + new);
            self.forward_steps(model.cell(), view, local(done), local(done + new))?;
            self.ws.seq_len = local(done + new);
            self.ws.batch = b;
            self.ws.passes.clear();
            self.ws.passes.push(Pass {
                start: 0,
                end: local(done + new) - 1,
            });
            let steps = Steps {
                from: local(done),
                to: local(done + new),
                target_from: done,
            };
            let readout = Some((&mut grads.readout, ReadoutWeights::Accumulate));
            let report = self.outputs(model, loss, batch.targets, steps, readout)?;
            self.sweep(model.cell(), view, steps.from, &mut grads.cell)?;
            update(model, grads, report)?;
            done += new;
        }
        Ok(self.final_state().to_owned())
    }

    /// Drops the `drop` oldest of the `kept` cached steps of the streaming window.
    fn slide(&mut self, drop: usize, kept: usize, b: usize) {
        if drop == 0 {
            return;
        }
        let ws = &mut self.ws;
        let width = ws.states.ncols();
        let flat = ws
            .states
            .as_slice_mut()
            .expect("workspace arrays are standard layout");
        flat.copy_within(drop * b * width..(kept + 1) * b * width, 0);
        ws.caches[..kept].rotate_left(drop);
    }

    /// Runs steps `from..to` (local indices into `inputs` and the workspace).
    fn forward_steps(
        &mut self,
        cell: &C,
        inputs: SeqInput<'_, F>,
        from: usize,
        to: usize,
    ) -> Result<()> {
        let ws = &mut self.ws;
        let b = inputs.batch();
        for t in from..to {
            let (prev, next) = rows_pair(&mut ws.states, t * b, (t + 1) * b, b);
            cell.forward(inputs.step(t), prev.view(), next, &mut ws.caches[t])?;
        }
        Ok(())
    }

    /// Readout and loss over the workspace's steps `steps.from..steps.to`; with `grads`,
    /// also the readout's backward pass, leaving `∂L/∂h_t` from the outputs in `d_hidden`
    /// (row `(t − steps.from)·batch + b`).
    fn outputs(
        &mut self,
        model: &Model<F, C>,
        loss: &dyn Loss<F>,
        targets: SeqTargets<'_, F>,
        steps: Steps,
        grads: Option<(&mut recur_cell::LinearParams<F>, ReadoutWeights)>,
    ) -> Result<LossReport> {
        let (cell, readout) = (model.cell(), model.readout());
        let ws = &mut self.ws;
        let b = ws.batch;
        let rows = (steps.to - steps.from) * b;
        let (first, last) = ((steps.from + 1) * b, (steps.to + 1) * b);
        let hidden = if cell.state_size() == cell.hidden_size() {
            self::rows(&ws.states, first, last)
        } else {
            ensure(&mut ws.hidden, rows, cell.hidden_size());
            let states = self::rows(&ws.states, first, last);
            ws.hidden
                .slice_mut(s![..rows, ..])
                .assign(&cell.hidden(states));
            ws.hidden.slice(s![..rows, ..])
        };
        let outputs = readout.output_size();
        ensure(&mut ws.logits, rows, outputs);
        if ws.row_loss.len() < rows {
            ws.row_loss = Array1::zeros(rows);
        }
        readout.forward(hidden, rows_mut(&mut ws.logits, 0, rows))?;
        ws.output_rows = rows;
        ws.output_from = steps.from;
        let logits = self::rows(&ws.logits, 0, rows);
        let row_loss = ws.row_loss.view_mut().split_at(Axis(0), rows).0;
        let (t0, t1) = (steps.target_from, steps.target_from + steps.to - steps.from);
        let counted = targets.counted(t0, t1);
        let report = |row_loss: &Array1<F>| LossReport {
            total: row_loss
                .iter()
                .take(rows)
                .map(|v| v.to_f64_lossless())
                .sum(),
            counted,
        };
        let Some((grads, weights)) = grads else {
            evaluate_loss(loss, logits, (targets, t0, b), row_loss, None, F::one())?;
            return Ok(report(&ws.row_loss));
        };
        // Outputs that precede their pass's window (only `last(k)` has any) get no
        // gradient; the gradient scale counts only the rows that do.
        let excluded = excluded_steps(&ws.passes, steps.from);
        let excluded_rows: usize = excluded
            .clone()
            .map(|(a, z)| targets.counted(a - steps.from + t0, z - steps.from + t0))
            .sum();
        let scale = self.reduction.scale::<F>(counted - excluded_rows);
        ensure(&mut ws.d_logits, rows, outputs);
        let mut d_logits = rows_mut(&mut ws.d_logits, 0, rows);
        evaluate_loss(
            loss,
            logits,
            (targets, t0, b),
            row_loss,
            Some(d_logits.view_mut()),
            scale,
        )?;
        for (a, z) in excluded {
            d_logits
                .slice_mut(s![(a - steps.from) * b..(z - steps.from) * b, ..])
                .fill(F::zero());
        }
        ensure(&mut ws.d_hidden, rows, cell.hidden_size());
        let d_hidden = rows_mut(&mut ws.d_hidden, 0, rows);
        match weights {
            ReadoutWeights::Accumulate => {
                readout.backward(hidden, d_logits.view(), d_hidden, grads)?
            }
            ReadoutWeights::Defer => {
                readout.backward_except_weights(d_logits.view(), d_hidden, grads)?
            }
        }
        Ok(report(&ws.row_loss))
    }

    /// The backward sweep over the recurrence (see the type's docs). `d_hidden` row
    /// `(t − inject_from)·batch + b` is injected at step `t ≥ inject_from`.
    fn sweep(
        &mut self,
        cell: &C,
        inputs: SeqInput<'_, F>,
        inject_from: usize,
        grads: &mut C::Params,
    ) -> Result<()> {
        let ws = &mut self.ws;
        let (seq_len, b) = (ws.seq_len, ws.batch);
        let (width, hidden) = (cell.state_size(), cell.hidden_size());
        let max_blocks = self.truncation.max_live(seq_len);
        ensure(&mut ws.stack, max_blocks * b, width);
        ensure(&mut ws.stack_prev, max_blocks * b, width);
        ws.live.clear();
        let mut pending = ws.passes.len();
        let mut n = 0;
        for t in (0..seq_len).rev() {
            while pending > 0 && ws.passes[pending - 1].end == t {
                pending -= 1;
                ws.live.push_back(ws.passes[pending].start);
                rows_mut(&mut ws.stack, n * b, (n + 1) * b).fill(F::zero());
                n += 1;
            }
            if n == 0 {
                continue;
            }
            if t >= inject_from {
                // Output t belongs to the newest live pass: the one with the smallest end ≥ t.
                let r = t - inject_from;
                let mut newest = rows_mut(&mut ws.stack, (n - 1) * b, n * b);
                let from_outputs = rows(&ws.d_hidden, r * b, (r + 1) * b);
                match (newest.as_slice_mut(), from_outputs.as_slice()) {
                    // The usual case (state = hidden): two contiguous blocks, a plain loop.
                    (Some(to), Some(from)) if to.len() == from.len() => {
                        to.iter_mut().zip(from).for_each(|(t, &f)| *t += f);
                    }
                    _ => newest.slice_mut(s![.., ..hidden]).add_assign(&from_outputs),
                }
            }
            cell.backward_stacked(
                inputs.step(t),
                rows(&ws.states, t * b, (t + 1) * b),
                rows(&ws.states, (t + 1) * b, (t + 2) * b),
                &ws.caches[t],
                rows_mut(&mut ws.stack, 0, n * b),
                rows_mut(&mut ws.stack_prev, 0, n * b),
                grads,
            )?;
            let mut expired = 0;
            while ws.live.front() == Some(&t) {
                ws.live.pop_front();
                expired += 1;
            }
            if expired == 0 {
                std::mem::swap(&mut ws.stack, &mut ws.stack_prev);
            } else {
                n -= expired;
                rows_mut(&mut ws.stack, 0, n * b).assign(&rows(
                    &ws.stack_prev,
                    expired * b,
                    (expired + n) * b,
                ));
            }
        }
        Ok(())
    }
}

impl<F: Float, C: Cell<F>> Workspace<F, C> {
    /// The readout's input rows (the hidden part of the states) and `∂L/∂Z` of the last
    /// output pass.
    fn readout_rows(&self, cell: &C) -> (ArrayView2<'_, F>, ArrayView2<'_, F>) {
        let rows = self.output_rows;
        let hidden = if cell.state_size() == cell.hidden_size() {
            let first = (self.output_from + 1) * self.batch;
            self::rows(&self.states, first, first + rows)
        } else {
            self::rows(&self.hidden, 0, rows)
        };
        (hidden, self::rows(&self.d_logits, 0, rows))
    }
}

/// The first `n²` values of `buffer` (grown if needed) as an `n × n` matrix.
fn square<F: Float>(buffer: &mut Vec<F>, n: usize) -> ArrayViewMut2<'_, F> {
    if buffer.len() < n * n {
        buffer.resize(n * n, F::zero());
    }
    ArrayViewMut2::from_shape((n, n), &mut buffer[..n * n]).expect("the buffer holds n² values")
}

/// Logit entries from which the loss is split over threads: below, waking a worker costs
/// more than it saves.
const PARALLEL_LOSS_MIN: usize = 1 << 16;

/// [`Loss::evaluate`] on rows of whole steps (`batch` rows each; their targets start at
/// step `first_step`), split by steps over [`recur_core::linalg::threads`] when the logits are
/// big enough. Each row is computed exactly as on one thread.
fn evaluate_loss<F: Float>(
    loss: &dyn Loss<F>,
    logits: ArrayView2<'_, F>,
    (targets, first_step, batch): (SeqTargets<'_, F>, usize, usize),
    mut row_loss: ArrayViewMut1<'_, F>,
    mut d_logits: Option<ArrayViewMut2<'_, F>>,
    grad_scale: F,
) -> Result<()> {
    let steps = logits.nrows() / batch.max(1);
    let parts = if logits.len() >= PARALLEL_LOSS_MIN {
        (2 * recur_core::linalg::threads()).min(steps)
    } else {
        1
    };
    if parts <= 1 {
        let target_rows = targets.rows(first_step, first_step + steps);
        return loss.evaluate(logits, target_rows, row_loss, d_logits, grad_scale);
    }
    let steps_per_block = steps.div_ceil(parts);
    let rows = steps_per_block * batch;
    let mut d_chunks = d_logits
        .as_mut()
        .map(|d| d.axis_chunks_iter_mut(Axis(0), rows));
    let blocks = logits
        .axis_chunks_iter(Axis(0), rows)
        .zip(row_loss.axis_chunks_iter_mut(Axis(0), rows))
        .enumerate()
        .map(move |(i, (z, l))| (i, z, l, d_chunks.as_mut().and_then(Iterator::next)));
    let first_error = Mutex::new(None);
    recur_core::linalg::for_each_parallel(blocks, |(i, z, l, d)| {
        let from = first_step + i * steps_per_block;
        let target_rows = targets.rows(from, from + z.nrows() / batch);
        if let Err(e) = loss.evaluate(z, target_rows, l, d, grad_scale) {
            let mut slot = first_error.lock().unwrap_or_else(PoisonError::into_inner);
            slot.get_or_insert(e);
        }
    });
    match first_error
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
    {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// What streaming calls after each backward pass: apply (and zero) the gradient.
pub(crate) type UpdateFn<'a, F, C> =
    dyn FnMut(&mut Model<F, C>, &mut Gradients<F, C>, LossReport) -> Result<()> + 'a;

/// A range of workspace steps whose outputs are computed, and where their targets start.
#[derive(Debug, Clone, Copy)]
struct Steps {
    from: usize,
    to: usize,
    target_from: usize,
}

impl Steps {
    fn whole(seq_len: usize) -> Self {
        Steps {
            from: 0,
            to: seq_len,
            target_from: 0,
        }
    }
}

/// The step ranges `[a, z)` (at or after `from`) whose outputs no pass injects: those
/// between the previous pass's end and a pass's window start.
fn excluded_steps(
    passes: &[Pass],
    from: usize,
) -> impl Iterator<Item = (usize, usize)> + Clone + '_ {
    passes.iter().enumerate().filter_map(move |(i, p)| {
        let a = if i == 0 { 0 } else { passes[i - 1].end + 1 }.max(from);
        (p.start > a).then_some((a, p.start))
    })
}

/// Rows `from..to` of a workspace matrix. Splitting a view at row indices only moves a
/// pointer, where a general slice (or a view rebuilt from a flat slice) re-checks shapes and
/// strides; at one call per time step on small models that check was a tenth of the run.
fn rows<F: Float>(a: &Array2<F>, from: usize, to: usize) -> ArrayView2<'_, F> {
    let (_, tail) = a.view().split_at(Axis(0), from);
    tail.split_at(Axis(0), to - from).0
}

/// Rows `from..to` of a workspace matrix, writable (see [`rows`]).
fn rows_mut<F: Float>(a: &mut Array2<F>, from: usize, to: usize) -> ArrayViewMut2<'_, F> {
    let (_, tail) = a.view_mut().split_at(Axis(0), from);
    tail.split_at(Axis(0), to - from).0
}

/// Rows `from..from + len` and `to..to + len` of one workspace matrix, for a step that
/// reads the previous state (the first block, only read) and writes the next
/// (`from + len ≤ to`).
fn rows_pair<F: Float>(
    a: &mut Array2<F>,
    from: usize,
    to: usize,
    len: usize,
) -> (ArrayViewMut2<'_, F>, ArrayViewMut2<'_, F>) {
    let (head, tail) = a.view_mut().split_at(Axis(0), to);
    let read = head.split_at(Axis(0), from).1.split_at(Axis(0), len).0;
    (read, tail.split_at(Axis(0), len).0)
}

/// Steps `from..to` of `inputs`, as a view.
fn window_input<F: Float>(inputs: SeqInput<'_, F>, from: usize, to: usize) -> SeqInput<'_, F> {
    match inputs {
        SeqInput::Tokens(ids) => SeqInput::Tokens(ids.slice_move(s![from..to, ..])),
        SeqInput::Dense(x) => SeqInput::Dense(x.slice_move(s![from..to, .., ..])),
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use recur_cell::{ElmanConfig, LinearConfig, Tanh};
    use recur_core::params;
    use recur_loss::SoftmaxCrossEntropy;

    use super::*;

    /// The deferred readout gradient's norm (from Gram matrices) and its direct application
    /// equal the stored gradient's, for every truncation scheme and both reductions.
    #[test]
    fn deferred_readout_gradient_equals_the_stored_one() {
        let (vocab, hidden, len, batch) = (9, 5, 7, 3);
        let mut rng = StdRng::seed_from_u64(11);
        let cell = ElmanConfig::new(vocab, hidden)
            .init(Tanh, &mut rng)
            .unwrap();
        let readout = LinearConfig::new(hidden, vocab)
            .with_bias(true)
            .init(&mut rng)
            .unwrap();
        let model: Model<f64, _> = Model::new(cell, readout).unwrap();
        let x = Array2::from_shape_fn((len, batch), |_| rng.random_range(0..vocab));
        let y = Array2::from_shape_fn((len, batch), |_| rng.random_range(0..vocab));
        let seq = SeqBatch {
            inputs: SeqInput::Tokens(x.view()),
            targets: SeqTargets::Classes(y.view()),
        };
        let schemes = ["full", "chunked:3", "per-output:2", "last:2", "bptt:4:2"];
        for (scheme, reduction) in schemes
            .iter()
            .flat_map(|s| [(s, Reduction::Sum), (s, Reduction::Mean)])
        {
            let mut engine = Bptt::new(scheme.parse().unwrap(), reduction);
            let (mut stored, mut deferred) = (model.zero_grads(), model.zero_grads());
            let loss = &SoftmaxCrossEntropy;
            engine
                .accumulate(&model, loss, seq, None, &mut stored)
                .unwrap();
            engine
                .accumulate_with(
                    &model,
                    loss,
                    seq,
                    None,
                    &mut deferred,
                    ReadoutWeights::Defer,
                )
                .unwrap();
            assert!(deferred.readout.w_hy.iter().all(|&g| g == 0.0));
            assert_eq!(deferred.readout.b_y, stored.readout.b_y);
            let same_cell = params::flatten(&deferred.cell)
                .iter()
                .zip(params::flatten(&stored.cell))
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same_cell, "{scheme}: the cell's gradients differ");
            let expected = params::sum_of_squares(&stored.readout.w_hy);
            let got = engine.deferred_readout_sq_norm(model.cell()).unwrap();
            assert!(
                (got - expected).abs() <= 1e-12 * expected,
                "{scheme} {reduction:?}: {got} vs {expected}"
            );
            let mut applied = model.clone();
            engine.apply_deferred_readout(&mut applied, -0.5).unwrap();
            let reference = &model.readout().params().w_hy - &(0.5 * &stored.readout.w_hy);
            let diff = params::max_abs_diff(&applied.readout().params().w_hy, &reference);
            assert!(diff.unwrap() < 1e-14);
        }
    }
}
