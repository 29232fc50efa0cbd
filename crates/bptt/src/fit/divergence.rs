//! Watching for divergence: a training loss far above its best, or a gradient norm far
//! above its usual size, reported once with the update and the remedy.

use recur_core::{Error, Float, Result};

use super::observer::{Control, Observer, RunView};
use crate::UpdateReport;

/// What [`Divergence`] found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Diverged {
    /// The update at which it was found.
    pub update: u64,
    /// What rose.
    pub cause: DivergenceCause,
}

/// Which sign of divergence [`Divergence`] saw.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum DivergenceCause {
    /// The smoothed training loss per token rose far above its lowest value so far.
    LossRose {
        /// The smoothed loss now.
        loss: f64,
        /// Its lowest value so far.
        best: f64,
    },
    /// The gradient norm of one update was far above its running average.
    GradientExploded {
        /// This update's norm (before clipping).
        norm: f64,
        /// The running average before it.
        typical: f64,
    },
}

impl std::fmt::Display for Diverged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.cause {
            DivergenceCause::LossRose { loss, best } => write!(
                f,
                "training is diverging at update {}: the training loss rose to {loss:.4}, {:.1} times its best ({best:.4})",
                self.update,
                loss / best
            )?,
            DivergenceCause::GradientExploded { norm, typical } => write!(
                f,
                "training is diverging at update {}: the gradient norm jumped to {norm:.4e}, {:.0} times its running average ({typical:.4e})",
                self.update,
                norm / typical
            )?,
        }
        write!(
            f,
            "; clip the gradient (by norm) or lower the learning rate"
        )
    }
}

/// Reports divergence once: when the training loss, smoothed over updates, rises above
/// `loss_ratio` times its best, or one update's gradient norm exceeds `grad_ratio` times
/// its running average. Nothing is judged during the first `warmup` updates of the run
/// it watches. Optionally stops the run.
///
/// ```
/// use recur_bptt::Divergence;
///
/// let watch = Divergence::new().stop_on_divergence(true).on_report(|d| eprintln!("{d}"));
/// assert_eq!(watch.found(), None);
/// ```
pub struct Divergence {
    loss_ratio: f64,
    grad_ratio: f64,
    warmup: u64,
    stop: bool,
    seen: u64,
    smoothed_loss: Option<f64>,
    best_loss: f64,
    typical_norm: Option<f64>,
    found: Option<Diverged>,
    report: Option<Report>,
}

/// What [`Divergence::on_report`] calls.
type Report = Box<dyn FnMut(&Diverged) + Send>;

/// Weight of a new update in the running averages (about the last 20 updates count).
const SMOOTHING: f64 = 0.05;

impl Default for Divergence {
    fn default() -> Self {
        Divergence::new()
    }
}

impl Divergence {
    /// Loss ratio 3, gradient ratio 100, 20 updates of warm-up; reports without stopping.
    pub fn new() -> Self {
        Divergence {
            loss_ratio: 3.0,
            grad_ratio: 100.0,
            warmup: 20,
            stop: false,
            seen: 0,
            smoothed_loss: None,
            best_loss: f64::INFINITY,
            typical_norm: None,
            found: None,
            report: None,
        }
    }

    /// Sets the thresholds: a smoothed loss above `loss_ratio` times its best, a gradient
    /// norm above `grad_ratio` times its running average.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] unless both ratios are finite and above 1.
    pub fn thresholds(mut self, loss_ratio: f64, grad_ratio: f64) -> Result<Self> {
        for (name, ratio) in [("loss_ratio", loss_ratio), ("grad_ratio", grad_ratio)] {
            if !(ratio.is_finite() && ratio > 1.0) {
                return Err(Error::config(
                    name,
                    format!("{ratio} must be finite and above 1"),
                ));
            }
        }
        self.loss_ratio = loss_ratio;
        self.grad_ratio = grad_ratio;
        Ok(self)
    }

    /// Updates to watch before judging (the first losses and norms settle).
    pub fn warmup(mut self, updates: u64) -> Self {
        self.warmup = updates;
        self
    }

    /// Whether to stop the run when divergence is found.
    pub fn stop_on_divergence(mut self, stop: bool) -> Self {
        self.stop = stop;
        self
    }

    /// Calls `report` once, when divergence is found (a program prints it).
    pub fn on_report(mut self, report: impl FnMut(&Diverged) + Send + 'static) -> Self {
        self.report = Some(Box::new(report));
        self
    }

    /// What was found, if anything.
    pub fn found(&self) -> Option<Diverged> {
        self.found
    }

    /// Feeds one update's loss per token and gradient norm; the divergence it shows, if
    /// any.
    fn judge(&mut self, update: u64, loss: Option<f64>, norm: f64) -> Option<Diverged> {
        self.seen += 1;
        let judging = self.seen > self.warmup;
        let mut cause = None;
        if let Some(typical) = self.typical_norm {
            if judging && norm.is_finite() && norm > self.grad_ratio * typical && typical > 0.0 {
                cause = Some(DivergenceCause::GradientExploded { norm, typical });
            }
        }
        if norm.is_finite() {
            self.typical_norm = Some(smooth(self.typical_norm, norm));
        }
        if let Some(loss) = loss.filter(|l| l.is_finite()) {
            let smoothed = smooth(self.smoothed_loss, loss);
            self.smoothed_loss = Some(smoothed);
            let best = self.best_loss;
            if judging && best > 0.0 && smoothed > self.loss_ratio * best && cause.is_none() {
                cause = Some(DivergenceCause::LossRose {
                    loss: smoothed,
                    best,
                });
            }
            self.best_loss = best.min(smoothed);
        }
        cause.map(|cause| Diverged { update, cause })
    }
}

/// An exponential running average with [`SMOOTHING`].
fn smooth(average: Option<f64>, value: f64) -> f64 {
    match average {
        Some(a) => a + SMOOTHING * (value - a),
        None => value,
    }
}

impl std::fmt::Debug for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Divergence")
            .field("loss_ratio", &self.loss_ratio)
            .field("grad_ratio", &self.grad_ratio)
            .field("warmup", &self.warmup)
            .field("stop", &self.stop)
            .field("found", &self.found)
            .finish_non_exhaustive()
    }
}

impl<F: Float> Observer<F> for Divergence {
    fn on_update(&mut self, _: &RunView<'_, F>, report: &UpdateReport) -> Result<Control> {
        let loss = (report.loss.counted > 0).then(|| report.loss.mean());
        if self.found.is_some() {
            return Ok(Control::Continue);
        }
        let Some(diverged) = self.judge(report.update, loss, report.grad_norm) else {
            return Ok(Control::Continue);
        };
        self.found = Some(diverged);
        if let Some(report) = &mut self.report {
            report(&diverged);
        }
        Ok(if self.stop {
            Control::Stop
        } else {
            Control::Continue
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::{LossReport, RunState};

    /// Feeds `(loss, norm)` pairs as updates 1, 2, …; the answers.
    fn feed(watch: &mut Divergence, updates: &[(f64, f64)]) -> Vec<Control> {
        let params = ndarray::Array2::<f64>::zeros((1, 1));
        let sgd = recur_optim::Sgd::new(0.1).unwrap();
        let state = RunState::default();
        let view = RunView {
            params: &params,
            logits: None,
            optimizer: &sgd,
            state: &state,
        };
        updates
            .iter()
            .enumerate()
            .map(|(i, &(loss, grad_norm))| {
                let report = UpdateReport {
                    update: i as u64 + 1,
                    loss: LossReport {
                        total: loss * 10.0,
                        counted: 10,
                    },
                    grad_norm,
                    tokens: 10 * (i as u64 + 1),
                    learning_rate: 0.1,
                };
                Observer::<f64>::on_update(watch, &view, &report).unwrap()
            })
            .collect()
    }

    #[test]
    fn a_rising_loss_is_reported_once_with_its_update_and_the_remedy() {
        let said = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&said);
        let mut watch = Divergence::new()
            .warmup(5)
            .on_report(move |d| sink.lock().unwrap().push(d.to_string()));
        // Falls from 3 to 2, then climbs by 1 per update.
        let mut updates: Vec<(f64, f64)> = (0..30).map(|i| (3.0 - i as f64 / 30.0, 1.0)).collect();
        updates.extend((0..60).map(|i| (2.0 + i as f64, 1.0)));
        let answers = feed(&mut watch, &updates);
        assert!(answers.iter().all(|&c| c == Control::Continue));
        let found = watch.found().expect("the loss rose twentyfold");
        assert!(found.update > 30, "{found:?}");
        let said = said.lock().unwrap();
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].contains(&format!("update {}", found.update)),
            "{}",
            said[0]
        );
        assert!(said[0].contains("lower the learning rate"), "{}", said[0]);
    }

    #[test]
    fn an_exploding_gradient_stops_when_asked() {
        let mut watch = Divergence::new().warmup(5).stop_on_divergence(true);
        let mut updates = vec![(2.0, 1.0); 10];
        updates.push((2.0, 1e4));
        updates.push((2.0, 1.0));
        let answers = feed(&mut watch, &updates);
        assert_eq!(answers[10], Control::Stop);
        assert_eq!(answers[11], Control::Continue, "reported once");
        assert!(matches!(
            watch.found(),
            Some(Diverged {
                update: 11,
                cause: DivergenceCause::GradientExploded { .. }
            })
        ));
    }

    #[test]
    fn steady_training_and_the_warmup_are_not_divergence() {
        let mut watch = Divergence::new().warmup(5);
        // A spike during warm-up, then noise around a falling loss.
        let mut updates = vec![(2.0, 1.0), (2.0, 1e6), (2.0, 1.0)];
        updates.extend((0..200).map(|i| {
            (
                2.0 - i as f64 / 400.0 + (i % 3) as f64 * 0.3,
                1.0 + (i % 5) as f64,
            )
        }));
        feed(&mut watch, &updates);
        assert_eq!(watch.found(), None);
        assert!(Divergence::new().thresholds(1.0, 10.0).is_err());
        assert!(Divergence::new().thresholds(2.0, f64::NAN).is_err());
    }
}
