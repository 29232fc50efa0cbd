//! `--save-best`: an observer that keeps the checkpoint of the lowest validation loss.

use std::path::PathBuf;

use recur::prelude::*;
use recur::{Control, Evaluation, Observer, Result, RunView};

use super::session::{self, Progress};
use super::text::Vocab;

/// Rewrites a full checkpoint (weights, optimizer, vocabulary, run state) at `path`
/// whenever the watched loss (validation, else training) reaches a new low.
pub struct SaveBest<'a> {
    path: PathBuf,
    progress: Progress,
    vocab: &'a Vocab,
    best: f64,
}

impl<'a> SaveBest<'a> {
    /// Saves to `path`; `progress` gives the level, shape and seed (its run state is
    /// replaced by the run's at each save). A resumed run only saves what beats the best
    /// evaluation it already made.
    pub fn new(path: PathBuf, progress: Progress, vocab: &'a Vocab) -> Self {
        let best = progress
            .run
            .best()
            .and_then(Evaluation::watched)
            .unwrap_or(f64::INFINITY);
        SaveBest {
            path,
            progress,
            vocab,
            best,
        }
    }
}

impl<F: Float> Observer<F> for SaveBest<'_> {
    fn on_evaluation(&mut self, view: &RunView<'_, F>, evaluation: &Evaluation) -> Result<Control> {
        let Some(loss) = evaluation.watched().filter(|&l| l < self.best) else {
            return Ok(Control::Continue);
        };
        self.best = loss;
        self.progress.run = view.state.clone();
        session::save(
            &self.path,
            view.params,
            view.optimizer,
            &self.progress,
            self.vocab,
        )
        .map_err(|e| recur::Error::io(&self.path, std::io::Error::other(e.to_string())))?;
        Ok(Control::Continue)
    }
}
