//! How per-row losses combine into one number.

use recur_core::Float;
use serde::{Deserialize, Serialize};

/// How the per-row losses of a batch are combined. A [`Loss`](crate::Loss) always reports
/// per-row values; the caller (the training engine) applies the reduction, and passes the
/// same factor as `grad_scale` so gradients match the reduced loss.
///
/// ```
/// use recur_loss::Reduction;
/// assert_eq!(Reduction::Sum.scale::<f64>(4), 1.0);
/// assert_eq!(Reduction::Mean.scale::<f64>(4), 0.25);
/// assert_eq!(Reduction::Mean.scale::<f64>(0), 0.0);
/// assert_eq!(Reduction::default(), Reduction::Mean);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Reduction {
    /// Sum over rows: the loss of a sequence grows with its length.
    Sum,
    /// Average over counted (non-[`IGNORE`](crate::IGNORE)) rows, so the right learning
    /// rate does not depend on how many rows a batch holds.
    #[default]
    Mean,
}

impl Reduction {
    /// The factor applied to the summed row losses (and to the gradients): `1` for
    /// [`Reduction::Sum`], `1 / counted_rows` for [`Reduction::Mean`].
    ///
    /// With no counted rows `Mean` gives `0`, not NaN: a batch made only of padding
    /// contributes nothing, which lets the engine accumulate such batches harmlessly.
    pub fn scale<F: Float>(self, counted_rows: usize) -> F {
        match self {
            Reduction::Sum => F::one(),
            Reduction::Mean if counted_rows == 0 => F::zero(),
            Reduction::Mean => F::one() / F::from_usize(counted_rows).unwrap_or_else(F::max_value),
        }
    }
}
