//! The training loop's pieces: engine, optimizer, clipping and counters in one place.

use ndarray::{Array2, ArrayView2};
use recur_cell::Cell;
use recur_core::{params, Error, Float, ParamSet, Result};
use recur_loss::{Loss, Reduction};
use recur_optim::{Clip, Optimizer};

use crate::{Bptt, Gradients, LossReport, Model, SeqBatch, Truncation};

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
pub struct Trainer<F: Float, C: Cell<F>> {
    engine: Bptt<F, C>,
    grads: Gradients<F, C>,
    stepper: Stepper<F>,
}

/// The part of a trainer that turns a gradient into an update.
#[derive(Debug)]
struct Stepper<F: Float> {
    optimizer: Box<dyn Optimizer<F>>,
    clip: Clip,
    updates: u64,
    tokens: u64,
}

impl<F: Float> Stepper<F> {
    fn update(
        &mut self,
        model: &mut dyn ParamSet<F>,
        grads: &mut dyn ParamSet<F>,
        loss: LossReport,
    ) -> Result<UpdateReport> {
        let update = self.updates + 1;
        if !loss.total.is_finite() {
            return Err(Error::NonFinite {
                what: "loss",
                update,
            });
        }
        let grad_norm = params::global_norm(grads).to_f64_lossless();
        if !grad_norm.is_finite() {
            return Err(Error::NonFinite {
                what: "gradient",
                update,
            });
        }
        self.clip.apply(grads)?;
        let learning_rate = self.optimizer.learning_rate().to_f64_lossless();
        self.optimizer.step(model, grads)?;
        grads.zero();
        self.updates = update;
        self.tokens += loss.counted as u64;
        Ok(UpdateReport {
            update,
            loss,
            grad_norm,
            tokens: self.tokens,
            learning_rate,
        })
    }
}

impl<F: Float, C: Cell<F>> Trainer<F, C> {
    /// A trainer for `model` (whose layout sizes the gradient buffers) with the given
    /// truncation, loss reduction and optimizer, and no clipping.
    pub fn new(
        model: &Model<F, C>,
        truncation: Truncation,
        reduction: Reduction,
        optimizer: Box<dyn Optimizer<F>>,
    ) -> Self {
        Trainer {
            engine: Bptt::new(truncation, reduction),
            grads: model.zero_grads(),
            stepper: Stepper {
                optimizer,
                clip: Clip::None,
                updates: 0,
                tokens: 0,
            },
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
        model: &mut Model<F, C>,
        loss: &dyn Loss<F>,
        batch: SeqBatch<'_, F>,
        initial: Option<ArrayView2<'_, F>>,
    ) -> Result<UpdateReport> {
        self.grads.zero();
        let report = self
            .engine
            .accumulate(model, loss, batch, initial, &mut self.grads)?;
        self.stepper.update(model, &mut self.grads, report)
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
        model: &mut Model<F, C>,
        loss: &dyn Loss<F>,
        batch: SeqBatch<'_, F>,
        initial: Option<ArrayView2<'_, F>>,
        on_update: &mut dyn FnMut(&UpdateReport),
    ) -> Result<Array2<F>> {
        self.grads.zero();
        let stepper = &mut self.stepper;
        self.engine.stream(
            model,
            loss,
            batch,
            initial,
            &mut self.grads,
            &mut |model, grads, report| {
                on_update(&stepper.update(model, grads, report)?);
                Ok(())
            },
        )
    }

    /// Loss of a batch under the current parameters (no update).
    ///
    /// # Errors
    /// As [`Bptt::evaluate`].
    pub fn evaluate(
        &mut self,
        model: &Model<F, C>,
        loss: &dyn Loss<F>,
        batch: SeqBatch<'_, F>,
    ) -> Result<LossReport> {
        self.engine.evaluate(model, loss, batch, None)
    }

    /// The engine, read-only (hidden states and logits of the last batch).
    pub fn engine(&self) -> &Bptt<F, C> {
        &self.engine
    }

    /// The engine (for forward passes and hidden states).
    pub fn engine_mut(&mut self) -> &mut Bptt<F, C> {
        &mut self.engine
    }

    /// The optimizer.
    pub fn optimizer(&self) -> &dyn Optimizer<F> {
        self.stepper.optimizer.as_ref()
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
