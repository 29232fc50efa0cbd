//! What a run has done: counters, its position in the data, its evaluations and the
//! schedule's state. All serde, so a checkpoint can carry it and a resumed run continues
//! where the saved one stood.

use ndarray::{Array2, ArrayView2};
use recur_core::{Error, Float, Result};
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
    /// Training loss since the last evaluation: summed, and the rows counted. The next
    /// evaluation reports their mean, resumed or not. (Absent from older states: zero.)
    #[serde(default)]
    pub since_evaluation: (f64, usize),
    /// For streamed data, where the stream stands inside the epoch; `None` for batch data
    /// and at the start of an epoch. (Absent from older states: the batch restarts with a
    /// zero state.)
    #[serde(default)]
    pub stream: Option<StreamPoint>,
    /// Wall-clock seconds spent in [`Trainer::fit`](crate::Trainer::fit) so far, its
    /// evaluations included, resumed parts added up (the time between runs is not).
    /// (Absent from older states: zero.)
    #[serde(default)]
    pub seconds: f64,
}

/// Where a streamed run stands: the steps of the current batch ([`RunState::position`])
/// already trained on, and the state carried on from there. With it a resumed run
/// continues exactly where the saved one stood, for schemes whose window equals their
/// stride ([`Truncation::chunked`](crate::Truncation::chunked)); a scheme reaching further
/// back starts its first window afresh at the offset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamPoint {
    /// Steps of the current batch already trained on (0 at a batch boundary).
    pub offset: usize,
    /// Rows (sequences) of the carried state; its columns are `state.len() / rows`.
    pub rows: usize,
    /// The carried state, row-major, widened to `f64` (exact for `f32` and `f64`).
    pub state: Vec<f64>,
}

impl StreamPoint {
    /// Records `offset` and `state`, reusing the buffer (no allocation once it is large
    /// enough).
    pub fn record<F: Float>(&mut self, offset: usize, state: ArrayView2<'_, F>) {
        self.offset = offset;
        self.rows = state.nrows();
        self.state.clear();
        self.state.extend(state.iter().map(|v| v.to_f64_lossless()));
    }

    /// The carried state as a `[rows, columns]` matrix of `F`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the stored values do not make whole rows (a damaged
    /// or hand-edited state).
    pub fn carried<F: Float>(&self) -> Result<Array2<F>> {
        let cols = self.state.len().checked_div(self.rows).unwrap_or(0);
        let values = self.state.iter().map(|&v| F::from_f64_lossy(v)).collect();
        Array2::from_shape_vec((self.rows, cols), values).map_err(|_| {
            Error::config(
                "run state",
                format!(
                    "the carried stream state holds {} values, not {} whole rows",
                    self.state.len(),
                    self.rows
                ),
            )
        })
    }
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
    /// [`RunState::seconds`] when it was taken: the run's wall-clock time so far, the
    /// evaluations before it included. (Absent from older states: zero.)
    #[serde(default)]
    pub elapsed_s: f64,
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A checkpoint keeps the run state as JSON; a resumed run is bit-identical only if
        /// every float in it parses back to the same bits (serde_json's default parser can
        /// miss by an ulp: the workspace enables its `float_roundtrip`).
        #[test]
        fn run_state_floats_survive_json_to_the_bit(
            values in proptest::collection::vec(any::<f64>().prop_filter("finite", |v| v.is_finite()), 1..64),
        ) {
            let mut state = RunState::default();
            let mut point = StreamPoint::default();
            let rows = ndarray::ArrayView2::from_shape((1, values.len()), &values).unwrap();
            point.record(3, rows);
            state.stream = Some(point);
            state.since_evaluation = (values[0], 1);
            let back: RunState = serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
            let stored = back.stream.unwrap().state;
            prop_assert_eq!(
                stored.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                values.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
            prop_assert_eq!(back.since_evaluation.0.to_bits(), values[0].to_bits());
        }
    }
}
