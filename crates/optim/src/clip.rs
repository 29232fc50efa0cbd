//! Gradient clipping: by value and by global norm.

use std::fmt;
use std::str::FromStr;

use recur_core::params::{global_norm, scale};
use recur_core::{Error, Float, ParamSet, Result};
use serde::{Deserialize, Serialize};

/// Clamps every gradient entry into `[-limit, limit]`.
///
/// NaN entries are left as they are (the optimizer then refuses the step). The whole of each
/// slot is walked, sparse rows or not: entries outside the rows are zero and stay zero.
///
/// ```
/// use ndarray::array;
/// use recur_optim::clip_by_value;
///
/// # fn main() -> recur_core::Result<()> {
/// let mut grads = (array![7.0_f64, -0.5], array![-9.0_f64]);
/// clip_by_value(&mut grads, 5.0)?;
/// assert_eq!(grads, (array![5.0, -0.5], array![-5.0]));
/// # Ok(())
/// # }
/// ```
///
/// A NaN entry stays NaN, so a later finiteness check still sees the failure.
///
/// # Errors
/// [`Error::InvalidConfig`] when `limit` is not finite and positive; nothing is changed.
pub fn clip_by_value<F: Float>(grads: &mut dyn ParamSet<F>, limit: F) -> Result<()> {
    check_limit("clip limit", limit.to_f64_lossless())?;
    for i in 0..grads.slot_count() {
        let mut slot = grads.slot_mut(i);
        // Comparisons rather than `max`/`min`, which would turn a NaN into `-limit` and
        // hide it from the trainer's finiteness check.
        let clamp = |g: &mut F| {
            if *g > limit {
                *g = limit;
            } else if *g < -limit {
                *g = -limit;
            }
        };
        match slot.value.as_slice_memory_order_mut() {
            Some(values) => values.iter_mut().for_each(clamp),
            None => slot.value.iter_mut().for_each(clamp),
        }
    }
    Ok(())
}

/// Rescales the gradients so their global (all-slot Euclidean) norm is at most `max_norm`,
/// keeping their direction, and returns the norm before clipping.
///
/// Gradients already within the bound are left exactly as they are. When the norm is not
/// finite (a NaN or infinite entry), nothing is changed and that norm is returned, so the
/// caller can report it; the optimizer will refuse such gradients anyway.
///
/// ```
/// use ndarray::array;
/// use recur_optim::clip_by_global_norm;
///
/// # fn main() -> recur_core::Result<()> {
/// let mut grads = (array![3.0_f64], array![4.0_f64]); // norm 5
/// let before = clip_by_global_norm(&mut grads, 1.0)?;
/// assert!((before - 5.0).abs() < 1e-12);
/// assert!((grads.0[0] - 0.6).abs() < 1e-12 && (grads.1[0] - 0.8).abs() < 1e-12);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`Error::InvalidConfig`] when `max_norm` is not finite and positive; nothing is changed.
pub fn clip_by_global_norm<F: Float>(grads: &mut dyn ParamSet<F>, max_norm: F) -> Result<F> {
    let max = max_norm.to_f64_lossless();
    check_limit("max norm", max)?;
    let norm = global_norm(grads);
    let norm64 = norm.to_f64_lossless();
    if norm64.is_finite() && norm64 > max {
        scale(grads, F::from_f64_lossy(max / norm64));
    }
    Ok(norm)
}

fn check_limit(name: &'static str, limit: f64) -> Result<()> {
    if limit.is_finite() && limit > 0.0 {
        Ok(())
    } else {
        Err(Error::config(
            name,
            format!("must be finite and > 0, got {limit}"),
        ))
    }
}

/// A clipping policy, serialisable into configurations and checkpoints.
///
/// Serialises as `{"kind": "none"}`, `{"kind": "value", "limit": 5.0}` or
/// `{"kind": "global_norm", "limit": 1.0}`. Parses from `none`, `value:LIMIT` or
/// `norm:LIMIT` (also `global_norm:LIMIT`) on command lines.
///
/// ```
/// use ndarray::array;
/// use recur_optim::Clip;
///
/// # fn main() -> recur_core::Result<()> {
/// let clip: Clip = "norm:1".parse()?;
/// assert_eq!(clip, Clip::GlobalNorm(1.0));
/// let mut grads = array![3.0_f64, 4.0];
/// assert_eq!(clip.apply(&mut grads)?, Some(5.0));
/// assert!((grads[1] - 0.8).abs() < 1e-12);
/// assert_eq!(Clip::Value(5.0).apply(&mut grads)?, None);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", content = "limit", rename_all = "snake_case")]
pub enum Clip {
    /// No clipping.
    #[default]
    None,
    /// [`clip_by_value`] with this limit.
    Value(f64),
    /// [`clip_by_global_norm`] with this maximum norm.
    GlobalNorm(f64),
}

impl Clip {
    /// Clips `grads` in place. Returns the global norm before clipping for
    /// [`Clip::GlobalNorm`] (computed anyway), `None` otherwise.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the limit is not finite and positive.
    pub fn apply<F: Float>(&self, grads: &mut dyn ParamSet<F>) -> Result<Option<F>> {
        match *self {
            Clip::None => Ok(None),
            Clip::Value(limit) => {
                check_limit("clip limit", limit)?;
                clip_by_value(grads, F::from_f64_lossy(limit)).map(|()| None)
            }
            Clip::GlobalNorm(max) => {
                check_limit("max norm", max)?;
                clip_by_global_norm(grads, F::from_f64_lossy(max)).map(Some)
            }
        }
    }

    /// The factor by which [`Clip::apply`] would scale every entry of a gradient whose
    /// global norm is `norm`, when this policy is such a uniform rescaling: 1 for
    /// [`Clip::None`] and for a norm within the bound (or not finite), `max / norm` above
    /// it. `None` for [`Clip::Value`], which changes entries one by one.
    ///
    /// ```
    /// use recur_optim::Clip;
    ///
    /// assert_eq!(Clip::GlobalNorm(1.0).uniform_factor(4.0)?, Some(0.25));
    /// assert_eq!(Clip::GlobalNorm(1.0).uniform_factor(0.5)?, Some(1.0));
    /// assert_eq!(Clip::Value(1.0).uniform_factor(4.0)?, None);
    /// # Ok::<(), recur_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the limit is not finite and positive.
    pub fn uniform_factor(&self, norm: f64) -> Result<Option<f64>> {
        match *self {
            Clip::None => Ok(Some(1.0)),
            Clip::Value(limit) => check_limit("clip limit", limit).map(|()| None),
            Clip::GlobalNorm(max) => {
                check_limit("max norm", max)?;
                let clipped = norm.is_finite() && norm > max;
                Ok(Some(if clipped { max / norm } else { 1.0 }))
            }
        }
    }
}

impl FromStr for Clip {
    type Err = Error;

    /// Parses `none`, `value:LIMIT`, `norm:LIMIT` or `global_norm:LIMIT`.
    fn from_str(spec: &str) -> Result<Self> {
        let lower = spec.trim().to_ascii_lowercase();
        let (kind, limit) = match lower.split_once(':') {
            Some((kind, limit)) => (kind.trim(), Some(limit.trim())),
            None => (lower.as_str(), None),
        };
        let parse_limit = |name: &'static str| -> Result<f64> {
            let text = limit.ok_or_else(|| {
                Error::config("clip", format!("{spec:?} needs a limit, e.g. {kind}:5"))
            })?;
            let value: f64 = text.parse().map_err(|_| {
                Error::config(
                    "clip",
                    format!("limit of {spec:?} is not a number: {text:?}"),
                )
            })?;
            check_limit(name, value)?;
            Ok(value)
        };
        match kind {
            "none" if limit.is_none() => Ok(Clip::None),
            "value" => parse_limit("clip limit").map(Clip::Value),
            "norm" | "global_norm" => parse_limit("max norm").map(Clip::GlobalNorm),
            _ => Err(Error::config(
                "clip",
                format!("unknown clipping {spec:?}; expected none, value:LIMIT or norm:LIMIT"),
            )),
        }
    }
}

impl fmt::Display for Clip {
    /// Writes the command-line form (`none`, `value:5`, `norm:1`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Clip::None => f.write_str("none"),
            Clip::Value(limit) => write!(f, "value:{limit}"),
            Clip::GlobalNorm(max) => write!(f, "norm:{max}"),
        }
    }
}
