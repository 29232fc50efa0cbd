//! The public matrix product: argument checks, layout normalization and the split over
//! threads.

use std::sync::{Mutex, PoisonError};

use ndarray::{s, ArrayView2, ArrayViewMut2, Axis};

use crate::driver::{plan, single, Plan};
use crate::{threads, Isa, LinalgError, Scalar};

mod tiny;

use tiny::{tiny, TINY};

/// Products below this many flops (`2·m·n·k`) stay on one thread: waking a worker costs
/// microseconds, about what a 4-Mflop product saves on a second core.
const PARALLEL_MIN_FLOPS: usize = 4 << 20;
/// Each thread gets at least this many columns of `c` in the packed loop, so its panels of
/// `b` stay wide…
const PACKED_MIN_PART: usize = 48;
/// …in multiples of this: a whole number of register tiles for every kernel.
const PACKED_ALIGN: usize = 32;
/// The dot-product loop splits along rows from this many rows of `a` on (each thread then
/// streams its own rows of `a`), along columns below (each thread streams its own rows of `bᵀ`).
const DOT_ROW_SPLIT: usize = 64;
/// Smallest share of rows or columns per thread in the dot-product loop…
const DOT_MIN_PART: usize = 8;
/// …in multiples of this (whole AVX-512 dot tiles of rows).
const DOT_ALIGN: usize = 4;

/// General matrix product: `c ← alpha·a·b + beta·c`.
///
/// `a` is `m × k`, `b` is `k × n` and `c` is `m × n`. Any strides work: row- or column-major
/// arrays, transposed views (`w.t()`), sliced and reversed views; the kernels pack or read
/// them in place as the layout allows.
///
/// Conventions (those of BLAS):
/// - `beta == 0` does not read `c`, so NaN or garbage in `c` is overwritten;
/// - `alpha == 0` (or `k == 0`) does not read `a` or `b`: `c ← beta·c`.
///
/// The kernels are chosen at run time ([`Isa::detect`]: AVX-512F, AVX2+FMA or portable).
/// Packing buffers are per thread and reused, so once they have grown to the largest shape a
/// thread multiplies, calls do not allocate. Products of at least about 4 Mflop are split
/// over [`threads()`] threads (by columns of `c`, or by rows when `a` is the larger operand);
/// results are identical whatever the thread count.
///
/// # Errors
/// [`LinalgError::ShapeMismatch`] if `a.ncols() != b.nrows()` or `c` is not
/// `a.nrows() × b.ncols()`; `c` is then left untouched.
///
/// # Examples
/// ```
/// use ndarray::{array, Array2};
/// use recur_linalg::gemm;
///
/// let h = array![[1.0_f32, 2.0], [3.0, 4.0]];
/// let w = array![[1.0_f32, 0.0, 2.0], [0.0, 1.0, 3.0]];
/// let mut logits = Array2::from_elem((2, 3), f32::NAN); // beta = 0: never read
/// gemm(1.0, h.view(), w.view(), 0.0, logits.view_mut())?;
/// assert_eq!(logits, array![[1.0, 2.0, 8.0], [3.0, 4.0, 18.0]]);
///
/// // Accumulate a gradient through transposed views: d_w += hᵀ · d_logits.
/// let d_logits = array![[1.0_f32, 0.0, 0.0], [0.0, 0.0, 1.0]];
/// let mut d_w = Array2::<f32>::zeros((2, 3));
/// gemm(1.0, h.t(), d_logits.view(), 1.0, d_w.view_mut())?;
/// assert_eq!(d_w, array![[1.0, 0.0, 3.0], [2.0, 0.0, 4.0]]);
///
/// // Shapes that do not fit are an error, not a panic.
/// assert!(gemm(1.0, h.view(), h.t(), 0.0, logits.view_mut()).is_err());
/// # Ok::<(), recur_linalg::LinalgError>(())
/// ```
pub fn gemm<T: Scalar>(
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    beta: T,
    mut c: ArrayViewMut2<'_, T>,
) -> Result<(), LinalgError> {
    // With the `blas` feature, products of fitting shapes and layouts go to the system BLAS.
    let ((m, k), n) = (a.dim(), b.ncols());
    let fits = b.nrows() == k && c.dim() == (m, n) && m * n * k > 0;
    if fits && T::blas_gemm(alpha, &a, &b, beta, &mut c) {
        return Ok(());
    }
    gemm_with_isa(Isa::detect(), alpha, a, b, beta, c)
}

/// [`gemm`] with the kernels of an explicitly chosen instruction set, for benchmarks, tests
/// and bit-for-bit reproducibility across machines ([`Isa::Portable`] runs everywhere).
///
/// # Errors
/// [`LinalgError::UnsupportedIsa`] if this CPU cannot run `isa`;
/// [`LinalgError::ShapeMismatch`] as for [`gemm`].
///
/// # Examples
/// ```
/// use ndarray::array;
/// use recur_linalg::{gemm_with_isa, Isa};
///
/// let a = array![[1.0_f64, 2.0, 3.0]];
/// let b = array![[1.0_f64], [1.0], [1.0]];
/// let mut c = array![[10.0_f64]];
/// gemm_with_isa(Isa::Portable, 2.0, a.view(), b.view(), -0.5, c.view_mut())?;
/// assert_eq!(c[[0, 0]], 2.0 * 6.0 - 0.5 * 10.0);
/// # Ok::<(), recur_linalg::LinalgError>(())
/// ```
pub fn gemm_with_isa<T: Scalar>(
    isa: Isa,
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    beta: T,
    c: ArrayViewMut2<'_, T>,
) -> Result<(), LinalgError> {
    let ((m, k), (k_b, n)) = (a.dim(), b.dim());
    if k != k_b || c.dim() != (m, n) {
        return Err(LinalgError::ShapeMismatch {
            a_rows: m,
            a_cols: k,
            b_rows: k_b,
            b_cols: n,
            c_rows: c.nrows(),
            c_cols: c.ncols(),
        });
    }
    // The detected set is supported by construction (one relaxed load instead of a feature
    // query, which shows in the cost of a tiny product).
    if isa != Isa::detect() && !isa.is_supported() {
        return Err(LinalgError::UnsupportedIsa { isa });
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 || alpha.is_zero() {
        scale(beta, c);
        return Ok(());
    }
    if m.saturating_mul(n).saturating_mul(k) <= TINY {
        tiny(isa, alpha, a, b, beta, c);
        return Ok(());
    }
    // The kernels store whole rows of c: if c is column-major, compute cᵀ = bᵀ·aᵀ instead.
    let rows_contiguous = n == 1 || c.strides()[1] == 1;
    let cols_contiguous = m == 1 || c.strides()[0] == 1;
    if !rows_contiguous && cols_contiguous {
        split(
            isa,
            alpha,
            b.reversed_axes(),
            a.reversed_axes(),
            beta,
            c.reversed_axes(),
        );
    } else {
        split(isa, alpha, a, b, beta, c);
    }
    Ok(())
}

/// `c ← beta·c`, writing zeros without reading `c` when `beta == 0`.
pub(crate) fn scale<T: Scalar>(beta: T, mut c: ArrayViewMut2<'_, T>) {
    if beta.is_zero() {
        c.fill(T::zero());
    } else if !beta.is_one() {
        c.map_inplace(|x| *x = *x * beta);
    }
}

/// Splits the product over threads when it is large enough, so each thread reads a disjoint
/// part of the larger operand: along the rows of `c` for a tall dot-product product (`a` is
/// the big one), along the columns otherwise (`b` is).
fn split<T: Scalar>(
    isa: Isa,
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    beta: T,
    c: ArrayViewMut2<'_, T>,
) {
    let (m, k, n) = (a.nrows(), a.ncols(), b.ncols());
    let flops = 2_usize
        .saturating_mul(m)
        .saturating_mul(n)
        .saturating_mul(k);
    let plan = plan(isa, &a, &b);
    let (axis, len, min_len, align) = match (plan, m >= DOT_ROW_SPLIT) {
        (Plan::Dot, true) => (Axis(0), m, DOT_MIN_PART, DOT_ALIGN),
        (Plan::Dot, false) => (Axis(1), n, DOT_MIN_PART, DOT_ALIGN),
        (Plan::PanelsDotTail, _) => {
            let mr = T::micro_tile(isa).0;
            (Axis(0), m, mr, mr)
        }
        (Plan::Panels, _) => (Axis(1), n, PACKED_MIN_PART, PACKED_ALIGN),
    };
    split_along(axis, (len, min_len, align), flops, c, |from, c_part| {
        if axis == Axis(0) {
            let rows = from..from + c_part.nrows();
            single(isa, plan, alpha, a.slice(s![rows, ..]), b, beta, c_part);
        } else {
            let cols = from..from + c_part.ncols();
            single(isa, plan, alpha, a, b.slice(s![.., cols]), beta, c_part);
        }
    });
}

/// Runs the panel loop of an `m × k · k × n` product over parts of `c`'s columns, on as many
/// threads as the product is worth, as [`gemm`] does: `part(col0, c_part)` computes columns
/// `col0..` of `c`; every `col0` is a multiple of `nr`.
pub(crate) fn split_columns<T: Scalar>(
    m: usize,
    n: usize,
    k: usize,
    nr: usize,
    c: ArrayViewMut2<'_, T>,
    part: impl Fn(usize, ArrayViewMut2<'_, T>) + Sync,
) {
    let flops = 2_usize
        .saturating_mul(m)
        .saturating_mul(n)
        .saturating_mul(k);
    let align = PACKED_ALIGN.next_multiple_of(nr);
    split_along(Axis(1), (n, PACKED_MIN_PART, align), flops, c, part);
}

/// Splits `c` along `axis` (`len` long) into parts of at least `min_len`, in multiples of
/// `align`, and runs `part(first index, c_part)` on each over the pool; one part on the
/// calling thread when the product (`flops`) is too small to share.
fn split_along<T: Scalar>(
    axis: Axis,
    (len, min_len, align): (usize, usize, usize),
    flops: usize,
    mut c: ArrayViewMut2<'_, T>,
    part: impl Fn(usize, ArrayViewMut2<'_, T>) + Sync,
) {
    let runners = threads().min(len / min_len);
    if runners <= 1 || flops < PARALLEL_MIN_FLOPS {
        part(0, c.view_mut());
        return;
    }
    // With room, twice as many chunks as runners, taken from a shared queue, balance a loaded
    // machine; otherwise one chunk each.
    let pieces = if len >= 4 * runners * min_len {
        2 * runners
    } else {
        runners
    };
    let width = len.div_ceil(pieces).next_multiple_of(align);
    let chunks = Mutex::new(c.axis_chunks_iter_mut(axis, width).enumerate());
    let job = |_runner: usize| loop {
        let next = chunks.lock().unwrap_or_else(PoisonError::into_inner).next();
        let Some((index, c_chunk)) = next else { break };
        part(index * width, c_chunk);
    };
    crate::threads::run(runners, &job);
}
