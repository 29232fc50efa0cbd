//! Learning-rate schedules, including the halve-when-the-loss-rises rule.

use std::fmt;
use std::str::FromStr;

use recur_core::{Error, Float, Result};
use serde::{Deserialize, Serialize};

use crate::Optimizer;

fn half() -> f64 {
    0.5
}

/// A learning-rate schedule. It drives an [`Optimizer`] through
/// [`Optimizer::set_learning_rate`], so it works with any of them.
///
/// Call [`on_step`](Self::on_step) after every optimizer step (step-based schedules) and
/// [`on_evaluation`](Self::on_evaluation) after every periodic loss evaluation
/// (loss-based schedules); each ignores the call it does not use, so a trainer can always
/// call both. The schedule keeps its own small state (the base learning rate, the last
/// loss) in its fields, so serialising it into a checkpoint resumes it exactly.
///
/// Serialises with a `kind` tag: `{"kind": "halve_on_plateau", "factor": 0.5}`.
/// Parses from `constant`, `step:EVERY:FACTOR`, `exp:RATE`, `cosine:STEPS[:MIN_FACTOR]` or
/// `plateau[:FACTOR]`.
///
/// Learning rates that would underflow to zero are held at the smallest positive normal
/// value of the float type instead.
///
/// ```
/// use recur_optim::{Optimizer, Schedule, Sgd};
///
/// # fn main() -> recur_core::Result<()> {
/// // The classic tutorial rule: halve the learning rate whenever the loss went up since
/// // the previous evaluation.
/// let mut schedule = Schedule::halve_on_plateau();
/// let mut sgd = Sgd::new(0.005_f64)?;
/// assert_eq!(schedule.on_evaluation(5.0, &mut sgd)?, None); // first evaluation
/// assert_eq!(schedule.on_evaluation(4.0, &mut sgd)?, None); // went down
/// assert_eq!(schedule.on_evaluation(4.5, &mut sgd)?, Some(0.0025)); // went up: halve
/// assert_eq!(sgd.learning_rate(), 0.0025);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// Leaves the learning rate alone.
    #[default]
    Constant,
    /// `lr = base_lr · factor^⌊steps / every⌋`, applied by [`Schedule::on_step`].
    StepDecay {
        /// Number of optimizer steps between decays (> 0).
        every: u64,
        /// Multiplier per decay, in `(0, 1]`.
        factor: f64,
        /// The optimizer's learning rate when the schedule first saw it (state).
        #[serde(default)]
        base_lr: Option<f64>,
    },
    /// `lr = base_lr · rate^steps`, applied by [`Schedule::on_step`].
    ExponentialDecay {
        /// Multiplier per optimizer step, in `(0, 1]`.
        rate: f64,
        /// The optimizer's learning rate when the schedule first saw it (state).
        #[serde(default)]
        base_lr: Option<f64>,
    },
    /// Cosine annealing over `steps` optimizer steps, applied by [`Schedule::on_step`]:
    /// `lr = base_lr · (m + (1 − m) · (1 + cos(π · min(t, steps) / steps)) / 2)` with
    /// `m = min_factor`, so it falls smoothly from `base_lr` to `m · base_lr` and stays there.
    Cosine {
        /// Optimizer steps from the base rate to the lowest (> 0).
        steps: u64,
        /// The lowest rate as a share of the base, in `[0, 1]`.
        #[serde(default)]
        min_factor: f64,
        /// The optimizer's learning rate when the schedule first saw it (state).
        #[serde(default)]
        base_lr: Option<f64>,
    },
    /// After each loss evaluation, if the loss is higher than at the previous evaluation,
    /// `lr ← lr · factor`; applied by [`Schedule::on_evaluation`].
    HalveOnPlateau {
        /// Multiplier when the loss rises, in `(0, 1)`; 0.5 halves.
        #[serde(default = "half")]
        factor: f64,
        /// The loss at the previous evaluation (state).
        #[serde(default)]
        previous_loss: Option<f64>,
    },
}

impl Schedule {
    /// Step decay: multiply the learning rate by `factor` every `every` steps.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `every` is 0 or `factor` is not in `(0, 1]`.
    pub fn step_decay(every: u64, factor: f64) -> Result<Self> {
        let schedule = Schedule::StepDecay {
            every,
            factor,
            base_lr: None,
        };
        schedule.validate()?;
        Ok(schedule)
    }

    /// Exponential decay: multiply the learning rate by `rate` every step.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `rate` is not in `(0, 1]`.
    pub fn exponential_decay(rate: f64) -> Result<Self> {
        let schedule = Schedule::ExponentialDecay {
            rate,
            base_lr: None,
        };
        schedule.validate()?;
        Ok(schedule)
    }

    /// Cosine annealing from the optimizer's rate down to `min_factor` times it over `steps`
    /// steps.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `steps` is 0 or `min_factor` is not in `[0, 1]`.
    pub fn cosine(steps: u64, min_factor: f64) -> Result<Self> {
        let schedule = Schedule::Cosine {
            steps,
            min_factor,
            base_lr: None,
        };
        schedule.validate()?;
        Ok(schedule)
    }

    /// Halve the learning rate whenever the evaluated loss rises.
    pub fn halve_on_plateau() -> Self {
        Schedule::HalveOnPlateau {
            factor: 0.5,
            previous_loss: None,
        }
    }

    /// Multiply the learning rate by `factor` whenever the evaluated loss rises.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `factor` is not in `(0, 1)`.
    pub fn on_plateau(factor: f64) -> Result<Self> {
        let schedule = Schedule::HalveOnPlateau {
            factor,
            previous_loss: None,
        };
        schedule.validate()?;
        Ok(schedule)
    }

    /// Checks the settings (useful after deserialising).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the setting that is out of range.
    pub fn validate(&self) -> Result<()> {
        let in_unit = |name: &'static str, x: f64, upper_ok: bool| {
            if x > 0.0 && (x < 1.0 || (upper_ok && x <= 1.0)) {
                Ok(())
            } else {
                let range = if upper_ok { "(0, 1]" } else { "(0, 1)" };
                Err(Error::config(name, format!("must be in {range}, got {x}")))
            }
        };
        let base_ok = |base: Option<f64>| match base {
            Some(b) if !(b.is_finite() && b > 0.0) => Err(Error::config(
                "schedule base_lr",
                format!("must be finite and > 0, got {b}"),
            )),
            _ => Ok(()),
        };
        match *self {
            Schedule::Constant => Ok(()),
            Schedule::StepDecay {
                every,
                factor,
                base_lr,
            } => {
                if every == 0 {
                    return Err(Error::config("step decay every", "must be at least 1 step"));
                }
                in_unit("step decay factor", factor, true)?;
                base_ok(base_lr)
            }
            Schedule::ExponentialDecay { rate, base_lr } => {
                in_unit("exponential decay rate", rate, true)?;
                base_ok(base_lr)
            }
            Schedule::Cosine {
                steps,
                min_factor,
                base_lr,
            } => {
                if steps == 0 {
                    return Err(Error::config("cosine steps", "must be at least 1 step"));
                }
                if !(0.0..=1.0).contains(&min_factor) {
                    return Err(Error::config(
                        "cosine min_factor",
                        format!("must be in [0, 1], got {min_factor}"),
                    ));
                }
                base_ok(base_lr)
            }
            Schedule::HalveOnPlateau { factor, .. } => in_unit("plateau factor", factor, false),
        }
    }

    /// Call after every optimizer step. Step-based schedules set the learning rate for the
    /// next step from the optimizer's [`steps_taken`](Optimizer::steps_taken); the first
    /// call records the optimizer's current learning rate as the base. Returns the new
    /// learning rate when it changed.
    ///
    /// ```
    /// use ndarray::array;
    /// use recur_optim::{Optimizer, Schedule, Sgd};
    ///
    /// # fn main() -> recur_core::Result<()> {
    /// let mut schedule = Schedule::step_decay(2, 0.1)?;
    /// let mut sgd = Sgd::new(1.0_f64)?;
    /// let (mut x, g) = (array![0.0], array![1.0]);
    /// let mut rates = Vec::new();
    /// for _ in 0..5 {
    ///     sgd.step(&mut x, &g)?;
    ///     schedule.on_step(&mut sgd)?;
    ///     rates.push(sgd.learning_rate());
    /// }
    /// assert_eq!(rates, [1.0, 0.1, 0.1, 1.0 * 0.1 * 0.1, 1.0 * 0.1 * 0.1]);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the schedule's settings are invalid (see
    /// [`validate`](Self::validate)); nothing is changed.
    pub fn on_step<F: Float>(&mut self, opt: &mut dyn Optimizer<F>) -> Result<Option<F>> {
        self.validate()?;
        let steps = opt.steps_taken() as f64;
        let current = opt.learning_rate().to_f64_lossless();
        let lr = match self {
            Schedule::StepDecay {
                every,
                factor,
                base_lr,
            } => {
                let decays = (opt.steps_taken() / *every) as f64;
                *base_lr.get_or_insert(current) * factor.powf(decays)
            }
            Schedule::ExponentialDecay { rate, base_lr } => {
                *base_lr.get_or_insert(current) * rate.powf(steps)
            }
            Schedule::Cosine {
                steps: total,
                min_factor,
                base_lr,
            } => {
                let done = steps.min(*total as f64) / *total as f64;
                let share = (1.0 + (std::f64::consts::PI * done).cos()) / 2.0;
                *base_lr.get_or_insert(current) * (*min_factor + (1.0 - *min_factor) * share)
            }
            Schedule::Constant | Schedule::HalveOnPlateau { .. } => return Ok(None),
        };
        set_if_changed(opt, F::from_f64_lossy(lr))
    }

    /// Call after every periodic loss evaluation with the evaluated loss. The plateau
    /// schedule compares it with the previous evaluation's loss and, if it rose, multiplies
    /// the learning rate by its factor. Returns the new learning rate when it changed.
    ///
    /// # Errors
    /// - [`Error::NonFinite`] with `what = "loss"` when `loss` is NaN or infinite (for
    ///   every kind of schedule, so a diverging run is reported); nothing is changed.
    /// - [`Error::InvalidConfig`] when the schedule's settings are invalid.
    pub fn on_evaluation<F: Float>(
        &mut self,
        loss: f64,
        opt: &mut dyn Optimizer<F>,
    ) -> Result<Option<F>> {
        if !loss.is_finite() {
            return Err(Error::NonFinite {
                what: "loss",
                update: opt.steps_taken(),
            });
        }
        self.validate()?;
        let Schedule::HalveOnPlateau {
            factor,
            previous_loss,
        } = self
        else {
            return Ok(None);
        };
        let rose = previous_loss.is_some_and(|previous| loss > previous);
        *previous_loss = Some(loss);
        if !rose {
            return Ok(None);
        }
        let lr = opt.learning_rate() * F::from_f64_lossy(*factor);
        set_if_changed(opt, lr)
    }
}

fn set_if_changed<F: Float>(opt: &mut dyn Optimizer<F>, lr: F) -> Result<Option<F>> {
    // Underflow would make the rate invalid; hold it at the smallest normal instead.
    let lr = lr.max(F::min_positive_value());
    if lr.to_f64_lossless().to_bits() == opt.learning_rate().to_f64_lossless().to_bits() {
        return Ok(None);
    }
    opt.set_learning_rate(lr)?;
    Ok(Some(lr))
}

impl FromStr for Schedule {
    type Err = Error;

    /// Parses `constant`, `step:EVERY:FACTOR`, `exp:RATE`, `cosine:STEPS[:MIN_FACTOR]` or
    /// `plateau[:FACTOR]`.
    fn from_str(spec: &str) -> Result<Self> {
        let lower = spec.trim().to_ascii_lowercase();
        let mut fields = lower.split(':').map(str::trim);
        let kind = fields.next().unwrap_or_default();
        let args: Vec<&str> = fields.collect();
        let bad = || {
            Error::config(
                "schedule",
                format!(
                    "cannot read {spec:?}; expected constant, step:EVERY:FACTOR, exp:RATE, \
                     cosine:STEPS[:MIN_FACTOR] or plateau[:FACTOR]"
                ),
            )
        };
        let number = |text: &str| text.parse::<f64>().map_err(|_| bad());
        match (kind, args.as_slice()) {
            ("constant", []) => Ok(Schedule::Constant),
            ("step", [every, factor]) => {
                Schedule::step_decay(every.parse().map_err(|_| bad())?, number(factor)?)
            }
            ("exp", [rate]) => Schedule::exponential_decay(number(rate)?),
            ("cosine", [steps]) => Schedule::cosine(steps.parse().map_err(|_| bad())?, 0.0),
            ("cosine", [steps, min]) => {
                Schedule::cosine(steps.parse().map_err(|_| bad())?, number(min)?)
            }
            ("plateau", []) => Ok(Schedule::halve_on_plateau()),
            ("plateau", [factor]) => Schedule::on_plateau(number(factor)?),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Schedule {
    /// Writes the command-line form of the settings (state fields are not shown).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Constant => f.write_str("constant"),
            Schedule::StepDecay { every, factor, .. } => write!(f, "step:{every}:{factor}"),
            Schedule::ExponentialDecay { rate, .. } => write!(f, "exp:{rate}"),
            Schedule::Cosine {
                steps, min_factor, ..
            } => write!(f, "cosine:{steps}:{min_factor}"),
            Schedule::HalveOnPlateau { factor, .. } => write!(f, "plateau:{factor}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Sgd;

    /// The rates a cosine schedule sets after each of `n` steps from a base rate of 1.
    fn cosine_rates(steps: u64, min_factor: f64, n: usize) -> Vec<f64> {
        let mut schedule = Schedule::cosine(steps, min_factor).unwrap();
        let mut sgd = Sgd::new(1.0_f64).unwrap();
        let (mut x, g) = (ndarray::array![0.0], ndarray::array![0.0]);
        (0..n)
            .map(|_| {
                sgd.step(&mut x, &g).unwrap();
                schedule.on_step(&mut sgd).unwrap();
                sgd.learning_rate()
            })
            .collect()
    }

    #[test]
    fn cosine_falls_from_the_base_to_the_floor_and_stays() {
        let rates = cosine_rates(4, 0.2, 6);
        // 0.2 + 0.8 · (1 + cos(π t / 4)) / 2 for t = 1, 2, 3, 4, then held.
        let expected = [
            0.2 + 0.4 * (1.0 + std::f64::consts::FRAC_1_SQRT_2),
            0.6,
            0.2 + 0.4 * (1.0 - std::f64::consts::FRAC_1_SQRT_2),
            0.2,
            0.2,
            0.2,
        ];
        for (got, want) in rates.iter().zip(expected) {
            assert!((got - want).abs() < 1e-12, "{rates:?}");
        }
    }

    #[test]
    fn cosine_parses_prints_and_checks_its_settings() {
        let parsed: Schedule = "cosine:100:0.1".parse().unwrap();
        assert_eq!(parsed, Schedule::cosine(100, 0.1).unwrap());
        assert_eq!(parsed.to_string(), "cosine:100:0.1");
        assert_eq!(
            "cosine:10".parse::<Schedule>().unwrap(),
            Schedule::cosine(10, 0.0).unwrap()
        );
        assert!(Schedule::cosine(0, 0.0).is_err());
        assert!(Schedule::cosine(10, 1.5).is_err());
        assert!("cosine".parse::<Schedule>().is_err());
    }
}
