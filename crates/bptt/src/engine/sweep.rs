//! The backward sweep over the recurrence: one pass from the last step to the first,
//! carrying the state gradient of every live backward pass of the truncation scheme.

use std::ops::{AddAssign, Range};

use ndarray::s;
use recur_cell::{Cell, Readout, StepDeltas, StepRecord, SweepRecord};
use recur_core::{Float, Result};

use super::workspace::{ensure, flat_input, rows, rows_mut};
use super::Bptt;
use crate::sequence::SeqInput;
use crate::truncation::Pass;

impl<F: Float, C: Cell<F>, R: Readout<F>> Bptt<F, C, R> {
    /// The backward sweep (see [`Bptt`]'s docs). `d_hidden` row `(t − inject_from)·batch + b`
    /// is injected at step `t ≥ inject_from`; the cell's gradients are added into `grads`.
    ///
    /// At step `t` the sweep holds one block of `batch` rows per live pass, oldest first:
    /// a pass becomes live when the sweep reaches its last step (a zero block is pushed),
    /// receives the outputs' gradient of the steps it owns, and expires after its first
    /// step. All blocks go through the cell at once with [`Cell::backward_stacked`].
    pub(crate) fn sweep(
        &mut self,
        cell: &C,
        inputs: SeqInput<'_, F>,
        inject_from: usize,
        grads: &mut C::Params,
    ) -> Result<()> {
        let ws = &mut self.ws;
        let (seq_len, b) = (ws.seq_len, ws.batch);
        let width = cell.state_size();
        let h_cols = cell.hidden_offset()..cell.hidden_offset() + cell.hidden_size();
        let max_blocks = self.truncation.max_live(seq_len);
        ensure(&mut ws.stack, max_blocks * b, width);
        ensure(&mut ws.stack_prev, max_blocks * b, width);
        // The steps some pass reaches, and with a tape their inputs as one block.
        let Some(swept) = swept_steps(&ws.passes) else {
            return Ok(());
        };
        let tape_width = cell.tape_width();
        let flat_x = (tape_width > 0)
            .then(|| flat_input(inputs, swept.start, swept.end))
            .flatten();
        if flat_x.is_some() {
            ensure(&mut ws.tape, seq_len * b, tape_width);
        }
        ws.live.clear();
        let mut pending = ws.passes.len();
        let mut live = 0;
        for t in (0..seq_len).rev() {
            while pending > 0 && ws.passes[pending - 1].end == t {
                pending -= 1;
                ws.live.push_back(ws.passes[pending].start);
                rows_mut(&mut ws.stack, live * b, (live + 1) * b).fill(F::zero());
                live += 1;
            }
            if live == 0 {
                if flat_x.is_some() && swept.contains(&t) {
                    // A gap between passes: no gradient at this step.
                    rows_mut(&mut ws.tape, t * b, (t + 1) * b).fill(F::zero());
                }
                continue;
            }
            if t >= inject_from {
                // Output t belongs to the newest live pass: the one with the smallest end ≥ t.
                let r = t - inject_from;
                let mut newest = rows_mut(&mut ws.stack, (live - 1) * b, live * b);
                let from_outputs = rows(&ws.d_hidden, r * b, (r + 1) * b);
                match (newest.as_slice_mut(), from_outputs.as_slice()) {
                    // The usual case (state = hidden): two contiguous blocks, a plain loop.
                    (Some(to), Some(from)) if to.len() == from.len() => {
                        to.iter_mut().zip(from).for_each(|(t, &f)| *t += f);
                    }
                    _ => newest
                        .slice_mut(s![.., h_cols.clone()])
                        .add_assign(&from_outputs),
                }
            }
            let step = StepRecord {
                x: inputs.step(t).reborrow(),
                prev: rows(&ws.states, t * b, (t + 1) * b),
                next: rows(&ws.states, (t + 1) * b, (t + 2) * b),
                cache: &ws.caches[t],
            };
            let deltas = StepDeltas {
                d_next: rows_mut(&mut ws.stack, 0, live * b),
                d_prev: rows_mut(&mut ws.stack_prev, 0, live * b),
                d_x: None,
                tape: flat_x.map(|_| rows_mut(&mut ws.tape, t * b, (t + 1) * b)),
            };
            cell.backward_stacked(step, deltas, grads)?;
            let mut expired = 0;
            while ws.live.front() == Some(&t) {
                ws.live.pop_front();
                expired += 1;
            }
            if expired == 0 {
                std::mem::swap(&mut ws.stack, &mut ws.stack_prev);
            } else {
                live -= expired;
                rows_mut(&mut ws.stack, 0, live * b).assign(&rows(
                    &ws.stack_prev,
                    expired * b,
                    (expired + live) * b,
                ));
            }
        }
        if let Some(x) = flat_x {
            let (from, to) = (swept.start * b, swept.end * b);
            let record = SweepRecord {
                x: x.reborrow(),
                prev: rows(&ws.states, from, to),
                next: rows(&ws.states, from + b, to + b),
                tape: rows(&ws.tape, from, to),
            };
            cell.backward_sequence(record, grads)?;
        }
        Ok(())
    }
}

/// The steps from the first step of any pass to the last step of any pass, or `None`
/// without passes.
fn swept_steps(passes: &[Pass]) -> Option<Range<usize>> {
    let start = passes.iter().map(|p| p.start).min()?;
    let end = passes.iter().map(|p| p.end).max()?;
    Some(start..end + 1)
}
