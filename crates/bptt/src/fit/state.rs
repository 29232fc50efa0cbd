//! What a run has done: counters, its position in the data, its evaluations and the
//! schedule's state. All serde, so a checkpoint can carry it and a resumed run continues
//! where the saved one stood.

use recur_optim::Schedule;
use serde::{Deserialize, Serialize};

/// Where a [`Trainer::fit`](crate::Trainer::fit) run stands.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// Epochs finished.
    pub epoch: usize,
    /// Batches of the current epoch already trained on.
    pub position: usize,
    /// Updates made so far.
    pub updates: u64,
    /// Tokens (counted rows) trained on so far.
    pub tokens: u64,
    /// Every evaluation, the first before any update.
    pub evaluations: Vec<Evaluation>,
    /// The learning-rate schedule, with its state.
    pub schedule: Schedule,
}

impl RunState {
    /// A fresh run with the given learning-rate schedule.
    pub fn with_schedule(schedule: Schedule) -> Self {
        RunState {
            schedule,
            ..RunState::default()
        }
    }

    /// The evaluation with the lowest validation loss (or training loss, without
    /// validation data), if any.
    pub fn best(&self) -> Option<&Evaluation> {
        self.evaluations
            .iter()
            .filter(|e| e.watched().is_some())
            .min_by(|a, b| {
                a.watched()
                    .partial_cmp(&b.watched())
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
    }
}

/// One evaluation during a run: losses are means per counted token.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Updates made when it was taken.
    pub update: u64,
    /// Epochs finished when it was taken.
    pub epoch: usize,
    /// Tokens trained on when it was taken.
    pub tokens: u64,
    /// Mean training loss of the updates since the previous evaluation (`None` for the
    /// evaluation before training).
    pub train_loss: Option<f64>,
    /// Mean loss on the validation data, if the run has any.
    pub valid_loss: Option<f64>,
    /// The learning rate in force when it was taken.
    pub learning_rate: f64,
    /// Training throughput since the previous evaluation.
    pub tokens_per_s: f64,
}

impl Evaluation {
    /// The loss that drives schedules and early stopping: validation if present, else
    /// training.
    pub fn watched(&self) -> Option<f64> {
        self.valid_loss.or(self.train_loss)
    }

    /// `exp` of the mean training loss: the perplexity, for a language model.
    pub fn train_perplexity(&self) -> Option<f64> {
        self.train_loss.map(f64::exp)
    }

    /// `exp` of the mean validation loss.
    pub fn valid_perplexity(&self) -> Option<f64> {
        self.valid_loss.map(f64::exp)
    }
}
