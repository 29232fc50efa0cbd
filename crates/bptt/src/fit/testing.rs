//! A tiny streamed run for the observers' tests: build, fit, stop, reopen as a checkpoint
//! would, compare.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rand::{rngs::StdRng, SeedableRng};
use recur_cell::{Elman, ElmanConfig, LinearConfig, Tanh};
use recur_core::{ParamSet, Result};
use recur_loss::{Reduction, SoftmaxCrossEntropy};
use recur_optim::Adagrad;

use super::{Control, EvaluateEvery, Fit, Observer, RunState, RunView, TokenBatches};
use crate::{Model, Trainer, Truncation, UpdateReport};

type Net = Model<f64, Elman<f64, Tanh>>;

/// A model, and a trainer streaming with `chunked(5)` and Adagrad.
pub(super) struct FitRun {
    model: Net,
    trainer: Trainer<f64, Elman<f64, Tanh>>,
}

/// A 120-token text over 6 ids, streamed in 3 pieces.
pub(super) fn stream_data() -> TokenBatches {
    let ids = (0..121).map(|i: usize| (i * i + i / 7) % 6).collect();
    TokenBatches::stream(ids, 3).unwrap()
}

/// A fresh run (seeded, the same every time).
pub(super) fn fit_run() -> FitRun {
    let mut rng = StdRng::seed_from_u64(5);
    let cell = ElmanConfig::new(6, 8)
        .init::<f64, _>(Tanh, &mut rng)
        .unwrap();
    let model = Model::new(cell, LinearConfig::new(8, 6).init(&mut rng).unwrap()).unwrap();
    let optimizer = Box::new(Adagrad::new(0.3, 1e-8).unwrap());
    let trainer = Trainer::new(&model, chunked(), Reduction::Mean, optimizer);
    FitRun { model, trainer }
}

fn chunked() -> Truncation {
    Truncation::chunked(5).unwrap()
}

impl FitRun {
    /// Two epochs over `data`, evaluating every 5 updates on the text itself.
    pub(super) fn fit(
        &mut self,
        data: &mut TokenBatches,
        state: &mut RunState,
        observers: &mut [&mut dyn Observer<f64>],
    ) -> Result<()> {
        let mut valid = stream_data();
        let mut fit = Fit::epochs(2)
            .evaluate_every(EvaluateEvery::Updates(5))
            .validate_on(&mut valid);
        for observer in observers.iter_mut() {
            fit = fit.observe(&mut **observer);
        }
        self.trainer
            .fit(&mut self.model, &SoftmaxCrossEntropy, data, fit, state)
    }

    /// The model and the optimizer's state in a new trainer, as a checkpoint restores them.
    pub(super) fn reopen(&self) -> FitRun {
        let optimizer = self.trainer.optimizer().state().into_optimizer().unwrap();
        let trainer = Trainer::new(&self.model, chunked(), Reduction::Mean, optimizer);
        FitRun {
            model: self.model.clone(),
            trainer,
        }
    }

    /// Every parameter, slot after slot.
    pub(super) fn params(&self) -> Vec<f64> {
        (0..self.model.slot_count())
            .flat_map(|i| self.model.slot(i).value.iter().copied().collect::<Vec<_>>())
            .collect()
    }
}

/// Sets a flag after a given update (what a signal handler would do, at a known point).
pub(super) struct Raise {
    update: u64,
    flag: Arc<AtomicBool>,
}

impl Raise {
    pub(super) fn at(update: u64, flag: &Arc<AtomicBool>) -> Self {
        Raise {
            update,
            flag: Arc::clone(flag),
        }
    }
}

impl Observer<f64> for Raise {
    fn on_update(&mut self, _: &RunView<'_, f64>, report: &UpdateReport) -> Result<Control> {
        if report.update == self.update {
            self.flag.store(true, Ordering::SeqCst);
        }
        Ok(Control::Continue)
    }
}
