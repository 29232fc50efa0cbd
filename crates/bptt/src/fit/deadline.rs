//! A time budget: the run ends at the first update boundary after a wall-clock duration
//! has passed, with the closing evaluation of a finished run.

use std::time::{Duration, Instant};

use recur_core::{Float, Result};

use super::observer::{Control, Observer, RunView};
use crate::UpdateReport;

/// Ends the run ([`Control::Finish`]) at the first update after `budget` has passed since
/// the deadline was made, so runs of different models can be given the same time. The
/// check is made after every update, so the run overshoots by at most one update and the
/// evaluation due with it; the closing evaluation comes on top.
///
/// The clock starts when the deadline is made: make it just before
/// [`Trainer::fit`](crate::Trainer::fit). A resumed run gets the whole budget again.
///
/// ```
/// use std::time::Duration;
/// use recur_bptt::Deadline;
///
/// let deadline = Deadline::new(Duration::from_secs(600));
/// assert_eq!(deadline.budget(), Duration::from_secs(600));
/// assert_eq!(deadline.stopped_at(), None);
/// ```
#[derive(Debug, Clone)]
pub struct Deadline {
    budget: Duration,
    started: Instant,
    stopped_at: Option<u64>,
}

impl Deadline {
    /// A budget of `budget` wall-clock time, starting now.
    pub fn new(budget: Duration) -> Self {
        Deadline {
            budget,
            started: Instant::now(),
            stopped_at: None,
        }
    }

    /// The time allowed.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// The update after which this deadline ended the run, if it did.
    pub fn stopped_at(&self) -> Option<u64> {
        self.stopped_at
    }
}

impl<F: Float> Observer<F> for Deadline {
    fn on_update(&mut self, _: &RunView<'_, F>, report: &UpdateReport) -> Result<Control> {
        if self.started.elapsed() <= self.budget {
            return Ok(Control::Continue);
        }
        self.stopped_at.get_or_insert(report.update);
        Ok(Control::Finish)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{fit_run, stream_data};
    use super::super::{EvaluateEvery, Fit, StopAfter, TokenBatches};
    use super::*;
    use crate::RunState;
    use recur_loss::SoftmaxCrossEntropy;

    /// The state after a streamed run watched by `observers` (none: the whole run).
    fn watched(observers: &mut [&mut dyn Observer<f64>]) -> RunState {
        let mut state = RunState::default();
        fit_run()
            .fit(&mut stream_data(), &mut state, observers)
            .unwrap();
        state
    }

    #[test]
    fn a_spent_budget_ends_the_run_after_its_first_update_with_a_closing_evaluation() {
        let whole = watched(&mut []);
        let mut deadline = Deadline::new(Duration::ZERO);
        let state = watched(&mut [&mut deadline]);
        assert_eq!((state.updates, deadline.stopped_at()), (1, Some(1)));
        assert!(state.updates < whole.updates);
        // The evaluation before training, then the closing one of the final weights
        // (fit_run evaluates only every 5 updates).
        let updates: Vec<u64> = state.evaluations.iter().map(|e| e.update).collect();
        assert_eq!(updates, [0, 1]);
        assert!(state.evaluations[1].train_loss.is_some());
    }

    #[test]
    fn an_ample_budget_changes_nothing() {
        let whole = watched(&mut []);
        let mut deadline = Deadline::new(Duration::from_secs(3600));
        let state = watched(&mut [&mut deadline]);
        assert_eq!(deadline.stopped_at(), None);
        assert_eq!(
            (state.updates, state.epoch, state.evaluations.len()),
            (whole.updates, whole.epoch, whole.evaluations.len())
        );
    }

    /// A run ended by the deadline resumes where it stood, like a stopped one, and the
    /// times of its evaluations go on from its recorded seconds.
    #[test]
    fn a_finished_run_resumes_and_its_clock_goes_on() {
        let mut deadline = Deadline::new(Duration::ZERO);
        let mut first = fit_run();
        let mut state = RunState::default();
        first
            .fit(&mut stream_data(), &mut state, &mut [&mut deadline])
            .unwrap();
        let seconds = state.seconds;
        assert!(seconds > 0.0);
        let mut second = first.reopen();
        second.fit(&mut stream_data(), &mut state, &mut []).unwrap();
        assert_eq!(state.epoch, 2);
        let times: Vec<f64> = state.evaluations.iter().map(|e| e.elapsed_s).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
        assert!(times[2] >= seconds && state.seconds >= times[times.len() - 1]);
    }

    /// A stop outranks a finish: with both answered at once there is no closing
    /// evaluation.
    #[test]
    fn a_stop_answered_with_a_finish_wins() {
        use rand::{rngs::StdRng, SeedableRng};
        use recur_cell::{ElmanConfig, LinearConfig, Tanh};
        use recur_loss::Reduction;
        use recur_optim::Sgd;

        assert_eq!(Control::Finish.and(Control::Stop), Control::Stop);
        assert_eq!(Control::Continue.and(Control::Finish), Control::Finish);
        let fresh = || {
            let mut rng = StdRng::seed_from_u64(1);
            let cell = ElmanConfig::new(4, 6)
                .init::<f64, _>(Tanh, &mut rng)
                .unwrap();
            let readout = LinearConfig::new(6, 4).init(&mut rng).unwrap();
            let model = crate::Model::new(cell, readout).unwrap();
            let sgd = Box::new(Sgd::new(0.1).unwrap());
            let truncation = crate::Truncation::full();
            let trainer = crate::Trainer::new(&model, truncation, Reduction::Mean, sgd);
            (model, trainer)
        };
        let sentences = (0..6).map(|i| (vec![i % 4, 1, 2], vec![1, 2, 3])).collect();
        let mut train = TokenBatches::sentences(sentences).unwrap();
        // Evaluating once per epoch, a finish mid-epoch still evaluates the last weights;
        // a stop at the same update does not.
        for (stopping, evaluations) in [(false, 2), (true, 1)] {
            let (mut model, mut trainer) = fresh();
            let mut deadline = Deadline::new(Duration::ZERO);
            let mut stop = StopAfter(if stopping { 1 } else { u64::MAX });
            let fit = Fit::epochs(3)
                .evaluate_every(EvaluateEvery::Epoch)
                .observe(&mut deadline)
                .observe(&mut stop);
            let (mut state, loss) = (RunState::default(), &SoftmaxCrossEntropy);
            let result = trainer.fit(&mut model, loss, &mut train, fit, &mut state);
            result.unwrap();
            assert_eq!((state.updates, state.evaluations.len()), (1, evaluations));
        }
    }
}
