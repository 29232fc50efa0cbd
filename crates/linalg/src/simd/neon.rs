//! ARM64 products on matrixmultiply's NEON kernels: a maintained, tested set of register
//! tiles for this architecture, used instead of recur's portable loop.
//!
//! What changes against the x86-64 kernels: matrixmultiply allocates its packing buffers on
//! every call, so a training update on ARM64 allocates once per product. Results stay the same
//! bits whatever the thread count: threads split `c` into blocks of rows or columns, and each
//! element's sum along `k` is blocked the same way in every block.

use ndarray::{ArrayView2, ArrayViewMut2};

use crate::Scalar;

/// `c ← alpha·a·b + beta·c` (`c` not read when `beta == 0`) for agreeing shapes.
pub(crate) fn gemm<T: Scalar>(
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    beta: T,
    mut c: ArrayViewMut2<'_, T>,
) {
    let ((m, k), (k_b, n)) = (a.dim(), b.dim());
    assert!(
        k == k_b && c.dim() == (m, n),
        "shapes checked by gemm_with_isa"
    );
    let (sa, sb) = (a.strides(), b.strides());
    let (rsc, csc) = (c.strides()[0], c.strides()[1]);
    // SAFETY: each view addresses exactly its elements through its pointer and strides, the
    // shapes agree, and `c` is borrowed mutably, so it is neither aliased by `a` or `b` nor
    // (as an ndarray view) does it address one element twice.
    unsafe {
        T::neon_gemm(
            (m, k, n),
            alpha,
            (a.as_ptr(), sa[0], sa[1]),
            (b.as_ptr(), sb[0], sb[1]),
            beta,
            (c.as_mut_ptr(), rsc, csc),
        );
    }
}
