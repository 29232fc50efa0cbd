//! The training loop's pieces: engine, optimizer, clipping and counters in one place.

use ndarray::{Array2, ArrayView2};
use recur_cell::Cell;
use recur_core::{params, Error, Float, ParamSet, Result};
use recur_loss::{Loss, Reduction};
use recur_optim::{Clip, Optimizer};

use crate::engine::ReadoutWeights;
use crate::fused::WithoutReadoutWeight;
use crate::{Bptt, Gradients, LossReport, Model, SeqBatch, Truncation};

/// When the SGD step on the readout weights is fused into the product that computes their
/// gradient, the gradient's norm comes from two `rows × rows` Gram matrices, about
/// `rows²·(hidden + outputs)` multiply-adds; storing the gradient instead costs a few passes
/// over its `hidden·outputs` entries. Fusing is chosen while the first is at most this many
/// times the second. Measured on the language model (vocabulary 8000, hidden 100), the two
/// paths break even near 64 rows, and this factor puts the limit at 68. Binary addition's
/// 16 × 1 readout never qualifies.
const FUSED_GRAM_PER_ENTRY: usize = 48;

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
/// clipping by global norm, and short batches, [`Trainer::train_batch`] never stores the
/// readout's weight gradient `G = Hᵀ·Δ` (for a language model, the largest gradient by
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
pub struct Trainer<F: Float, C: Cell<F>> {
    engine: Bptt<F, C>,
    grads: Gradients<F, C>,
    /// Whether `grads` is all zeros, as every successful update leaves it.
    grads_zero: bool,
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

    /// The plain-SGD rate when the next update, of a batch of `rows` rows through a readout
    /// of `hidden × outputs` weights, can be fused and pays (see [`Trainer`]).
    fn fused_rate(&self, rows: usize, (hidden, outputs): (usize, usize)) -> Option<F> {
        let uniform_clip = matches!(self.clip, Clip::None | Clip::GlobalNorm(_));
        let rate = self.optimizer.plain_step_rate()?;
        let gram = rows.saturating_mul(rows).saturating_mul(hidden + outputs);
        let stored = FUSED_GRAM_PER_ENTRY.saturating_mul(hidden * outputs);
        (uniform_clip && gram <= stored).then_some(rate)
    }

    /// [`Stepper::update`] after a [`ReadoutWeights::Defer`] pass of `engine`: the same
    /// checks, clipping and SGD step (at `rate`), with the readout weights updated inside the
    /// product that forms their gradient.
    fn update_fused<C: Cell<F>>(
        &mut self,
        model: &mut Model<F, C>,
        grads: &mut Gradients<F, C>,
        engine: &mut Bptt<F, C>,
        loss: LossReport,
        rate: F,
    ) -> Result<UpdateReport> {
        let update = self.updates + 1;
        finite("loss", loss.total, update)?;
        let mut rest = WithoutReadoutWeight::of_grads(grads);
        let deferred = engine.deferred_readout_sq_norm(model.cell())?;
        let grad_norm = (params::sum_of_squares(&rest) + deferred).sqrt();
        finite("gradient", grad_norm, update)?;
        let Some(factor) = self.clip.uniform_factor(grad_norm)? else {
            unreachable!("fused updates are chosen only for uniform clipping")
        };
        let factor = F::from_f64_lossy(factor);
        if factor < F::one() {
            params::scale(&mut rest, factor);
        }
        let learning_rate = self.optimizer.learning_rate().to_f64_lossless();
        self.optimizer
            .step_prechecked(&mut WithoutReadoutWeight::of_model(model), &rest)?;
        engine.apply_deferred_readout(model, -(rate * factor))?;
        rest.zero();
        Ok(self.count(loss, grad_norm, learning_rate))
    }

    /// Counts a successful update and reports it.
    fn count(&mut self, loss: LossReport, grad_norm: f64, learning_rate: f64) -> UpdateReport {
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
fn finite(what: &'static str, value: f64, update: u64) -> Result<()> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(Error::NonFinite { what, update })
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
            grads_zero: true,
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
        let rows = batch.inputs.seq_len() * batch.inputs.batch();
        let readout = model.readout();
        let fused = self
            .stepper
            .fused_rate(rows, (readout.hidden_size(), readout.output_size()));
        self.dirty_grads();
        let weights = match fused {
            Some(_) => ReadoutWeights::Defer,
            None => ReadoutWeights::Accumulate,
        };
        let (engine, grads) = (&mut self.engine, &mut self.grads);
        let report = engine.accumulate_with(model, loss, batch, initial, grads, weights)?;
        let update = match fused {
            Some(rate) => self
                .stepper
                .update_fused(model, grads, engine, report, rate)?,
            None => self.stepper.update(model, grads, report)?,
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
        model: &mut Model<F, C>,
        loss: &dyn Loss<F>,
        batch: SeqBatch<'_, F>,
        initial: Option<ArrayView2<'_, F>>,
        on_update: &mut dyn FnMut(&UpdateReport),
    ) -> Result<Array2<F>> {
        self.dirty_grads();
        let stepper = &mut self.stepper;
        let state = self.engine.stream(
            model,
            loss,
            batch,
            initial,
            &mut self.grads,
            &mut |model, grads, report| {
                on_update(&stepper.update(model, grads, report)?);
                Ok(())
            },
        )?;
        self.grads_zero = true;
        Ok(state)
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

#[cfg(test)]
mod tests {
    use recur_optim::{Momentum, Sgd};

    use super::*;

    fn stepper(optimizer: Box<dyn Optimizer<f64>>, clip: Clip) -> Stepper<f64> {
        Stepper {
            optimizer,
            clip,
            updates: 0,
            tokens: 0,
        }
    }

    #[test]
    fn fusion_pays_only_for_wide_readouts() {
        let sgd = stepper(Box::new(Sgd::new(0.1).unwrap()), Clip::None);
        // The language model at batch 1 (20 rows, 100 × 8000), and the readout of
        // `tests/fused_sgd.rs` (14 rows, 8 × 200).
        assert_eq!(sgd.fused_rate(20, (100, 8000)), Some(0.1));
        assert_eq!(sgd.fused_rate(14, (8, 200)), Some(0.1));
        // Batch 32 of the language model, and binary addition's 16 × 1 readout.
        assert_eq!(sgd.fused_rate(640, (100, 8000)), None);
        assert_eq!(sgd.fused_rate(8, (16, 1)), None);
        let clipped = stepper(Box::new(Sgd::new(0.1).unwrap()), Clip::GlobalNorm(1.0));
        assert_eq!(clipped.fused_rate(20, (100, 8000)), Some(0.1));
        let by_value = stepper(Box::new(Sgd::new(0.1).unwrap()), Clip::Value(1.0));
        assert_eq!(by_value.fused_rate(20, (100, 8000)), None);
        let momentum = stepper(Box::new(Momentum::new(0.1, 0.9).unwrap()), Clip::None);
        assert_eq!(momentum.fused_rate(20, (100, 8000)), None);
    }
}
