//! What a person watching the run sees: a progress bar with the loss and throughput, and a
//! line per evaluation. An observer of the shared training loop.

use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use recur::prelude::*;
use recur::{Control, Evaluation, Observer, Result, RunView};

/// A progress bar over the run's updates, and one line per evaluation.
pub struct Progress {
    bar: ProgressBar,
    unit: &'static str,
    quiet: bool,
    /// Tokens already trained on when this run started (a resumed run's are not its own)
    /// and when it started: the throughput counts this run only.
    start: (u64, Instant),
}

impl Progress {
    /// A bar for `total` updates, starting at `done` updates and `tokens` tokens; hidden
    /// when `quiet`. `unit` names a token ("word", "char").
    pub fn new(total: u64, done: u64, tokens: u64, unit: &'static str, quiet: bool) -> Self {
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:30}] {pos}/{len} updates  {msg}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar
        };
        bar.set_position(done.min(total));
        Progress {
            bar,
            unit,
            quiet,
            start: (tokens, Instant::now()),
        }
    }
}

impl<F: Float> Observer<F> for Progress {
    fn on_update(&mut self, _: &RunView<'_, F>, report: &UpdateReport) -> Result<Control> {
        self.bar.set_position(report.update);
        let seconds = self.start.1.elapsed().as_secs_f64().max(1e-9);
        let rate = report.tokens.saturating_sub(self.start.0) as f64 / seconds;
        self.bar.set_message(format!(
            "loss/{} {:.3}  {rate:.0} {}s/s",
            self.unit,
            report.loss.mean(),
            self.unit
        ));
        Ok(Control::Continue)
    }

    fn on_evaluation(&mut self, _: &RunView<'_, F>, e: &Evaluation) -> Result<Control> {
        if !self.quiet {
            let loss = |l: Option<f64>| {
                l.map_or("-".to_string(), |l| format!("{l:.4} (ppl {:.1})", l.exp()))
            };
            let line = format!(
                "update {} (epoch {}): train {}, valid {}, lr {:.3e}, {:.0} {}s/s",
                e.update,
                e.epoch,
                loss(e.train_loss),
                loss(e.valid_loss),
                e.learning_rate,
                e.tokens_per_s,
                self.unit
            );
            self.bar.suspend(|| println!("{line}"));
        }
        Ok(Control::Continue)
    }

    fn on_finish(&mut self, _: &RunView<'_, F>) -> Result<()> {
        self.bar.finish_and_clear();
        Ok(())
    }
}
