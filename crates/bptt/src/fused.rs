//! The fused SGD step, in one place. With plain SGD, the readout's deferrable weights
//! (`Linear`'s `W_hy`, whose gradient is `G = Hᵀ·Δ` with `H` the readout's input rows and
//! `Δ = ∂L/∂Z`) are updated inside the product that would form their gradient:
//! `W ← W − lr·Hᵀ·Δ`. `G` is never stored; its norm, needed for the reported gradient norm
//! and for clipping, comes from two `rows × rows` Gram matrices:
//! `‖Hᵀ·Δ‖² = Σᵣₛ (H·Hᵀ)ᵣₛ (Δ·Δᵀ)ᵣₛ`. For a language model's `100 × 8000` readout at
//! batch 1 that removes four passes over 800,000 gradient entries per update.
//!
//! The readout offers the deferral ([`Readout::deferrable_slot`]); the engine runs its
//! backward pass without that gradient ([`ReadoutGrad::Defer`]); this module decides when
//! fusing pays, computes the norm, steps the other parameters and applies the product.

use ndarray::ArrayViewMut2;
use recur_cell::{Cell, Readout};
use recur_core::params::{self, fill_zero};
use recur_core::{Float, ParamSet, Result, Slot, SlotMut};
use recur_optim::Clip;

use crate::engine::ReadoutGrad;
use crate::trainer::{finite, Stepper};
use crate::{Bptt, Gradients, LossReport, Model, UpdateReport};

/// When the SGD step on the readout weights is fused into the product that computes their
/// gradient, the gradient's norm comes from two `rows × rows` Gram matrices, about
/// `rows²·(inputs + outputs)` multiply-adds; storing the gradient instead costs a few passes
/// over its `inputs·outputs` entries. Fusing is chosen while the first is at most this many
/// times the second. Measured on the language model (vocabulary 8000, hidden 100), the two
/// paths break even near 64 rows, and this factor puts the limit at 68. Binary addition's
/// 16 × 1 readout never qualifies.
const FUSED_GRAM_PER_ENTRY: usize = 48;

/// The fused step's reused buffers.
#[derive(Debug, Default)]
pub(crate) struct FusedSgd<F> {
    /// `H·Hᵀ` and `Δ·Δᵀ`.
    grams: [Vec<F>; 2],
}

/// How a batch's update is made: the readout's gradient stored and every slot stepped by
/// the optimizer, or plain SGD fused into the readout's product at this rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum UpdatePlan<F> {
    /// The usual path.
    Stored,
    /// The fused path, with the slot the readout defers and the SGD rate.
    Fused {
        /// The readout slot whose gradient is deferred.
        slot: usize,
        /// The plain-SGD learning rate.
        rate: F,
    },
}

impl<F: Float> UpdatePlan<F> {
    /// The plan for a batch of `rows` rows: fused when the optimizer is plain SGD
    /// (`sgd_rate`), clipping scales the gradient uniformly, the readout defers a slot of
    /// `inputs × outputs` weights, and the Gram matrices cost less than storing (see
    /// [`FUSED_GRAM_PER_ENTRY`]).
    pub(crate) fn choose<R: Readout<F>>(
        sgd_rate: Option<F>,
        clip: Clip,
        readout: &R,
        rows: usize,
    ) -> Self {
        let uniform_clip = matches!(clip, Clip::None | Clip::GlobalNorm(_));
        let (Some(rate), Some(slot), true) = (sgd_rate, readout.deferrable_slot(), uniform_clip)
        else {
            return UpdatePlan::Stored;
        };
        let (inputs, outputs) = (readout.input_size(), readout.output_size());
        let gram = rows.saturating_mul(rows).saturating_mul(inputs + outputs);
        let stored = FUSED_GRAM_PER_ENTRY.saturating_mul(inputs * outputs);
        if gram <= stored {
            UpdatePlan::Fused { slot, rate }
        } else {
            UpdatePlan::Stored
        }
    }

    /// What the engine's readout backward pass does under this plan.
    pub(crate) fn readout_grad(&self) -> ReadoutGrad {
        match self {
            UpdatePlan::Stored => ReadoutGrad::Store,
            UpdatePlan::Fused { .. } => ReadoutGrad::Defer,
        }
    }
}

impl<F: Float> FusedSgd<F> {
    /// Squared Frobenius norm of the readout gradient `G = Hᵀ·Δ` that the engine's last
    /// [`ReadoutGrad::Defer`] pass left unformed, from `H·Hᵀ` and `Δ·Δᵀ`.
    pub(crate) fn deferred_sq_norm<C: Cell<F>, R: Readout<F>>(
        &mut self,
        engine: &Bptt<F, C, R>,
        cell: &C,
    ) -> Result<f64> {
        let (h, d) = engine.readout_rows(cell);
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
        // Rounding can take a true zero slightly below it; a NaN stays NaN (`max` would
        // drop it), so the trainer's finiteness check sees it.
        Ok(if sum.is_nan() { sum } else { sum.max(0.0) })
    }
}

impl<F: Float> FusedSgd<F> {
    /// The update of a [`UpdatePlan::Fused`] batch after the engine's deferred pass: the
    /// checks, clipping and SGD step of [`Stepper`], with the deferred readout slot updated
    /// inside the product that forms its gradient.
    pub(crate) fn update<C: Cell<F>, R: Readout<F>>(
        &mut self,
        stepper: &mut Stepper<F>,
        engine: &Bptt<F, C, R>,
        model: &mut Model<F, C, R>,
        grads: &mut Gradients<F, C, R>,
        (slot, rate): (usize, F),
        loss: LossReport,
    ) -> Result<UpdateReport> {
        let update = stepper.next_update();
        finite("loss", loss.total, update)?;
        let deferred = self.deferred_sq_norm(engine, model.cell())?;
        let mut rest = grads_without(grads, slot);
        let grad_norm = (params::sum_of_squares(&rest) + deferred).sqrt();
        finite("gradient", grad_norm, update)?;
        let Some(factor) = stepper.clip.uniform_factor(grad_norm)? else {
            unreachable!("fused updates are planned only for uniform clipping")
        };
        let factor = F::from_f64_lossy(factor);
        if factor < F::one() {
            params::scale(&mut rest, factor);
        }
        let learning_rate = stepper.optimizer.learning_rate().to_f64_lossless();
        stepper
            .optimizer
            .step_prechecked(&mut model_without(model, slot), &rest)?;
        apply_deferred(engine, model, -(rate * factor))?;
        rest.zero();
        Ok(stepper.count(loss, grad_norm, learning_rate))
    }
}

/// Adds `alpha·Hᵀ·Δ`, the deferred readout gradient of the engine's last pass scaled by
/// `alpha`, to the readout's deferred weights.
fn apply_deferred<F: Float, C: Cell<F>, R: Readout<F>>(
    engine: &Bptt<F, C, R>,
    model: &mut Model<F, C, R>,
    alpha: F,
) -> Result<()> {
    let (cell, readout) = model.parts_mut();
    let (h, d) = engine.readout_rows(cell);
    readout.add_deferred(alpha, h, d)
}

/// A model's parameters without the deferred readout slot: what the optimizer steps on the
/// fused path.
fn model_without<F: Float, C: Cell<F>, R: Readout<F>>(
    model: &mut Model<F, C, R>,
    slot: usize,
) -> impl ParamSet<F> + '_ {
    let (cell, readout) = model.parts_mut();
    (
        cell.params_mut(),
        WithoutSlot::new(readout.params_mut(), slot),
    )
}

/// The gradients without the deferred readout slot (which the engine left untouched).
fn grads_without<F: Float, C: Cell<F>, R: Readout<F>>(
    grads: &mut Gradients<F, C, R>,
    slot: usize,
) -> impl ParamSet<F> + '_ {
    (&mut grads.cell, WithoutSlot::new(&mut grads.readout, slot))
}

/// A parameter set with one slot hidden. Zeroing leaves the hidden slot alone (on the fused
/// path its gradient was never formed, so it is already zero).
struct WithoutSlot<'a, F> {
    set: &'a mut dyn ParamSet<F>,
    hidden: usize,
}

impl<'a, F: Float> WithoutSlot<'a, F> {
    fn new(set: &'a mut dyn ParamSet<F>, hidden: usize) -> Self {
        WithoutSlot { set, hidden }
    }

    /// The index in the full set of this view's slot `index`.
    fn inner(&self, index: usize) -> usize {
        if index < self.hidden {
            index
        } else {
            index + 1
        }
    }
}

impl<F: Float> ParamSet<F> for WithoutSlot<'_, F> {
    fn slot_count(&self) -> usize {
        self.set.slot_count() - 1
    }
    fn slot(&self, index: usize) -> Slot<'_, F> {
        self.set.slot(self.inner(index))
    }
    fn slot_mut(&mut self, index: usize) -> SlotMut<'_, F> {
        let inner = self.inner(index);
        self.set.slot_mut(inner)
    }
    fn write_path(&self, index: usize, out: &mut String) {
        self.set.write_path(self.inner(index), out);
    }
    fn zero(&mut self) {
        for i in 0..self.slot_count() {
            fill_zero(&mut self.slot_mut(i).value);
        }
    }
}

/// The first `n²` values of `buffer` (grown if needed) as an `n × n` matrix.
fn square<F: Float>(buffer: &mut Vec<F>, n: usize) -> ArrayViewMut2<'_, F> {
    if buffer.len() < n * n {
        buffer.resize(n * n, F::zero());
    }
    ArrayViewMut2::from_shape((n, n), &mut buffer[..n * n]).expect("the buffer holds n² values")
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use recur_cell::{ElmanConfig, Linear, LinearConfig, Tanh};
    use recur_core::params;
    use recur_loss::{Reduction, SoftmaxCrossEntropy};
    use recur_optim::{Momentum, Optimizer, Sgd};

    use super::*;
    use crate::{SeqBatch, SeqInput, SeqTargets};

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
                .accumulate_with(&model, loss, seq, None, &mut deferred, ReadoutGrad::Defer)
                .unwrap();
            assert!(deferred.readout.w_hy.iter().all(|&g| g == 0.0));
            assert_eq!(deferred.readout.b_y, stored.readout.b_y);
            let same_cell = params::flatten(&deferred.cell)
                .iter()
                .zip(params::flatten(&stored.cell))
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same_cell, "{scheme}: the cell's gradients differ");
            let expected = params::sum_of_squares(&stored.readout.w_hy);
            let got = FusedSgd::default()
                .deferred_sq_norm(&engine, model.cell())
                .unwrap();
            assert!(
                (got - expected).abs() <= 1e-12 * expected,
                "{scheme} {reduction:?}: {got} vs {expected}"
            );
            let mut applied = model.clone();
            apply_deferred(&engine, &mut applied, -0.5).unwrap();
            let reference = &model.readout().weights().w_hy - &(0.5 * &stored.readout.w_hy);
            let diff = params::max_abs_diff(&applied.readout().weights().w_hy, &reference);
            assert!(diff.unwrap() < 1e-14);
        }
    }

    fn plan(
        optimizer: &dyn Optimizer<f64>,
        clip: Clip,
        rows: usize,
        shape: (usize, usize),
    ) -> UpdatePlan<f64> {
        let readout: Linear<f64> = LinearConfig::new(shape.0, shape.1)
            .init(&mut StdRng::seed_from_u64(0))
            .unwrap();
        UpdatePlan::choose(optimizer.plain_step_rate(), clip, &readout, rows)
    }

    #[test]
    fn fusion_pays_only_for_wide_readouts() {
        let sgd = Sgd::new(0.1).unwrap();
        let fused = UpdatePlan::Fused { slot: 0, rate: 0.1 };
        // The language model at batch 1 (20 rows, 100 × 8000), and the readout of
        // `tests/fused_sgd.rs` (14 rows, 8 × 200).
        assert_eq!(plan(&sgd, Clip::None, 20, (100, 8000)), fused);
        assert_eq!(plan(&sgd, Clip::None, 14, (8, 200)), fused);
        // Batch 32 of the language model, and binary addition's 16 × 1 readout.
        assert_eq!(plan(&sgd, Clip::None, 640, (100, 8000)), UpdatePlan::Stored);
        assert_eq!(plan(&sgd, Clip::None, 8, (16, 1)), UpdatePlan::Stored);
        assert_eq!(plan(&sgd, Clip::GlobalNorm(1.0), 20, (100, 8000)), fused);
        assert_eq!(
            plan(&sgd, Clip::Value(1.0), 20, (100, 8000)),
            UpdatePlan::Stored
        );
        let momentum = Momentum::new(0.1, 0.9).unwrap();
        assert_eq!(
            plan(&momentum, Clip::None, 20, (100, 8000)),
            UpdatePlan::Stored
        );
    }
}
