//! The `gemm` crate behind an ndarray signature, shared by the gemm bench and the allocation
//! test (which records why recur-linalg does not call it).

use ndarray::{ArrayView2, ArrayViewMut2};
use recur_linalg::Scalar;

/// `c ← a·b + beta·c` through the `gemm` crate on one thread. Its convention is
/// `dst ← alpha·dst + beta·lhs·rhs`, reading `dst` only when asked to.
#[allow(unsafe_code)] // the crate's only entry point is a raw-pointer one
pub fn gemm_crate<T: Scalar>(
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    beta: T,
    mut c: ArrayViewMut2<'_, T>,
) {
    let (m, k) = a.dim();
    let n = b.ncols();
    assert_eq!((b.nrows(), c.dim()), (k, (m, n)));
    let (a_rs, a_cs) = (a.strides()[0], a.strides()[1]);
    let (b_rs, b_cs) = (b.strides()[0], b.strides()[1]);
    let (c_rs, c_cs) = (c.strides()[0], c.strides()[1]);
    // SAFETY: the pointers and strides are those of live ndarray views of the checked shapes
    // (`a` m × k, `b` k × n, `c` m × n, `c` uniquely borrowed), so every element the crate
    // addresses lies inside its view; `T` is f32 or f64, which the crate supports.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            c_cs,
            c_rs,
            !beta.is_zero(),
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            beta,
            T::one(),
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}
