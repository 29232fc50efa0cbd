//! The element types the kernels support.

use ndarray::LinalgScalar;

use crate::blas::Blas;
use crate::simd::Kernels;
use crate::workspace::HasWorkspace;

/// A floating-point element type with fast kernels: `f32` or `f64`.
///
/// The trait is sealed: its supertraits `Kernels`, `HasWorkspace` and `Blas` are private,
/// because each implementation needs hand-written SIMD kernels, its own thread-local packing
/// buffers and its own BLAS routine.
///
/// ```
/// use recur_linalg::Scalar;
///
/// fn zero<T: Scalar>() -> T {
///     T::zero()
/// }
/// assert_eq!(zero::<f32>().to_bits(), 0);
/// ```
pub trait Scalar:
    num_traits::Float
    + LinalgScalar
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
    + Kernels
    + HasWorkspace
    + Blas
{
}

impl Scalar for f32 {}
impl Scalar for f64 {}
