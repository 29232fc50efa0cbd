//! Streaming: forward and backward over one long batch in windows, with an update after
//! every backward pass and the state carried on. Memory holds the window, not the text.

use ndarray::{Array2, ArrayView2};
use recur_cell::{Cell, Readout};
use recur_core::{Error, Float, Result};
use recur_loss::Loss;

use super::outputs::{ReadoutGrad, Steps};
use super::workspace::window_input;
use super::{Bptt, LossReport};
use crate::fit::Control;
use crate::model::{Gradients, Model};
use crate::sequence::SeqBatch;
use crate::truncation::Pass;

/// What streaming calls after each backward pass: apply (and zero) the gradient, and say
/// whether to go on; it also sees the state the stream carries on from that point.
pub(crate) type UpdateFn<'a, F, C, R> = dyn FnMut(
        &mut Model<F, C, R>,
        &mut Gradients<F, C, R>,
        LossReport,
        ArrayView2<'_, F>,
    ) -> Result<Control>
    + 'a;

impl<F: Float, C: Cell<F>, R: Readout<F>> Bptt<F, C, R> {
    /// Streaming training over one long batch of sequences: every `stride` steps,
    /// back-propagates through the last `window` steps and calls `update` with the
    /// accumulated gradient (which it must apply and zero), carrying the state forward.
    /// Only the last `window` steps are kept, so memory does not grow with the length.
    ///
    /// Returns the final state, and whether `update` asked to stop (the state is then the
    /// one after the last update).
    pub(crate) fn stream(
        &mut self,
        model: &mut Model<F, C, R>,
        loss: &dyn Loss<F>,
        batch: SeqBatch<'_, F>,
        initial: Option<ArrayView2<'_, F>>,
        grads: &mut Gradients<F, C, R>,
        update: &mut UpdateFn<'_, F, C, R>,
    ) -> Result<(Array2<F>, Control)> {
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
            let (from, to) = (local(done), local(done + new));
            self.forward_steps(model.cell(), view, from, to, true)?;
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
            let readout = Some((&mut grads.readout, ReadoutGrad::Store));
            let report = self.outputs(model, loss, batch.targets, steps, readout)?;
            self.sweep(model.cell(), view, steps.from, &mut grads.cell)?;
            let control = update(model, grads, report, self.final_state())?;
            done += new;
            if control != Control::Continue {
                return Ok((self.final_state().to_owned(), control));
            }
        }
        Ok((self.final_state().to_owned(), Control::Continue))
    }

    /// Drops the `drop` oldest of the `kept` cached steps of the streaming window.
    fn slide(&mut self, drop: usize, kept: usize, batch: usize) {
        if drop == 0 {
            return;
        }
        let ws = &mut self.ws;
        let width = ws.states.ncols();
        let flat = ws
            .states
            .as_slice_mut()
            .expect("workspace arrays are standard layout");
        flat.copy_within(drop * batch * width..(kept + 1) * batch * width, 0);
        ws.caches[..kept].rotate_left(drop);
    }
}
