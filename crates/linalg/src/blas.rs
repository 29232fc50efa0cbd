//! The optional route of [`gemm`](crate::gemm) to the system's BLAS (`cblas_sgemm`,
//! `cblas_dgemm`), built with the `blas` feature.
//!
//! The feature declares the CBLAS functions (through `cblas-sys`) without choosing a library:
//! as with ndarray's `blas` feature, the final program links one, usually by depending on
//! `blas-src` with the provider's feature (`openblas`, `accelerate`, `intel-mkl`, …).
//! `blas-openblas` does that for the system's OpenBLAS, which is how this crate's own tests
//! and benchmarks run it.
//!
//! What changes with BLAS: products whose operands each have a unit stride along one axis go
//! to the library (others, and [`gemm_with_isa`](crate::gemm_with_isa) and
//! [`gemm_packed`](crate::gemm_packed), stay on this crate's kernels). Their results are the
//! library's: equal to this crate's up to rounding, not bit for bit. Whether they are the
//! same across thread counts, and whether a call allocates, is up to the library; its own
//! threads are set its own way (`OPENBLAS_NUM_THREADS`, …), not by
//! [`set_threads`](crate::set_threads).

use ndarray::{ArrayView2, ArrayViewMut2};

/// A matrix as CBLAS reads it in row-major order: whether it is stored transposed, and its
/// leading dimension.
#[cfg_attr(not(feature = "blas"), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub transposed: bool,
    pub ld: i32,
}

/// How CBLAS can read an `r × c` matrix with element strides `strides`, if it can: row-major
/// (unit column stride, rows at least `c` apart) or column-major, with the strides of a
/// single row or column free.
#[cfg_attr(not(feature = "blas"), allow(dead_code))]
pub(crate) fn layout((r, c): (usize, usize), strides: &[isize]) -> Option<Layout> {
    let (sr, sc) = (strides[0], strides[1]);
    let unit = |len: usize, stride: isize| len <= 1 || stride == 1;
    // The leading dimension: the other stride, or the minimum CBLAS accepts when unused.
    let lead = |len: usize, stride: isize, min: usize| {
        let ld = if len <= 1 {
            min.max(1) as isize
        } else {
            stride
        };
        (ld >= min.max(1) as isize)
            .then(|| i32::try_from(ld).ok())
            .flatten()
    };
    if unit(c, sc) {
        if let Some(ld) = lead(r, sr, c) {
            return Some(Layout {
                transposed: false,
                ld,
            });
        }
    }
    if unit(r, sr) {
        if let Some(ld) = lead(c, sc, r) {
            return Some(Layout {
                transposed: true,
                ld,
            });
        }
    }
    None
}

/// A scalar whose products the system BLAS can compute.
pub trait Blas: Sized {
    /// `c ← alpha·a·b + beta·c` on the system BLAS, when this crate is built with `blas` and
    /// the layouts allow it; returns whether it ran. Shapes are checked by the caller.
    #[doc(hidden)]
    fn blas_gemm(
        alpha: Self,
        a: &ArrayView2<'_, Self>,
        b: &ArrayView2<'_, Self>,
        beta: Self,
        c: &mut ArrayViewMut2<'_, Self>,
    ) -> bool;
}

/// The CBLAS routine of one element type: `cblas_sgemm` or `cblas_dgemm`.
#[cfg(feature = "blas")]
type Routine<T> = unsafe extern "C" fn(
    cblas_sys::CBLAS_LAYOUT,
    cblas_sys::CBLAS_TRANSPOSE,
    cblas_sys::CBLAS_TRANSPOSE,
    i32,
    i32,
    i32,
    T,
    *const T,
    i32,
    *const T,
    i32,
    T,
    *mut T,
    i32,
);

/// `c ← alpha·a·b + beta·c` through `routine` when every operand has a layout CBLAS reads
/// (and `c` is row-major); returns whether it ran.
#[cfg(feature = "blas")]
#[allow(unsafe_code)] // one foreign call, argued at the `unsafe` block
fn on_blas<T: Copy>(
    routine: Routine<T>,
    (alpha, beta): (T, T),
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    c: &mut ArrayViewMut2<'_, T>,
) -> bool {
    use cblas_sys::{CBLAS_LAYOUT, CBLAS_TRANSPOSE};
    let (m, k, n) = (a.nrows(), a.ncols(), b.ncols());
    let dims = (i32::try_from(m), i32::try_from(n), i32::try_from(k));
    let (Ok(m), Ok(n), Ok(k)) = dims else {
        return false;
    };
    let (Some(la), Some(lb), Some(lc)) = (
        layout(a.dim(), a.strides()),
        layout(b.dim(), b.strides()),
        layout(c.dim(), c.strides()),
    ) else {
        return false;
    };
    if lc.transposed {
        return false;
    }
    let trans = |l: Layout| {
        if l.transposed {
            CBLAS_TRANSPOSE::CblasTrans
        } else {
            CBLAS_TRANSPOSE::CblasNoTrans
        }
    };
    // SAFETY: `layout` accepted every operand: each has a unit stride along one axis,
    // non-negative strides and a leading dimension that CBLAS checks against m, n and k, so
    // the library reads exactly the views' elements (ndarray's pointer is the first element
    // when strides are non-negative) and writes only `c`, which the `&mut` borrow makes
    // exclusive. `routine` is the CBLAS function of `T`.
    unsafe {
        routine(
            CBLAS_LAYOUT::CblasRowMajor,
            trans(la),
            trans(lb),
            m,
            n,
            k,
            alpha,
            a.as_ptr(),
            la.ld,
            b.as_ptr(),
            lb.ld,
            beta,
            c.as_mut_ptr(),
            lc.ld,
        );
    }
    true
}

macro_rules! impl_blas {
    ($($t:ty => $routine:ident),*) => {$(
        impl Blas for $t {
            #[inline(always)]
            fn blas_gemm(
                alpha: Self,
                a: &ArrayView2<'_, Self>,
                b: &ArrayView2<'_, Self>,
                beta: Self,
                c: &mut ArrayViewMut2<'_, Self>,
            ) -> bool {
                #[cfg(feature = "blas")]
                return on_blas(cblas_sys::$routine, (alpha, beta), a, b, c);
                #[cfg(not(feature = "blas"))]
                return {
                    let _ = (alpha, a, b, beta, c);
                    false
                };
            }
        }
    )*};
}

impl_blas!(f32 => cblas_sgemm, f64 => cblas_dgemm);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_and_column_major_operands_have_a_layout() {
        let row = Layout {
            transposed: false,
            ld: 5,
        };
        let col = Layout {
            transposed: true,
            ld: 3,
        };
        assert_eq!(layout((3, 4), &[5, 1]), Some(row));
        assert_eq!(layout((3, 4), &[1, 3]), Some(col));
        // A single row or column: its unused stride is free, the leading dimension minimal.
        assert_eq!(
            layout((1, 4), &[0, 1]),
            Some(Layout {
                transposed: false,
                ld: 4
            })
        );
        assert_eq!(
            layout((4, 1), &[1, 7]),
            Some(Layout {
                transposed: false,
                ld: 1
            })
        );
        // Rows closer than a row's length, negative or non-unit strides: no layout.
        assert_eq!(layout((3, 4), &[2, 1]), None);
        assert_eq!(layout((3, 4), &[-4, 1]), None);
        assert_eq!(layout((3, 4), &[8, 2]), None);
    }

    /// Every layout CBLAS accepts gives the naive product; a `c` it cannot write is left to
    /// this crate's kernels.
    #[cfg(feature = "blas")]
    #[test]
    fn the_system_blas_computes_products_of_every_layout_it_accepts() {
        use ndarray::{s, Array2, ShapeBuilder};

        let fill = |r, c, seed: usize| {
            Array2::from_shape_fn((r, c), |(i, j)| ((i * 7 + j * 13 + seed) % 11) as f64 - 5.0)
        };
        // `b` is also read in place from inside a wider matrix (rows 9 apart).
        let wide = fill(3, 9, 2);
        let (a, b) = (fill(5, 3, 1), wide.slice(s![.., 2..6]).to_owned());
        let want = a.dot(&b) * 2.0 + fill(5, 4, 3) * 0.5;
        let column_major = |m: &Array2<f64>| {
            let mut out = Array2::zeros(m.dim().f());
            out.assign(m);
            out
        };
        let (a_col, b_col) = (column_major(&a), column_major(&b));
        let b_strided_rows = wide.slice(s![.., 2..6]);
        for (a, b) in [
            (a.view(), b.view()),
            (a_col.view(), b.view()),
            (a.view(), b_strided_rows),
            (a_col.view(), b_col.view()),
        ] {
            let mut c = fill(5, 4, 3);
            assert!(f64::blas_gemm(2.0, &a, &b, 0.5, &mut c.view_mut()));
            assert_eq!(c, want);
        }
        let mut c_col = Array2::zeros((5, 4).f());
        assert!(!f64::blas_gemm(
            1.0,
            &a.view(),
            &b.view(),
            0.0,
            &mut c_col.view_mut()
        ));
    }
}
