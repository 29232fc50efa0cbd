//! Products of at most [`TINY`] multiply-adds, such as the per-step products of a small
//! recurrent model (binary addition multiplies 1×16 by 16×16 at every step).
//!
//! At these sizes the fixed costs of packing and of dispatching to the register-tile kernels
//! were most of the time, so this path works on the operands in place. It looks for an
//! orientation (`c = a·b`, or `cᵀ = bᵀ·aᵀ`) in which `c` and `a` are dense row-major slices
//! and `b` is one too, or is the transpose of one (a view such as `wᵀ`), and then runs plain
//! safe loops over fixed-width blocks, which the compiler unrolls and vectorises:
//! - depth 1 (an outer product, such as a weight gradient `xᵀ·dz`): [`outer`];
//! - `b` row-major: each row of `c` is a weighted sum of rows of `b` ([`weighted_rows`]);
//! - `b` a transposed view: each entry of `c` is a dot product of contiguous rows ([`dots`]).
//!
//! Other layouts (windows of wider matrices, steps, negative strides) are rare here and are
//! computed by plain indexing.

use ndarray::{ArrayView2, ArrayViewMut2};

use crate::{run_wide, Isa, Scalar, WideLoop};

/// Products of at most this many multiply-adds take this path.
pub(super) const TINY: usize = 4096;

/// Columns of `c` whose sums stay in registers while the depth is walked: a fixed width
/// lets the compiler unroll and vectorise the block, and 16 covers a hidden layer of 16
/// units at once.
const BLOCK: usize = 16;

/// Independent partial sums per dot product: one running sum is a serial chain of additions
/// that the compiler may not reorder (and so cannot vectorise).
const DOT_LANES: usize = 8;

/// The dense kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    /// Depth 1: `c ← beta·c + alpha·a·b` with `a` a column and `b` a row.
    Outer,
    /// Row-major `b`: rows of `c` as weighted sums of rows of `b`.
    WeightedRows,
    /// Column-major `b` (the transpose of a row-major matrix): dot products.
    Dots,
}

/// The kernel for `a·b` and the slices it reads (`a`, and `b` or `bᵀ`, row-major), if `a`
/// is dense row-major and `b` dense either way. Each check is one of ndarray's layout tests,
/// which also hands over the slice: at these sizes even those tests are a visible cost.
fn choose<'a, T>(a: ArrayView2<'a, T>, b: ArrayView2<'a, T>) -> Option<(Kernel, &'a [T], &'a [T])> {
    let (k, n) = b.dim();
    let a = a.to_slice()?;
    match b.to_slice() {
        Some(b) if k == 1 => Some((Kernel::Outer, a, b)),
        // A single column (dense both ways): dot products, not a serial chain over
        // one-element rows.
        Some(bt) if n == 1 => Some((Kernel::Dots, a, bt)),
        Some(b) => Some((Kernel::WeightedRows, a, b)),
        None => b.reversed_axes().to_slice().map(|bt| (Kernel::Dots, a, bt)),
    }
}

/// `c ← alpha·a·b + beta·c` for `m, n, k ≥ 1`; `c` is not read when `beta == 0`.
///
/// Dense kernels where `c` and `a` are dense row-major (or, computing `cᵀ = bᵀ·aᵀ`, where
/// `c` and `b` are dense column-major) and the other operand dense either way; plain
/// indexing otherwise.
#[inline]
pub(super) fn tiny<T: Scalar>(
    isa: Isa,
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    beta: T,
    mut c: ArrayViewMut2<'_, T>,
) {
    if let Some(body) = c
        .as_slice_mut()
        .and_then(|c| Dense::new(alpha, a.view(), b.view(), beta, c))
    {
        return run_wide(isa, body);
    }
    let mut c_t = c.view_mut().reversed_axes();
    if let Some(body) = c_t
        .as_slice_mut()
        .and_then(|c_t| Dense::new(alpha, b.t(), a.t(), beta, c_t))
    {
        return run_wide(isa, body);
    }
    let k = a.ncols();
    for ((i, j), c_ij) in c.indexed_iter_mut() {
        let sum = (0..k).fold(T::zero(), |s, p| s + a[[i, p]] * b[[p, j]]);
        *c_ij = combine(alpha, sum, beta, *c_ij);
    }
}

/// A dense kernel with its operands, as one loop for [`run_wide`].
struct Dense<'a, T> {
    kernel: Kernel,
    alpha: T,
    a: (&'a [T], usize),
    b: &'a [T],
    beta: T,
    c: (&'a mut [T], usize),
}

impl<'a, T: Scalar> Dense<'a, T> {
    /// The kernel for `c ← alpha·a·b + beta·c` with `c` dense row-major, if [`choose`] finds
    /// one for `a` and `b`.
    fn new(
        alpha: T,
        a: ArrayView2<'a, T>,
        b: ArrayView2<'a, T>,
        beta: T,
        c: &'a mut [T],
    ) -> Option<Self> {
        let (k, n) = b.dim();
        let (kernel, a, b) = choose(a, b)?;
        Some(Dense {
            kernel,
            alpha,
            a: (a, k),
            b,
            beta,
            c: (c, n),
        })
    }
}

impl<T: Scalar> WideLoop for Dense<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let Dense {
            kernel,
            alpha,
            a,
            b,
            beta,
            c,
        } = self;
        match kernel {
            Kernel::Outer => outer(alpha, a.0, b, beta, c.0),
            Kernel::WeightedRows => weighted_rows(alpha, a, b, beta, c),
            Kernel::Dots => dots(alpha, a, b, beta, c),
        }
    }
}

/// `alpha·sum + beta·c`, not reading `c` when `beta == 0` (BLAS convention: NaN in `c` is
/// overwritten).
#[inline(always)]
fn combine<T: Scalar>(alpha: T, sum: T, beta: T, c: T) -> T {
    if beta.is_zero() {
        alpha * sum
    } else {
        alpha * sum + beta * c
    }
}

/// `c[i][j] ← beta·c[i][j] + (alpha·a[i])·b[j]` for the column `a` and the row `b`, `c`
/// dense `a.len() × b.len()`. Column blocks outside, rows inside: each block of `b` stays in
/// registers for all the rows.
#[inline(always)]
fn outer<T: Scalar>(alpha: T, a: &[T], b: &[T], beta: T, c: &mut [T]) {
    let n = b.len();
    let blocks = b.chunks_exact(BLOCK);
    let tail = blocks.remainder();
    for (j0, b_block) in (0..).step_by(BLOCK).zip(blocks) {
        let mut b_regs = [T::zero(); BLOCK];
        b_regs.copy_from_slice(b_block);
        for (&a_i, c_row) in a.iter().zip(c.chunks_exact_mut(n)) {
            scaled_add(alpha * a_i, &b_regs, beta, &mut c_row[j0..j0 + BLOCK]);
        }
    }
    if tail.is_empty() {
        return;
    }
    for (&a_i, c_row) in a.iter().zip(c.chunks_exact_mut(n)) {
        scaled_add(alpha * a_i, tail, beta, &mut c_row[n - tail.len()..]);
    }
}

/// `c ← beta·c + s·x` (same lengths), `c` unread when `beta == 0`.
#[inline(always)]
fn scaled_add<T: Scalar>(s: T, x: &[T], beta: T, c: &mut [T]) {
    let pairs = c.iter_mut().zip(x);
    if beta.is_zero() {
        pairs.for_each(|(c, &x)| *c = s * x);
    } else if beta.is_one() {
        pairs.for_each(|(c, &x)| *c = *c + s * x);
    } else {
        pairs.for_each(|(c, &x)| *c = beta * *c + s * x);
    }
}

/// `c ← beta·c + alpha·a·b` for dense row-major `a` (`k` columns), `b` (`k × n`) and `c`
/// (`n` columns): each row of `c` is the rows of `b` weighted by a row of `a`, in blocks of
/// [`BLOCK`] columns whose sums stay in registers over the whole depth.
#[inline(always)]
fn weighted_rows<T: Scalar>(
    alpha: T,
    (a, k): (&[T], usize),
    b: &[T],
    beta: T,
    (c, n): (&mut [T], usize),
) {
    for (a_row, c_row) in a.chunks_exact(k).zip(c.chunks_exact_mut(n)) {
        let mut c_blocks = c_row.chunks_exact_mut(BLOCK);
        for (j0, c_block) in (0..).step_by(BLOCK).zip(&mut c_blocks) {
            let mut sums = [T::zero(); BLOCK];
            if !beta.is_zero() {
                for (s, &c) in sums.iter_mut().zip(c_block.iter()) {
                    *s = beta * c;
                }
            }
            for (&a_p, b_row) in a_row.iter().zip(b.chunks_exact(n)) {
                let s_p = alpha * a_p;
                for (s, &b_pj) in sums.iter_mut().zip(&b_row[j0..j0 + BLOCK]) {
                    *s = *s + s_p * b_pj;
                }
            }
            c_block.copy_from_slice(&sums);
        }
        // The last columns one at a time: a variable-length buffer would be filled and
        // copied by library calls that cost more than these few columns.
        let tail = c_blocks.into_remainder();
        let j0 = n - tail.len();
        for (j, c_ij) in (j0..).zip(tail) {
            let start = if beta.is_zero() {
                T::zero()
            } else {
                beta * *c_ij
            };
            *c_ij = a_row
                .iter()
                .zip(b.chunks_exact(n))
                .fold(start, |s, (&a_p, b_row)| s + alpha * a_p * b_row[j]);
        }
    }
}

/// `c[i][j] ← alpha·(a[i] · bt[j]) + beta·c[i][j]` for dense row-major `a` and `bt` (rows
/// of `k`) and `c` (`n` columns).
#[inline(always)]
fn dots<T: Scalar>(alpha: T, (a, k): (&[T], usize), bt: &[T], beta: T, (c, n): (&mut [T], usize)) {
    for (a_row, c_row) in a.chunks_exact(k).zip(c.chunks_exact_mut(n)) {
        for (c_ij, bt_row) in c_row.iter_mut().zip(bt.chunks_exact(k)) {
            *c_ij = combine(alpha, dot(a_row, bt_row), beta, *c_ij);
        }
    }
}

/// `Σ_p x[p]·y[p]` over slices of the same length, with [`DOT_LANES`] partial sums.
#[inline(always)]
fn dot<T: Scalar>(x: &[T], y: &[T]) -> T {
    const HALF: usize = DOT_LANES / 2;
    let (x_chunks, x_tail) = x.as_chunks::<DOT_LANES>();
    let (y_chunks, y_tail) = y.as_chunks::<DOT_LANES>();
    // Two halves of four, added lane by lane at the end: in this shape the compiler keeps
    // each half in one vector register (one array of eight, or a different final reduction,
    // came out as pairs of two-lane registers, with 15 to 50 % more instructions).
    let (mut lo, mut hi) = ([T::zero(); HALF], [T::zero(); HALF]);
    for (x, y) in x_chunks.iter().zip(y_chunks) {
        for l in 0..HALF {
            lo[l] = lo[l] + x[l] * y[l];
            hi[l] = hi[l] + x[l + HALF] * y[l + HALF];
        }
    }
    let [l0, l1, l2, l3] = [lo[0] + hi[0], lo[1] + hi[1], lo[2] + hi[2], lo[3] + hi[3]];
    let tail = x_tail
        .iter()
        .zip(y_tail)
        .fold(T::zero(), |s, (&x, &y)| s + x * y);
    // Pairwise, so the final reduction is two additions deep.
    ((l0 + l2) + (l1 + l3)) + tail
}

#[cfg(test)]
mod tests {
    //! Which kernel each layout gets; the results themselves are checked against a naive
    //! triple loop for every shape and layout in `tests/accuracy.rs`.

    use ndarray::{s, Array2};

    use super::*;

    fn kernel_of(a: ArrayView2<'_, f64>, b: ArrayView2<'_, f64>) -> Option<Kernel> {
        choose(a.view(), b.view()).map(|(kernel, _, _)| kernel)
    }

    /// The products of an Elman step and its readout, laid out as the cell and the engine
    /// lay them out, each get a dense kernel (`c` is row-major in all of them).
    #[test]
    fn recurrent_step_products_get_dense_kernels() {
        let (x, h) = (Array2::zeros((1, 2)), Array2::zeros((1, 16)));
        let (w_xh, w_hh) = (Array2::zeros((2, 16)), Array2::zeros((16, 16)));
        let (hs, w_hy, d_logits) = (
            Array2::zeros((8, 16)),
            Array2::zeros((16, 1)),
            Array2::zeros((8, 1)),
        );
        let weighted = Some(Kernel::WeightedRows);
        assert_eq!(kernel_of(x.view(), w_xh.view()), weighted);
        assert_eq!(kernel_of(h.view(), w_hh.view()), weighted);
        // d_prev = dz·W_hhᵀ, d_w_hh += prevᵀ·dz, d_w_xh += xᵀ·dz.
        assert_eq!(kernel_of(h.view(), w_hh.t()), Some(Kernel::Dots));
        assert_eq!(kernel_of(h.t(), h.view()), Some(Kernel::Outer));
        assert_eq!(kernel_of(x.t(), h.view()), Some(Kernel::Outer));
        // logits = h·W_hy, d_h = d_logits·W_hyᵀ.
        assert_eq!(kernel_of(hs.view(), w_hy.view()), Some(Kernel::Dots));
        assert_eq!(kernel_of(d_logits.view(), w_hy.t()), Some(Kernel::Outer));
        // d_w_hy += hᵀ·d_logits: hᵀ is column-major, so its transpose is computed,
        // d_w_hyᵀ += d_logitsᵀ·h.
        assert_eq!(kernel_of(hs.t(), d_logits.view()), None);
        assert_eq!(kernel_of(d_logits.t(), hs.view()), weighted);
    }

    #[test]
    fn operands_without_dense_slices_get_no_kernel() {
        let wide = Array2::<f64>::zeros((4, 12));
        let b = Array2::zeros((6, 3));
        assert_eq!(kernel_of(wide.slice(s![.., ..;2]), b.view()), None);
        // A window of a wider matrix has contiguous rows but is not one dense slice.
        assert_eq!(kernel_of(wide.slice(s![.., 1..7]), b.view()), None);
        assert_eq!(kernel_of(b.t(), wide.slice(s![..3, ..;3])), None);
        // Reversed rows.
        assert_eq!(kernel_of(b.slice(s![..;-1, ..]), b.t()), None);
    }
}
