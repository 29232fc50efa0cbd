//! A gradient check cannot pass by accident: a non-finite gradient, analytic or numeric,
//! fails it in every build profile and names the slot and entry.

use ndarray::{ArrayView2, ArrayViewMut2};
use rand::{rngs::StdRng, SeedableRng};
use recur_bptt::{gradient_check, Model, SeqBatch};
use recur_cell::{
    Cell, Elman, ElmanConfig, ElmanParams, Input, LinearConfig, ParamSet, StepDeltas, StepRecord,
    Tanh,
};
use recur_core::{Error, Result};
use recur_loss::{Reduction, SoftmaxCrossEntropy};

/// An Elman cell whose backward pass writes `value` into one entry of one gradient slot.
#[derive(Debug)]
struct Poisoned {
    inner: Elman<f64, Tanh>,
    slot: usize,
    index: usize,
    value: f64,
}

impl Cell<f64> for Poisoned {
    type Params = ElmanParams<f64>;
    type Cache = <Elman<f64, Tanh> as Cell<f64>>::Cache;

    fn input_size(&self) -> usize {
        self.inner.input_size()
    }
    fn hidden_size(&self) -> usize {
        self.inner.hidden_size()
    }
    fn params(&self) -> &dyn ParamSet<f64> {
        self.inner.params()
    }
    fn params_mut(&mut self) -> &mut dyn ParamSet<f64> {
        self.inner.params_mut()
    }
    fn zero_grads(&self) -> Self::Params {
        self.inner.zero_grads()
    }
    fn new_cache(&self, batch: usize) -> Self::Cache {
        self.inner.new_cache(batch)
    }
    fn forward(
        &self,
        x: Input<'_, f64>,
        prev: ArrayView2<'_, f64>,
        next: ArrayViewMut2<'_, f64>,
        cache: &mut Self::Cache,
    ) -> Result<()> {
        self.inner.forward(x, prev, next, cache)
    }
    fn backward(
        &self,
        step: StepRecord<'_, f64, Self::Cache>,
        deltas: StepDeltas<'_, f64>,
        grads: &mut Self::Params,
    ) -> Result<()> {
        self.inner.backward(step, deltas, grads)?;
        let mut slot = grads.slot_mut(self.slot);
        if let Some(entry) = slot.value.iter_mut().nth(self.index) {
            *entry = self.value;
        }
        Ok(())
    }
}

fn poisoned_model(slot: usize, index: usize, value: f64) -> Model<f64, Poisoned> {
    let mut rng = StdRng::seed_from_u64(11);
    let inner = ElmanConfig::new(5, 4)
        .init::<f64, _>(Tanh, &mut rng)
        .unwrap();
    let readout = LinearConfig::new(4, 5).init(&mut rng).unwrap();
    let cell = Poisoned {
        inner,
        slot,
        index,
        value,
    };
    Model::new(cell, readout).unwrap()
}

fn check(model: &mut Model<f64, Poisoned>) -> recur_bptt::GradCheckReport {
    let (x, y) = ([0usize, 3, 2, 4], [3usize, 2, 4, 1]);
    let batch = SeqBatch::sentence(&x, &y).unwrap();
    gradient_check(model, &SoftmaxCrossEntropy, batch, Reduction::Sum, 1e-5, 1).unwrap()
}

#[test]
fn a_nan_analytic_gradient_fails_the_check_naming_slot_and_index() {
    for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut model = poisoned_model(1, 6, value);
        let slot_name = recur_core::params::path(&model, 1);
        let report = check(&mut model);

        let max = report.max_relative_error();
        assert!(max.is_nan(), "{value}: maximum {max} hides it: {report:#?}");
        assert_eq!(
            report.non_finite(),
            Some((slot_name.as_str(), 6)),
            "{report:#?}"
        );
        assert_eq!(report.slots[1].non_finite, Some(6));
        assert_eq!(report.slots[1].worst_index, 6);
        assert!(!report.passes(1e-6));

        let err = report.ensure(1e-6).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(&slot_name), "{message}");
        assert!(message.contains("entry 6"), "{message}");
        assert!(message.contains("not finite"), "{message}");
    }
}

#[test]
fn a_nan_in_a_slot_after_the_worst_one_still_fails() {
    // The poisoned entry is not the first one compared, and other slots have finite
    // errors both before and after it.
    let mut model = poisoned_model(0, 3, f64::NAN);
    let report = check(&mut model);
    assert!(report.max_relative_error().is_nan(), "{report:#?}");
    assert_eq!(report.non_finite().map(|(_, i)| i), Some(3));
    assert!(report.slots[1..].iter().all(|s| s.non_finite.is_none()));
}

#[test]
fn a_healthy_cell_passes_and_reports_no_non_finite_entry() {
    // The same wrapper writing a harmless value far outside the checked entries.
    let mut model = poisoned_model(0, usize::MAX, 0.0);
    let report = check(&mut model);
    assert_eq!(report.non_finite(), None);
    assert!(report.passes(1e-6), "{report:#?}");
    report.ensure(1e-6).unwrap();
    // A NaN tolerance cannot be met.
    assert!(!report.passes(f64::NAN));
}
