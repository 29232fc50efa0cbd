//! Finite-difference gradient checks for any model.

use std::cmp::Ordering;

use recur_cell::{Cell, Readout};
use recur_core::{params, Error, ParamSet, Result};
use recur_loss::{Loss, Reduction};

use crate::{Bptt, Model, SeqBatch, Truncation};

/// How one slot's analytic gradient compared with central differences.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotCheck {
    /// The slot's full path name (`cell.w_xh`, `readout.w_hy`).
    pub name: String,
    /// Entries compared.
    pub checked: usize,
    /// Largest relative error `|a − n| / (|a| + |n|)` (0 where both are below 1e-12);
    /// NaN when some entry's analytic or numeric gradient is not finite, so that any
    /// `error < tolerance` test fails.
    pub max_relative_error: f64,
    /// Flat index (row-major within the slot) of the worst entry: the first non-finite
    /// one if there is any.
    pub worst_index: usize,
    /// Flat index of the first entry whose analytic or numeric gradient is NaN or
    /// infinite; `None` when every compared entry is finite.
    pub non_finite: Option<usize>,
    /// Analytic gradient at the worst entry.
    pub analytic: f64,
    /// Central-difference estimate at the worst entry.
    pub numeric: f64,
}

/// The result of [`gradient_check`]: one [`SlotCheck`] per parameter slot.
#[derive(Debug, Clone, PartialEq)]
pub struct GradCheckReport {
    /// Per-slot results, in slot order.
    pub slots: Vec<SlotCheck>,
}

impl GradCheckReport {
    /// The largest relative error over all slots; NaN when any slot saw a non-finite
    /// gradient (see [`GradCheckReport::non_finite`]), so `error < tolerance` fails.
    pub fn max_relative_error(&self) -> f64 {
        self.slots
            .iter()
            .map(|s| s.max_relative_error)
            .fold(0.0, nan_max)
    }

    /// The first slot (by name) and flat entry index whose analytic or numeric gradient is
    /// NaN or infinite, if any.
    pub fn non_finite(&self) -> Option<(&str, usize)> {
        self.slots
            .iter()
            .find_map(|s| s.non_finite.map(|index| (s.name.as_str(), index)))
    }

    /// Whether every gradient was finite and the largest relative error is below
    /// `tolerance`.
    pub fn passes(&self, tolerance: f64) -> bool {
        self.ensure(tolerance).is_ok()
    }

    /// Turns the report into a verdict: `Ok` when every gradient was finite and the largest
    /// relative error is below `tolerance`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the slot, the flat index and both gradients of the
    /// first non-finite entry, or else of the worst entry above `tolerance`.
    pub fn ensure(&self, tolerance: f64) -> Result<()> {
        let failing = self
            .slots
            .iter()
            .find(|s| s.non_finite.is_some())
            .or_else(|| {
                self.slots
                    .iter()
                    .filter(|s| {
                        s.max_relative_error.partial_cmp(&tolerance) != Some(Ordering::Less)
                    })
                    .max_by(|a, b| a.max_relative_error.total_cmp(&b.max_relative_error))
            });
        match failing {
            None => Ok(()),
            Some(s) if s.non_finite.is_some() => Err(Error::config(
                "gradient_check",
                format!(
                    "slot {} entry {}: the gradient is not finite (analytic {}, numeric {}); \
                     check the cell's backward pass and the parameters for NaN or overflow",
                    s.name, s.worst_index, s.analytic, s.numeric
                ),
            )),
            Some(s) => Err(Error::config(
                "gradient_check",
                format!(
                    "slot {} entry {}: relative error {:e} is not below {tolerance:e} \
                     (analytic {}, numeric {}); check the cell's backward pass",
                    s.name, s.worst_index, s.max_relative_error, s.analytic, s.numeric
                ),
            )),
        }
    }
}

/// The larger of two errors, NaN if either is NaN (unlike `f64::max`, which drops a NaN).
fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Compares full-BPTT gradients with central differences `(L(θ+ε) − L(θ−ε)) / 2ε`, for
/// every entry of every slot (or every `stride`-th entry, to bound the cost on large
/// models: each checked entry costs two forward passes).
///
/// The objective is the loss reduced with `reduction`, from the zero initial state. This
/// is the language-model tutorial's `gradient_check` generalised to any cell, readout and
/// loss. Parameters are restored exactly afterwards.
///
/// A NaN or infinite gradient, analytic or numeric, is a failure: its slot's
/// [`SlotCheck::non_finite`] names the entry and the report's maximum is NaN. Use
/// [`GradCheckReport::ensure`] for a verdict with a message.
///
/// ```
/// use ndarray::array;
/// use rand::{rngs::StdRng, SeedableRng};
/// use recur_bptt::{gradient_check, Model, SeqBatch};
/// use recur_cell::{ElmanConfig, LinearConfig, Tanh};
/// use recur_loss::{Reduction, SoftmaxCrossEntropy};
///
/// let mut rng = StdRng::seed_from_u64(3);
/// let cell = ElmanConfig::new(6, 4).init::<f64, _>(Tanh, &mut rng)?;
/// let mut model = Model::new(cell, LinearConfig::new(4, 6).init(&mut rng)?)?;
/// let (x, y) = ([0usize, 3, 2, 5], [3usize, 2, 5, 1]);
/// let batch = SeqBatch::sentence(&x, &y)?;
/// let report = gradient_check(&mut model, &SoftmaxCrossEntropy, batch, Reduction::Sum, 1e-5, 1)?;
/// assert!(report.max_relative_error() < 1e-6, "{report:?}");
/// report.ensure(1e-6)?;
/// # Ok::<(), recur_core::Error>(())
/// ```
///
/// # Errors
/// Whatever the forward pass reports; [`Error::InvalidConfig`] for a non-positive `eps`
/// or a zero `stride`.
pub fn gradient_check<C: Cell<f64>, R: Readout<f64>>(
    model: &mut Model<f64, C, R>,
    loss: &dyn Loss<f64>,
    batch: SeqBatch<'_, f64>,
    reduction: Reduction,
    eps: f64,
    stride: usize,
) -> Result<GradCheckReport> {
    if !(eps > 0.0 && eps.is_finite()) || stride == 0 {
        return Err(Error::config(
            "gradient_check",
            format!("eps ({eps}) must be positive and stride ({stride}) at least 1"),
        ));
    }
    let mut engine = Bptt::new(Truncation::full(), reduction);
    let mut grads = model.zero_grads();
    engine.accumulate(model, loss, batch, None, &mut grads)?;
    let mut objective = |model: &Model<f64, C, R>| -> Result<f64> {
        let r = engine.evaluate(model, loss, batch, None)?;
        Ok(r.total * reduction.scale::<f64>(r.counted))
    };
    let mut slots = Vec::with_capacity(model.slot_count());
    for slot in 0..model.slot_count() {
        let analytic: Vec<f64> = grads.slot(slot).value.iter().copied().collect();
        let mut check = SlotCheck {
            name: params::path(model, slot),
            checked: 0,
            max_relative_error: 0.0,
            worst_index: 0,
            non_finite: None,
            analytic: 0.0,
            numeric: 0.0,
        };
        for index in (0..analytic.len()).step_by(stride) {
            let original = *entry(model, slot, index);
            *entry(model, slot, index) = original + eps;
            let plus = objective(model);
            *entry(model, slot, index) = original - eps;
            let minus = objective(model);
            *entry(model, slot, index) = original;
            let numeric = (plus? - minus?) / (2.0 * eps);
            let a = analytic[index];
            let denominator = a.abs() + numeric.abs();
            let error = if denominator < 1e-12 {
                0.0
            } else {
                (a - numeric).abs() / denominator
            };
            check.checked += 1;
            if !(a.is_finite() && numeric.is_finite()) {
                // The first non-finite entry stays the reported one.
                if check.non_finite.is_none() {
                    check.non_finite = Some(index);
                    check.max_relative_error = f64::NAN;
                    check.worst_index = index;
                    check.analytic = a;
                    check.numeric = numeric;
                }
            } else if check.non_finite.is_none()
                && (error > check.max_relative_error || check.checked == 1)
            {
                check.max_relative_error = error;
                check.worst_index = index;
                check.analytic = a;
                check.numeric = numeric;
            }
        }
        slots.push(check);
    }
    Ok(GradCheckReport { slots })
}

/// Entry `index` (row-major) of slot `slot`.
fn entry(model: &mut dyn ParamSet<f64>, slot: usize, index: usize) -> &mut f64 {
    let value = model.slot_mut(slot).value;
    value
        .into_iter()
        .nth(index)
        .expect("index below the slot's length")
}
