//! The scalar bound shared by all numeric code.

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

use ndarray::{LinalgScalar, ScalarOperand};
use num_traits::FromPrimitive;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A floating-point scalar recur computes with: `f32` for speed, `f64` for checks.
///
/// It extends [`recur_linalg::Scalar`], so every generic routine can call the
/// allocation-free matrix product [`crate::linalg::gemm`].
///
/// It gathers what the crates need in one name: `num_traits` arithmetic, ndarray's
/// matrix-product and scalar-operand bounds, compound assignment, serde and thread safety.
pub trait Float:
    recur_linalg::Scalar
    + num_traits::Float
    + FromPrimitive
    + LinalgScalar
    + ScalarOperand
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
    + Default
    + Debug
    + Display
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// Short name of the type, as written in checkpoints and reports (`"f32"`, `"f64"`).
    const NAME: &'static str;

    /// Converts an `f64` constant to this type (exact for `f64`, rounded for `f32`).
    fn from_f64_lossy(x: f64) -> Self;

    /// Converts to `f64` (exact for both supported types).
    fn to_f64_lossless(self) -> f64;
}

impl Float for f32 {
    const NAME: &'static str = "f32";

    #[inline]
    fn from_f64_lossy(x: f64) -> Self {
        x as f32
    }

    #[inline]
    fn to_f64_lossless(self) -> f64 {
        f64::from(self)
    }
}

impl Float for f64 {
    const NAME: &'static str = "f64";

    #[inline]
    fn from_f64_lossy(x: f64) -> Self {
        x
    }

    #[inline]
    fn to_f64_lossless(self) -> f64 {
        self
    }
}
