//! The outputs of all steps at once: the readout's logits, the loss (split over threads
//! when it is large) and the readout's backward pass.

use std::sync::{Mutex, PoisonError};

use ndarray::{s, Array1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis};
use recur_cell::{Cell, Readout};
use recur_core::{Float, Result};
use recur_loss::Loss;

use super::workspace::{ensure, hidden_is_state, rows, rows_mut};
use super::{Bptt, LossReport};
use crate::model::Model;
use crate::sequence::SeqTargets;
use crate::truncation::Pass;

/// What the readout's backward pass does with the gradient of its
/// [`Readout::deferrable_slot`] (the weights whose gradient is `Hᵀ·∂L/∂Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadoutGrad {
    /// Added into the gradient buffers, like every other gradient.
    Store,
    /// Not formed: the fused SGD step ([`crate::fused`]) takes its norm from Gram matrices
    /// and adds it, scaled, straight to the weights.
    Defer,
}

/// A range of workspace steps whose outputs are computed, and where their targets start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Steps {
    pub(crate) from: usize,
    pub(crate) to: usize,
    pub(crate) target_from: usize,
}

impl Steps {
    pub(crate) fn whole(seq_len: usize) -> Self {
        Steps {
            from: 0,
            to: seq_len,
            target_from: 0,
        }
    }
}

impl<F: Float, C: Cell<F>, R: Readout<F>> Bptt<F, C, R> {
    /// Readout and loss over the workspace's steps `steps.from..steps.to`; with `grads`,
    /// also the readout's backward pass, leaving `∂L/∂h_t` from the outputs in `d_hidden`
    /// (row `(t − steps.from)·batch + b`).
    pub(crate) fn outputs(
        &mut self,
        model: &Model<F, C, R>,
        loss: &dyn Loss<F>,
        targets: SeqTargets<'_, F>,
        steps: Steps,
        grads: Option<(&mut R::Params, ReadoutGrad)>,
    ) -> Result<LossReport> {
        let (cell, readout) = (model.cell(), model.readout());
        let ws = &mut self.ws;
        let b = ws.batch;
        let n_rows = (steps.to - steps.from) * b;
        let (first, last) = ((steps.from + 1) * b, (steps.to + 1) * b);
        let hidden = if hidden_is_state(cell) {
            rows(&ws.states, first, last)
        } else {
            ensure(&mut ws.hidden, n_rows, cell.hidden_size());
            let states = rows(&ws.states, first, last);
            ws.hidden
                .slice_mut(s![..n_rows, ..])
                .assign(&cell.hidden(states));
            ws.hidden.slice(s![..n_rows, ..])
        };
        let outputs = readout.output_size();
        ensure(&mut ws.logits, n_rows, outputs);
        if ws.row_loss.len() < n_rows {
            ws.row_loss = Array1::zeros(n_rows);
        }
        let logits = rows_mut(&mut ws.logits, 0, n_rows);
        readout.forward(hidden, logits, &mut ws.readout_cache)?;
        ws.output_rows = n_rows;
        ws.output_from = steps.from;
        let logits = rows(&ws.logits, 0, n_rows);
        let row_loss = ws.row_loss.view_mut().split_at(Axis(0), n_rows).0;
        let (t0, t1) = (steps.target_from, steps.target_from + steps.to - steps.from);
        let counted = targets.counted(t0, t1);
        let report = |row_loss: &Array1<F>| LossReport {
            total: row_loss
                .iter()
                .take(n_rows)
                .map(|v| v.to_f64_lossless())
                .sum(),
            counted,
        };
        let Some((grads, mode)) = grads else {
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
        ensure(&mut ws.d_logits, n_rows, outputs);
        let mut d_logits = rows_mut(&mut ws.d_logits, 0, n_rows);
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
        ensure(&mut ws.d_hidden, n_rows, cell.hidden_size());
        let d_hidden = rows_mut(&mut ws.d_hidden, 0, n_rows);
        let cache = &ws.readout_cache;
        match mode {
            ReadoutGrad::Store => {
                readout.backward(hidden, cache, d_logits.view(), d_hidden, grads)?
            }
            ReadoutGrad::Defer => {
                readout.backward_deferred(hidden, cache, d_logits.view(), d_hidden, grads)?
            }
        }
        Ok(report(&ws.row_loss))
    }
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
    let block_rows = steps_per_block * batch;
    let mut d_chunks = d_logits
        .as_mut()
        .map(|d| d.axis_chunks_iter_mut(Axis(0), block_rows));
    let blocks = logits
        .axis_chunks_iter(Axis(0), block_rows)
        .zip(row_loss.axis_chunks_iter_mut(Axis(0), block_rows))
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
