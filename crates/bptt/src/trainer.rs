//! The training loop's pieces: engine, optimizer, clipping and counters in one place.

use ndarray::{Array2, ArrayView2};
use recur_cell::{Cell, Linear, Readout};
use recur_core::{params, Error, Float, ParamSet, Result};
use recur_loss::{Loss, Reduction};
use recur_optim::{Clip, Optimizer};

use crate::fit::Control;
use crate::fused::{FusedSgd, UpdatePlan};
use crate::{Bptt, Gradients, LossReport, Model, SeqBatch, Truncation};

/// What the training loop runs after each streamed update: sees the model, the optimizer
/// and the state carried on (so a run can record where it stands), may stop the stream.
pub(crate) type AfterUpdate<'a, F, C, R> = dyn FnMut(
        &Model<F, C, R>,
        &mut dyn Optimizer<F>,
        &UpdateReport,
        ArrayView2<'_, F>,
    ) -> Result<Control>
    + 'a;

/// What one parameter update saw and did; handed to progress bars and loss curves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpdateReport {
    /// Number of updates made so far, this one included.
    pub update: u64,
    /// Loss of the data behind this update.
    pub loss: LossReport,
    /// Global norm of the gradient before clipping.
    pub grad_norm: f64,
    /// Rows (tokens) trained on so far, this update included.
    pub tokens: u64,
    /// Learning rate used for this update.
    pub learning_rate: f64,
}

/// Trains a [`Model`]: gradients from a [`Bptt`] engine, then clipping and an optimizer
/// step. Two update policies:
/// - [`Trainer::train_batch`]: one update per batch of sequences, gradients accumulated over
///   all of its backward passes (the language-model tutorial's policy);
/// - [`Trainer::train_stream`]: one update after every backward pass while streaming over a
///   long text, carrying the hidden state on (the char-RNN policy).
///
/// A non-finite loss or gradient stops with [`Error::NonFinite`] before the optimizer runs,
/// so parameters are never overwritten with NaN.
///
/// **Fused SGD step.** With plain SGD ([`Optimizer::plain_step_rate`]), no clipping or
/// clipping by global norm, short batches and a readout that offers it
/// ([`Readout::deferrable_slot`], as [`Linear`] does), [`Trainer::train_batch`] never stores
/// the readout's weight gradient `G = Hᵀ·Δ` (for a language model, the largest gradient by
/// far): its norm comes from `H·Hᵀ` and `Δ·Δᵀ`, and the step `W ← W − lr·G` is one matrix
/// product straight into the weights. The result equals the stored-gradient path up to
/// rounding.
///
/// ```
/// use ndarray::Array3;
/// use rand::{rngs::StdRng, SeedableRng};
/// use recur_bptt::{Model, SeqBatch, SeqInput, SeqTargets, Trainer, Truncation};
/// use recur_cell::{ElmanConfig, LinearConfig, Sigmoid};
/// use recur_loss::{MeanSquaredError, Reduction};
/// use recur_optim::Sgd;
///
/// let mut rng = StdRng::seed_from_u64(0);
/// let cell = ElmanConfig::new(1, 8).init::<f64, _>(Sigmoid, &mut rng)?;
/// let mut model = Model::new(cell, LinearConfig::new(8, 1).init(&mut rng)?)?;
/// let mut trainer = Trainer::new(&model, Truncation::full(), Reduction::Sum, Box::new(Sgd::new(0.5)?));
/// // Learn to echo the previous input bit.
/// let x = Array3::from_shape_vec((6, 1, 1), vec![1.0, 0.0, 0.0, 1.0, 1.0, 0.0]).unwrap();
/// let y = Array3::from_shape_vec((6, 1, 1), vec![0.0, 1.0, 0.0, 0.0, 1.0, 1.0]).unwrap();
/// let batch = SeqBatch { inputs: SeqInput::Dense(x.view()), targets: SeqTargets::Dense(y.view()) };
/// let loss = MeanSquaredError::new(Sigmoid);
/// let first = trainer.train_batch(&mut model, &loss, batch, None)?;
/// for _ in 0..300 {
///     trainer.train_batch(&mut model, &loss, batch, None)?;
/// }
/// let last = trainer.train_batch(&mut model, &loss, batch, None)?;
/// assert!(last.loss.total < first.loss.total / 4.0);
/// # Ok::<(), recur_core::Error>(())
/// ```
#[derive(Debug)]
pub struct Trainer<F: Float, C: Cell<F>, R: Readout<F> = Linear<F>> {
    engine: Bptt<F, C, R>,
    grads: Gradients<F, C, R>,
    /// Whether `grads` is all zeros, as every successful update leaves it.
    grads_zero: bool,
    stepper: Stepper<F>,
    fused: FusedSgd<F>,
}

/// The part of a trainer that turns a gradient into an update.
#[derive(Debug)]
pub(crate) struct Stepper<F: Float> {
    pub(crate) optimizer: Box<dyn Optimizer<F>>,
    pub(crate) clip: Clip,
    updates: u64,
    tokens: u64,
}

impl<F: Float> Stepper<F> {
    /// The number the next update will have.
    pub(crate) fn next_update(&self) -> u64 {
        self.updates + 1
    }

    fn update(
        &mut self,
        model: &mut dyn ParamSet<F>,
        grads: &mut dyn ParamSet<F>,
        loss: LossReport,
    ) -> Result<UpdateReport> {
        let update = self.updates + 1;
        finite("loss", loss.total, update)?;
        let grad_norm = params::global_norm(grads).to_f64_lossless();
        finite("gradient", grad_norm, update)?;
        self.clip.apply(grads)?;
        let learning_rate = self.optimizer.learning_rate().to_f64_lossless();
        // The engine checked the layout and the norm is finite: no need to check again.
        self.optimizer.step_prechecked(model, grads)?;
        grads.zero();
        Ok(self.count(loss, grad_norm, learning_rate))
    }

    /// Counts a successful update and reports it.
    pub(crate) fn count(
        &mut self,
        loss: LossReport,
        grad_norm: f64,
        learning_rate: f64,
    ) -> UpdateReport {
        self.updates += 1;
        self.tokens += loss.counted as u64;
        UpdateReport {
            update: self.updates,
            loss,
            grad_norm,
            tokens: self.tokens,
            learning_rate,
        }
    }
}

/// [`Error::NonFinite`] for update number `update` unless `value` is finite.
pub(crate) fn finite(what: &'static str, value: f64, update: u64) -> Result<()> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(Error::NonFinite { what, update })
    }
}

impl<F: Float, C: Cell<F>, R: Readout<F>> Trainer<F, C, R> {
    /// A trainer for `model` (whose layout sizes the gradient buffers) with the given
    /// truncation, loss reduction and optimizer, and no clipping.
    pub fn new(
        model: &Model<F, C, R>,
        truncation: Truncation,
        reduction: Reduction,
        optimizer: Box<dyn Optimizer<F>>,
    ) -> Self {
        Trainer {
            engine: Bptt::new(truncation, reduction),
            grads: model.zero_grads(),
            grads_zero: true,
            stepper: Stepper {
                optimizer,
                clip: Clip::None,
                updates: 0,
                tokens: 0,
            },
            fused: FusedSgd::default(),
        }
    }

    /// Sets gradient clipping, applied after the non-finite check and before each step.
    pub fn with_clip(mut self, clip: Clip) -> Self {
        self.stepper.clip = clip;
        self
    }

    /// One update from one batch: forward, truncated backward over the whole batch, clip,
    /// optimizer step.
    ///
    /// # Errors
    /// Shape and token errors from the engine; [`Error::NonFinite`] (parameters unchanged);
    /// optimizer errors.
    pub fn train_batch(
        &mut self,
        model: &mut Model<F, C, R>,
        loss: &dyn Loss<F>,
        batch: SeqBatch<'_, F>,
        initial: Option<ArrayView2<'_, F>>,
    ) -> Result<UpdateReport> {
        let rows = batch.inputs.seq_len() * batch.inputs.batch();
        let stepper = &self.stepper;
        let sgd_rate = stepper.optimizer.plain_step_rate();
        let plan = UpdatePlan::choose(sgd_rate, stepper.clip, model.readout(), rows);
        self.dirty_grads();
        let (engine, grads) = (&mut self.engine, &mut self.grads);
        let report =
            engine.accumulate_with(model, loss, batch, initial, grads, plan.readout_grad())?;
        let update = match plan {
            UpdatePlan::Fused { slot, rate } => {
                let fused = &mut self.fused;
                fused.update(
                    &mut self.stepper,
                    engine,
                    model,
                    grads,
                    (slot, rate),
                    report,
                )?
            }
            UpdatePlan::Stored => self.stepper.update(model, grads, report)?,
        };
        self.grads_zero = true;
        Ok(update)
    }

    /// Zeroes the gradient buffers unless they are known to be zero, and marks them as
    /// about to be written.
    fn dirty_grads(&mut self) {
        if !self.grads_zero {
            self.grads.zero();
        }
        self.grads_zero = false;
    }

    /// Streams over one long batch of sequences (`[T, B]`, T as long as a whole text):
    /// every stride h′ steps it back-propagates through the last h steps and updates the
    /// parameters, carrying the hidden state on. Memory holds h steps, not T.
    /// `on_update` is called after each update. Returns the final state.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a truncation without a stride ([`Truncation::full`],
    /// [`Truncation::last`]); otherwise as [`Trainer::train_batch`].
    pub fn train_stream(
        &mut self,
        model: &mut Model<F, C, R>,
        loss: &dyn Loss<F>,
        batch: SeqBatch<'_, F>,
        initial: Option<ArrayView2<'_, F>>,
        on_update: &mut dyn FnMut(&UpdateReport),
    ) -> Result<Array2<F>> {
        let mut after = |_: &Model<F, C, R>,
                         _: &mut dyn Optimizer<F>,
                         report: &UpdateReport,
                         _: ArrayView2<'_, F>| {
            on_update(report);
            Ok(Control::Continue)
        };
        Ok(self.stream_with(model, loss, batch, initial, &mut after)?.0)
    }

    /// [`Trainer::train_stream`] for the training loop: `after` sees the model and the
    /// optimizer after each update and may stop the stream.
    pub(crate) fn stream_with(
        &mut self,
        model: &mut Model<F, C, R>,
        loss: &dyn Loss<F>,
        batch: SeqBatch<'_, F>,
        initial: Option<ArrayView2<'_, F>>,
        after: &mut AfterUpdate<'_, F, C, R>,
    ) -> Result<(Array2<F>, Control)> {
        self.dirty_grads();
        let stepper = &mut self.stepper;
        let result = self.engine.stream(
            model,
            loss,
            batch,
            initial,
            &mut self.grads,
            &mut |model, grads, report, state| {
                let update = stepper.update(model, grads, report)?;
                after(model, stepper.optimizer.as_mut(), &update, state)
            },
        )?;
        self.grads_zero = true;
        Ok(result)
    }

    /// Loss of a batch under the current parameters (no update).
    ///
    /// # Errors
    /// As [`Bptt::evaluate`]; [`Error::NonFinite`] when the loss is NaN or infinite, as in
    /// training.
    pub fn evaluate(
        &mut self,
        model: &Model<F, C, R>,
        loss: &dyn Loss<F>,
        batch: SeqBatch<'_, F>,
    ) -> Result<LossReport> {
        let report = self.engine.evaluate(model, loss, batch, None)?;
        finite("loss", report.total, self.stepper.updates)?;
        Ok(report)
    }

    /// The engine, read-only (hidden states and logits of the last batch).
    pub fn engine(&self) -> &Bptt<F, C, R> {
        &self.engine
    }

    /// The engine (for forward passes and hidden states).
    pub fn engine_mut(&mut self) -> &mut Bptt<F, C, R> {
        &mut self.engine
    }

    /// The optimizer.
    pub fn optimizer(&self) -> &dyn Optimizer<F> {
        self.stepper.optimizer.as_ref()
    }

    /// The engine (with the logits of the last batch) and the optimizer, at once.
    pub(crate) fn engine_and_optimizer(&mut self) -> (&Bptt<F, C, R>, &mut dyn Optimizer<F>) {
        (&self.engine, self.stepper.optimizer.as_mut())
    }

    /// The optimizer, writable (learning-rate schedules act on it).
    pub fn optimizer_mut(&mut self) -> &mut dyn Optimizer<F> {
        self.stepper.optimizer.as_mut()
    }

    /// Updates made so far.
    pub fn updates(&self) -> u64 {
        self.stepper.updates
    }

    /// Rows (tokens) trained on so far.
    pub fn tokens(&self) -> u64 {
        self.stepper.tokens
    }

    /// Restores the counters of a resumed run.
    pub fn set_counters(&mut self, updates: u64, tokens: u64) {
        self.stepper.updates = updates;
        self.stepper.tokens = tokens;
    }
}
