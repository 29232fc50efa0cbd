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

use crate::Scalar;

/// Products of at most this many multiply-adds take this path.
pub(super) const TINY: usize = 4096;

/// Columns of `c` whose sums stay in registers while the depth is walked: a fixed width
/// lets the compiler unroll and vectorise the block, and 16 covers a hidden layer of 16
/// units at once.
const BLOCK: usize = 16;

/// Independent partial sums per dot product: one running sum is a serial chain of additions
/// that the compiler may not reorder (and so cannot vectorise).
const DOT_LANES: usize = 4;

/// Columns of `c` that [`dots`] computes together, sharing each load of the row of `a`.
const DOT_COLS: usize = 4;

/// Which kernel [`tiny`] runs, decided from the operands' layouts alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Plan {
    /// Dense slices in the given orientation (`transposed`: `cᵀ = bᵀ·aᵀ`), with this kernel.
    Dense { transposed: bool, kernel: Kernel },
    /// No orientation has dense slices: plain indexing.
    Indexed,
}

/// The dense kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kernel {
    /// Depth 1: `c ← beta·c + alpha·a·b` with `a` a column and `b` a row.
    Outer,
    /// Row-major `b`: rows of `c` as weighted sums of rows of `b`.
    WeightedRows,
    /// Column-major `b` (the transpose of a row-major matrix): dot products.
    Dots,
}

/// The kernel for `a·b` if `a` is row-major and `b` row- or column-major.
fn kernel<T>(a: &ArrayView2<'_, T>, b: &ArrayView2<'_, T>) -> Option<Kernel> {
    if !a.is_standard_layout() {
        return None;
    }
    let (k, n) = b.dim();
    let b_rows = b.is_standard_layout();
    let b_cols = b.t().is_standard_layout();
    match (b_rows, b_cols) {
        (true, _) if k == 1 => Some(Kernel::Outer),
        // A single column: dot products, not a serial chain over one-element rows.
        (true, true) if n == 1 => Some(Kernel::Dots),
        (true, _) => Some(Kernel::WeightedRows),
        (false, true) => Some(Kernel::Dots),
        (false, false) => None,
    }
}

/// The plan for `c ← alpha·a·b + beta·c`; `c` itself is judged by the caller.
pub(super) fn plan<T>(
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    c: &ArrayViewMut2<'_, T>,
) -> Plan {
    if c.is_standard_layout() {
        if let Some(kernel) = kernel(a, b) {
            return Plan::Dense {
                transposed: false,
                kernel,
            };
        }
    }
    if c.t().is_standard_layout() {
        if let Some(kernel) = kernel(&b.t(), &a.t()) {
            return Plan::Dense {
                transposed: true,
                kernel,
            };
        }
    }
    Plan::Indexed
}

/// `c ← alpha·a·b + beta·c` for `m, n, k ≥ 1`; `c` is not read when `beta == 0`.
pub(super) fn tiny<T: Scalar>(
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    beta: T,
    mut c: ArrayViewMut2<'_, T>,
) {
    match plan(&a, &b, &c) {
        Plan::Dense {
            transposed: false,
            kernel,
        } => dense(kernel, alpha, a, b, beta, c),
        Plan::Dense {
            transposed: true,
            kernel,
        } => dense(
            kernel,
            alpha,
            b.reversed_axes(),
            a.reversed_axes(),
            beta,
            c.reversed_axes(),
        ),
        Plan::Indexed => {
            let k = a.ncols();
            for ((i, j), c_ij) in c.indexed_iter_mut() {
                let sum = (0..k).fold(T::zero(), |s, p| s + a[[i, p]] * b[[p, j]]);
                *c_ij = combine(alpha, sum, beta, *c_ij);
            }
        }
    }
}

/// Runs `kernel` on the dense slices of the operands, as [`plan`] found them.
fn dense<T: Scalar>(
    kernel: Kernel,
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    beta: T,
    mut c: ArrayViewMut2<'_, T>,
) {
    let (k, n) = b.dim();
    let a_flat = a.to_slice();
    let b_flat = match kernel {
        Kernel::Dots => b.reversed_axes().to_slice(),
        Kernel::Outer | Kernel::WeightedRows => b.to_slice(),
    };
    let (Some(a), Some(b), Some(c)) = (a_flat, b_flat, c.as_slice_mut()) else {
        unreachable!("plan: every operand is dense in this orientation")
    };
    match kernel {
        Kernel::Outer => outer(alpha, a, b, beta, c),
        Kernel::WeightedRows => weighted_rows(alpha, (a, k), b, beta, (c, n)),
        Kernel::Dots => dots(alpha, (a, k), b, beta, (c, n)),
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
/// of `k`) and `c` (`n` columns), [`DOT_COLS`] columns at a time.
fn dots<T: Scalar>(alpha: T, (a, k): (&[T], usize), bt: &[T], beta: T, (c, n): (&mut [T], usize)) {
    for (a_row, c_row) in a.chunks_exact(k).zip(c.chunks_exact_mut(n)) {
        let mut c_blocks = c_row.chunks_exact_mut(DOT_COLS);
        let mut bt_blocks = bt.chunks_exact(DOT_COLS * k);
        for (c_block, bt_block) in (&mut c_blocks).zip(&mut bt_blocks) {
            let (y0, rest) = bt_block.split_at(k);
            let (y1, rest) = rest.split_at(k);
            let (y2, y3) = rest.split_at(k);
            let sums = dot4(a_row, [y0, y1, y2, y3]);
            for (c_ij, sum) in c_block.iter_mut().zip(sums) {
                *c_ij = combine(alpha, sum, beta, *c_ij);
            }
        }
        for (c_ij, bt_row) in c_blocks
            .into_remainder()
            .iter_mut()
            .zip(bt_blocks.remainder().chunks_exact(k))
        {
            *c_ij = combine(alpha, dot(a_row, bt_row), beta, *c_ij);
        }
    }
}

/// `Σ_p x[p]·y[p]` over slices of the same length, with [`DOT_LANES`] partial sums.
#[inline(always)]
fn dot<T: Scalar>(x: &[T], y: &[T]) -> T {
    let (x_chunks, x_tail) = x.as_chunks::<DOT_LANES>();
    let (y_chunks, y_tail) = y.as_chunks::<DOT_LANES>();
    let mut lanes = [T::zero(); DOT_LANES];
    for (x, y) in x_chunks.iter().zip(y_chunks) {
        for ((l, &x), &y) in lanes.iter_mut().zip(x).zip(y) {
            *l = *l + x * y;
        }
    }
    reduce(lanes, x_tail, y_tail)
}

/// The dot products of `x` with four slices as long as it, sharing each load of `x`.
#[inline(always)]
fn dot4<T: Scalar>(x: &[T], [y0, y1, y2, y3]: [&[T]; DOT_COLS]) -> [T; DOT_COLS] {
    let (x_chunks, x_tail) = x.as_chunks::<DOT_LANES>();
    let ys = [y0, y1, y2, y3].map(|y| y.as_chunks::<DOT_LANES>());
    let mut lanes = [[T::zero(); DOT_LANES]; DOT_COLS];
    let rows = x_chunks
        .iter()
        .zip(ys[0].0)
        .zip(ys[1].0)
        .zip(ys[2].0)
        .zip(ys[3].0);
    for ((((x, y0), y1), y2), y3) in rows {
        for (q, y) in [y0, y1, y2, y3].into_iter().enumerate() {
            for ((l, &x), &y) in lanes[q].iter_mut().zip(x).zip(y) {
                *l = *l + x * y;
            }
        }
    }
    std::array::from_fn(|q| reduce(lanes[q], x_tail, ys[q].1))
}

/// The sum of the partial sums `lanes` and of the tails' products.
#[inline(always)]
fn reduce<T: Scalar>(lanes: [T; DOT_LANES], x_tail: &[T], y_tail: &[T]) -> T {
    let [l0, l1, l2, l3] = lanes;
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

    fn plan_of(a: ArrayView2<'_, f64>, b: ArrayView2<'_, f64>, c: &mut Array2<f64>) -> Plan {
        plan(&a, &b, &c.view_mut())
    }

    fn dense(transposed: bool, kernel: Kernel) -> Plan {
        Plan::Dense { transposed, kernel }
    }

    /// The products of an Elman step and its readout, laid out as the cell and the engine
    /// lay them out, each get a dense kernel.
    #[test]
    fn recurrent_step_products_get_dense_kernels() {
        let (x, h, w_xh, w_hh) = (
            Array2::zeros((1, 2)),
            Array2::zeros((1, 16)),
            Array2::zeros((2, 16)),
            Array2::zeros((16, 16)),
        );
        let (hs, w_hy, d_logits) = (
            Array2::zeros((8, 16)),
            Array2::zeros((16, 1)),
            Array2::zeros((8, 1)),
        );
        let mut row = Array2::zeros((1, 16));
        let mut square = Array2::zeros((16, 16));
        let mut wide = Array2::zeros((2, 16));
        let mut column = Array2::zeros((8, 1));
        let mut tall = Array2::zeros((16, 1));
        let mut block = Array2::zeros((8, 16));
        let weighted = dense(false, Kernel::WeightedRows);
        assert_eq!(plan_of(x.view(), w_xh.view(), &mut row), weighted);
        assert_eq!(plan_of(h.view(), w_hh.view(), &mut row), weighted);
        let d_prev = plan_of(h.view(), w_hh.t(), &mut row);
        assert_eq!(d_prev, dense(false, Kernel::Dots));
        let d_w_hh = plan_of(h.t(), h.view(), &mut square);
        assert_eq!(d_w_hh, dense(false, Kernel::Outer));
        let d_w_xh = plan_of(x.t(), h.view(), &mut wide);
        assert_eq!(d_w_xh, dense(false, Kernel::Outer));
        let logits = plan_of(hs.view(), w_hy.view(), &mut column);
        assert_eq!(logits, dense(false, Kernel::Dots));
        // d_w_hy = hᵀ·d_logits: hᵀ has contiguous columns, so compute its transpose.
        let d_w_hy = plan_of(hs.t(), d_logits.view(), &mut tall);
        assert_eq!(d_w_hy, dense(true, Kernel::WeightedRows));
        let d_h = plan_of(d_logits.view(), w_hy.t(), &mut block);
        assert_eq!(d_h, dense(false, Kernel::Outer));
    }

    #[test]
    fn layouts_without_dense_rows_are_indexed() {
        let wide = Array2::zeros((4, 12));
        let stepped = wide.slice(s![.., ..;2]);
        let b = Array2::zeros((6, 3));
        let mut c = Array2::zeros((4, 3));
        assert_eq!(plan_of(stepped, b.view(), &mut c), Plan::Indexed);
        // A window of a wider matrix has contiguous rows but is not dense.
        let window = wide.slice(s![.., 1..7]);
        assert_eq!(plan_of(window, b.view(), &mut c), Plan::Indexed);
        // Column-major everywhere: dense in the transposed orientation.
        let a_t = Array2::<f64>::zeros((6, 4));
        let b_t = Array2::<f64>::zeros((3, 6));
        let mut c_t = Array2::<f64>::zeros((3, 4));
        let plan = plan(&a_t.t(), &b_t.t(), &c_t.view_mut().reversed_axes());
        assert_eq!(plan, dense(true, Kernel::WeightedRows));
    }
}
