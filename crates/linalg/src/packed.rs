//! A right-hand operand packed once for many products: a recurrent layer's weights, which
//! every step of a sequence multiplies with a different batch of rows.
//!
//! [`gemm`](crate::gemm) reads a row-major `b` in place when `a` is short, so a weight
//! matrix of 1024 `f32` columns is walked with a 4 KiB stride: every row of a kernel's panel
//! lands on a new page and on the same few cache sets, and each of the product's row panels
//! fetches it again. Packed once into the kernels' panel layout, each `k × NR` panel is one
//! contiguous run that stays in L1 while all row panels of `a` pass over it.

use std::ops::Range;

use ndarray::{ArrayView2, ArrayViewMut2, Axis};

use crate::driver::{single_panels, BSource, Prepacked};
use crate::gemm::{scale, split_columns};
use crate::pack::pack_b;
use crate::simd::transpose_panels;
use crate::workspace::aligned_offset;
use crate::{gemm_with_isa, Isa, LinalgError, Scalar};

/// A `k × n` matrix in the layout of the panel kernels of one instruction set: panels of
/// `NR` columns, each `k` rows deep and contiguous. Multiply with [`gemm_packed`].
///
/// Pack once, multiply many times: [`PackedB::pack`] reuses the buffer, so repacking after
/// each update of the weights does not allocate once the buffer has its size. A product with
/// a packed `b` gives the same bits as [`gemm`](crate::gemm) with `b` itself whenever `gemm`
/// takes its panel loop (row-major `b`, or a transposed view with `a` too short for dot
/// products), and the same bits on any number of threads.
///
/// ```
/// use ndarray::{array, Array2};
/// use recur_linalg::{gemm, gemm_packed, PackedB};
///
/// let w = array![[1.0_f32, 0.0, 2.0], [0.0, 1.0, 3.0]];
/// let packed = PackedB::new(w.view());
/// let h = array![[1.0_f32, 2.0], [3.0, 4.0]];
/// let (mut c, mut expected) = (Array2::zeros((2, 3)), Array2::zeros((2, 3)));
/// gemm_packed(1.0, h.view(), &packed, 0.0, c.view_mut())?;
/// gemm(1.0, h.view(), w.view(), 0.0, expected.view_mut())?;
/// assert_eq!(c, expected);
/// # Ok::<(), recur_linalg::LinalgError>(())
/// ```
#[derive(Debug, Clone)]
pub struct PackedB<T> {
    isa: Isa,
    rows: usize,
    cols: usize,
    /// Columns per panel; `cols` itself (one row-major panel) for NEON, whose products
    /// run on another crate's kernels.
    nr: usize,
    /// The panels, from an aligned offset of `buf`.
    buf: Vec<T>,
    offset: usize,
}

impl<T: Scalar> PackedB<T> {
    /// `b` packed for the kernels [`Isa::detect`] chooses.
    pub fn new(b: ArrayView2<'_, T>) -> Self {
        let mut packed = PackedB {
            isa: Isa::detect(),
            rows: 0,
            cols: 0,
            nr: 1,
            buf: Vec::new(),
            offset: 0,
        };
        packed.pack(b);
        packed
    }

    /// Packs `b` (any layout) in place of the current contents, for the kernels
    /// [`Isa::detect`] chooses; allocates only when `b` is larger than any matrix packed
    /// here before.
    pub fn pack(&mut self, b: ArrayView2<'_, T>) {
        self.pack_for(Isa::detect(), b);
    }

    /// [`PackedB::pack`] for the kernels of `isa`, for benchmarks and tests.
    ///
    /// # Errors
    /// [`LinalgError::UnsupportedIsa`] if this CPU cannot run `isa`.
    pub fn pack_with_isa(&mut self, isa: Isa, b: ArrayView2<'_, T>) -> Result<(), LinalgError> {
        if !isa.is_supported() {
            return Err(LinalgError::UnsupportedIsa { isa });
        }
        self.pack_for(isa, b);
        Ok(())
    }

    fn pack_for(&mut self, isa: Isa, b: ArrayView2<'_, T>) {
        let (rows, cols) = b.dim();
        let nr = if isa == Isa::Neon {
            cols.max(1)
        } else {
            T::micro_tile(isa).1
        };
        let len = cols.div_ceil(nr) * nr * rows;
        let offset = aligned_offset(&mut self.buf, len);
        let panels = &mut self.buf[offset..offset + len];
        if !transpose_panels(isa, b, nr, panels) {
            pack_b(b, nr, panels);
        }
        (self.isa, self.rows, self.cols, self.nr, self.offset) = (isa, rows, cols, nr, offset);
    }

    /// `(k, n)`: the shape of the packed matrix.
    pub fn dim(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// The instruction set whose kernels the layout is for.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The panels, `panels·k` rows of `nr` values.
    fn panels(&self) -> &[T] {
        let len = self.cols.div_ceil(self.nr) * self.nr * self.rows;
        &self.buf[self.offset..self.offset + len]
    }

    /// Rows `k0..k1` of the packed matrix, for a product with a shorter `a` (a gate's part
    /// of the weights).
    ///
    /// # Errors
    /// [`LinalgError::RowsOutOfRange`] when the range does not fit in the matrix's rows.
    pub fn rows(&self, range: Range<usize>) -> Result<PackedRows<'_, T>, LinalgError> {
        if range.start > range.end || range.end > self.rows {
            return Err(LinalgError::RowsOutOfRange {
                start: range.start,
                end: range.end,
                rows: self.rows,
            });
        }
        Ok(PackedRows {
            packed: self,
            rows: range,
        })
    }
}

/// Some rows of a [`PackedB`]: the `b` of a [`gemm_packed`].
#[derive(Debug, Clone)]
pub struct PackedRows<'a, T> {
    packed: &'a PackedB<T>,
    rows: Range<usize>,
}

impl<'a, T> From<&'a PackedB<T>> for PackedRows<'a, T> {
    fn from(packed: &'a PackedB<T>) -> Self {
        PackedRows {
            rows: 0..packed.rows,
            packed,
        }
    }
}

/// [`gemm`](crate::gemm) with a packed `b`: `c ← alpha·a·b + beta·c`, for `b` a
/// [`PackedB`] or some of its rows ([`PackedB::rows`]). Same conventions, same split over
/// threads by columns; the kernels are those `b` was packed for.
///
/// # Errors
/// [`LinalgError::ShapeMismatch`] if `a.ncols()` differs from `b`'s rows or `c` is not
/// `a.nrows() × b`'s columns; `c` is then left untouched.
pub fn gemm_packed<'b, T: Scalar>(
    alpha: T,
    a: ArrayView2<'_, T>,
    b: impl Into<PackedRows<'b, T>>,
    beta: T,
    c: ArrayViewMut2<'_, T>,
) -> Result<(), LinalgError> {
    let PackedRows { packed, rows } = b.into();
    let (m, k, n) = (a.nrows(), a.ncols(), packed.cols);
    if k != rows.len() || c.dim() != (m, n) {
        return Err(LinalgError::ShapeMismatch {
            a_rows: m,
            a_cols: k,
            b_rows: rows.len(),
            b_cols: n,
            c_rows: c.nrows(),
            c_cols: c.ncols(),
        });
    }
    let isa = packed.isa;
    if isa == Isa::Neon {
        // One row-major panel: the plain product on that instruction set's kernels.
        let plain = ArrayView2::from_shape((packed.rows, n), packed.panels())
            .expect("a one-panel layout holds k·n values");
        let b = plain.slice_axis(Axis(0), (rows.start..rows.end).into());
        return gemm_with_isa(isa, alpha, a, b, beta, c);
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 || alpha.is_zero() {
        scale(beta, c);
        return Ok(());
    }
    let nr = packed.nr;
    let b = Prepacked {
        panels: packed.panels(),
        nr,
        depth: packed.rows,
        k0: rows.start,
        col0: 0,
    };
    split_columns(m, n, k, nr, c, |col0, c_part| {
        let b = BSource::Prepacked(Prepacked { col0, ..b });
        single_panels(isa, alpha, a, b, beta, c_part);
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use ndarray::{s, Array2};

    use super::*;
    use crate::gemm::gemm_with_isa;

    fn matrix(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            let x = (i as u64 * 31 + j as u64 * 17 + seed * 7) % 23;
            x as f64 / 7.0 - 1.5
        })
    }

    /// Every supported set, row- and column-major `b`, a row range, odd sizes, many threads'
    /// worth of columns: the same bits as `gemm` on the panel loop.
    #[test]
    fn packed_products_equal_the_plain_panel_loop() {
        for isa in [Isa::Avx512, Isa::Avx2Fma, Isa::Portable] {
            if !isa.is_supported() {
                continue;
            }
            for (m, k, n) in [(1, 1, 1), (3, 7, 5), (33, 70, 300), (130, 40, 97)] {
                let a = matrix(m, k + 3, 1);
                let w = matrix(k + 5, n, 2);
                let wt = w.t().to_owned();
                for b in [w.view(), wt.t()] {
                    let mut packed = PackedB::new(b);
                    packed.pack_with_isa(isa, b).unwrap();
                    let a = a.slice(s![.., 3..]);
                    let mut c = matrix(m, n, 3);
                    let mut expected = c.clone();
                    let rows = packed.rows(2..k + 2).unwrap();
                    gemm_packed(0.5, a, rows, 2.0, c.view_mut()).unwrap();
                    // Row-major, so that `gemm` takes the panel loop.
                    let mut b_rows = Array2::zeros((k, n));
                    b_rows.assign(&b.slice(s![2..k + 2, ..]));
                    gemm_with_isa(isa, 0.5, a, b_rows.view(), 2.0, expected.view_mut()).unwrap();
                    if m * n * k > 4096 {
                        assert_eq!(c, expected, "{isa} {m}×{k}×{n}");
                    } else {
                        let diff = (&c - &expected).mapv(f64::abs);
                        assert!(diff.iter().all(|&d| d < 1e-12), "{isa} {m}×{k}×{n}");
                    }
                }
            }
        }
    }

    #[test]
    fn bad_shapes_are_errors_and_leave_c_alone() {
        let packed = PackedB::new(matrix(4, 6, 0).view());
        assert_eq!(packed.dim(), (4, 6));
        let mut c = Array2::from_elem((2, 6), 7.0);
        assert!(gemm_packed(1.0, matrix(2, 3, 1).view(), &packed, 0.0, c.view_mut()).is_err());
        assert!(packed.rows(2..5).is_err());
        let rows = packed.rows(1..4).unwrap();
        assert!(gemm_packed(1.0, matrix(2, 3, 1).view(), rows, 0.0, c.view_mut()).is_ok());
        let mut wide = Array2::zeros((2, 7));
        assert!(gemm_packed(1.0, matrix(2, 4, 1).view(), &packed, 0.0, wide.view_mut()).is_err());
        assert!(wide.iter().all(|&v| v == 0.0));
    }
}
