//! Observers of a training run: the trait, and the observers that need no dependency
//! (stopping rules and a CSV loss log). Progress bars and plots live with the programs
//! that draw them.

use std::io::Write;

use ndarray::ArrayView2;
use recur_core::{Error, Float, ParamSet, Result};
use recur_optim::Optimizer;

use super::state::{Evaluation, RunState};
use crate::UpdateReport;

/// An observer's answer: go on, or end the run after this point (the state then says
/// where it stopped, so it can resume).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Control {
    /// Go on.
    #[default]
    Continue,
    /// End the run as if its epochs were done: the model is evaluated once more if it was
    /// updated since the last evaluation, whatever [`EvaluateEvery`](crate::EvaluateEvery)
    /// says, so the run's last evaluation is of its final weights (a time budget ends
    /// this way).
    Finish,
    /// Stop the run at once, without a closing evaluation (an interrupt, a divergence).
    Stop,
}

impl Control {
    /// The stronger of two answers: `Stop` over `Finish` over `Continue`.
    pub fn and(self, other: Control) -> Control {
        match (self, other) {
            (Control::Stop, _) | (_, Control::Stop) => Control::Stop,
            (Control::Finish, _) | (_, Control::Finish) => Control::Finish,
            _ => Control::Continue,
        }
    }
}

/// What an observer sees of the run: the model's parameters (named by path), the
/// optimizer, where the run stands, and the logits of the batch just trained on.
#[derive(Clone, Copy)]
pub struct RunView<'a, F> {
    /// The model's parameters.
    pub params: &'a dyn ParamSet<F>,
    /// After an update from a (non-streamed) batch, the logits of its forward pass, computed
    /// before the update (row `t·batch + b`): what the model predicted for data it had not
    /// yet learned from. `None` otherwise.
    pub logits: Option<ArrayView2<'a, F>>,
    /// The optimizer (its state is what a checkpoint saves).
    pub optimizer: &'a dyn Optimizer<F>,
    /// Counters, position, evaluations and schedule.
    pub state: &'a RunState,
}

impl<F> std::fmt::Debug for RunView<'_, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunView")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// Watches a [`Trainer::fit`](crate::Trainer::fit) run. Every method does nothing by
/// default; an observer implements what it needs. Answering [`Control::Finish`] or
/// [`Control::Stop`] ends the run cleanly; an error ends it with that error.
pub trait Observer<F: Float> {
    /// After every update.
    ///
    /// # Errors
    /// Whatever the observer cannot do (a failed save, say); the run stops with it.
    fn on_update(&mut self, view: &RunView<'_, F>, report: &UpdateReport) -> Result<Control> {
        let _ = (view, report);
        Ok(Control::Continue)
    }

    /// After every evaluation (the first comes before any update).
    ///
    /// # Errors
    /// As [`Observer::on_update`].
    fn on_evaluation(&mut self, view: &RunView<'_, F>, evaluation: &Evaluation) -> Result<Control> {
        let _ = (view, evaluation);
        Ok(Control::Continue)
    }

    /// After every finished epoch (and its evaluation).
    ///
    /// # Errors
    /// As [`Observer::on_update`].
    fn on_epoch_end(&mut self, view: &RunView<'_, F>) -> Result<Control> {
        let _ = view;
        Ok(Control::Continue)
    }

    /// Once, when the run ends without error (finished or stopped).
    ///
    /// # Errors
    /// As [`Observer::on_update`].
    fn on_finish(&mut self, view: &RunView<'_, F>) -> Result<()> {
        let _ = view;
        Ok(())
    }
}

/// Stops the run once it has made this many updates in total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopAfter(pub u64);

impl<F: Float> Observer<F> for StopAfter {
    fn on_update(&mut self, _: &RunView<'_, F>, report: &UpdateReport) -> Result<Control> {
        Ok(if report.update >= self.0 {
            Control::Stop
        } else {
            Control::Continue
        })
    }
}

/// Stops the run when the watched loss ([`Evaluation::watched`]: validation, else
/// training) has not improved on its best for `patience` evaluations in a row.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyStop {
    patience: usize,
    best: f64,
    since_best: usize,
}

impl EarlyStop {
    /// Stops after `patience ≥ 1` evaluations without improvement.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a patience of zero.
    pub fn new(patience: usize) -> Result<Self> {
        if patience == 0 {
            return Err(Error::config("patience", "must be at least 1 evaluation"));
        }
        Ok(EarlyStop {
            patience,
            best: f64::INFINITY,
            since_best: 0,
        })
    }
}

impl<F: Float> Observer<F> for EarlyStop {
    fn on_evaluation(&mut self, _: &RunView<'_, F>, evaluation: &Evaluation) -> Result<Control> {
        let Some(loss) = evaluation.watched() else {
            return Ok(Control::Continue);
        };
        if loss < self.best {
            self.best = loss;
            self.since_best = 0;
        } else {
            self.since_best += 1;
        }
        Ok(if self.since_best >= self.patience {
            Control::Stop
        } else {
            Control::Continue
        })
    }
}

/// Writes one CSV row per evaluation: `update,epoch,tokens,train_loss,train_perplexity,
/// valid_loss,valid_perplexity,learning_rate,tokens_per_s,elapsed_s` (empty cells where a
/// value is absent), with a header first.
#[derive(Debug)]
pub struct LossLog<W: Write> {
    out: W,
    header_written: bool,
}

impl<W: Write> LossLog<W> {
    /// The columns, in order.
    pub const HEADER: &'static str = "update,epoch,tokens,train_loss,train_perplexity,valid_loss,valid_perplexity,learning_rate,tokens_per_s,elapsed_s";

    /// A log writing to `out` (a file, a buffer).
    pub fn new(out: W) -> Self {
        LossLog {
            out,
            header_written: false,
        }
    }

    /// The writer back.
    pub fn into_inner(self) -> W {
        self.out
    }

    /// Writes the row of one evaluation (the header first if not yet written): for an
    /// evaluation made before this log was attached, such as those of a resumed run.
    ///
    /// # Errors
    /// [`Error::Io`] when the writer fails.
    pub fn record(&mut self, evaluation: &Evaluation) -> Result<()> {
        self.write_row(evaluation)
            .map_err(|e| Error::io("loss log", e))
    }

    fn write_row(&mut self, e: &Evaluation) -> std::io::Result<()> {
        if !self.header_written {
            writeln!(self.out, "{}", Self::HEADER)?;
            self.header_written = true;
        }
        let cell = |v: Option<f64>| v.map(|v| format!("{v:.6}")).unwrap_or_default();
        writeln!(
            self.out,
            "{},{},{},{},{},{},{},{:e},{:.1},{:.3}",
            e.update,
            e.epoch,
            e.tokens,
            cell(e.train_loss),
            cell(e.train_perplexity()),
            cell(e.valid_loss),
            cell(e.valid_perplexity()),
            e.learning_rate,
            e.tokens_per_s,
            e.elapsed_s
        )?;
        self.out.flush()
    }
}

impl<F: Float, W: Write> Observer<F> for LossLog<W> {
    fn on_evaluation(&mut self, _: &RunView<'_, F>, evaluation: &Evaluation) -> Result<Control> {
        self.record(evaluation)?;
        Ok(Control::Continue)
    }
}
