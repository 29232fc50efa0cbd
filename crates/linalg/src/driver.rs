//! Single-threaded products: the blocked packed-panel loop and the dot-product loop.

use ndarray::{s, ArrayView2, ArrayViewMut2, Zip};

use crate::pack::{pack_a, pack_b};
use crate::simd::{dot, micro, transpose_panels, ATile, RowsMut, RowsRef};
use crate::workspace::aligned;
use crate::{Isa, Scalar};

/// Bytes of `b` per block (`kc × nc`, packed or read in place): about half of a 1 MiB L2, so
/// the block is still cached when the next micro-panel of `a` sweeps it.
const B_BLOCK_BYTES: usize = 512 * 1024;
/// Bytes of `a` packed at once (`mc × kc`): the packed block is reused across all of `b`, and
/// stays within L2 next to a block of `b`.
const A_BLOCK_BYTES: usize = 512 * 1024;
/// Depth of one block (`kc`), in bytes per row of a micro-panel of `a`: the `MR × kc`
/// micro-panel (20 KB) stays in L1 while panels of `b` stream past it from L2, and deeper
/// blocks mean fewer passes over `c` (measured on the batch-32 products, `f32`: 512 deep
/// beats 256 by 3–5 %; `f64` is even at 256 and 512, and keeps 256).
const KC_BYTES: usize = 2048;
/// `b` is read in place (no packing) when `a` has at most this many rows: with so few passes
/// over `b`, packing it would cost as much as the arithmetic.
const DIRECT_B_MAX_ROWS: usize = 128;
/// Depth of one block of the dot-product loop, in bytes per row (measured: longer runs beat
/// keeping the tile of `bᵀ` in L1, up to the point where `a`'s block leaves L2).
const DOT_KC_BYTES: usize = 16 * 1024;
/// The dot-product loop needs some depth to amortize its horizontal sums…
const DOT_MIN_K: usize = 32;
/// …and more depth still when `a` has enough rows for packing `b` to pay off.
const DOT_MIN_K_TALL: usize = 128;
/// Up to this many rows of `a`, packing `b` costs more than it saves even for shallow `k`.
const DOT_SHORT_ROWS: usize = 16;
/// Bytes of `a` one sweep of the dot-product loop keeps in L2 (a block of rows × `kc`).
const DOT_A_BLOCK_BYTES: usize = 512 * 1024;
/// From this many rows of `a` on, transposing `b` into panels costs less than the dot-product
/// loop loses to its horizontal sums and its streaming of `bᵀ` from L2 (measured with
/// `k = 8000`, `n = 100`: even at 256 rows, 15–20 % ahead at 384 and 640).
const PANELS_MIN_ROWS_TRANSPOSED: usize = 256;

/// How a product is computed. It is chosen once for the whole product, so every part of a
/// product split over threads sums in the same order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// The blocked panel loop, for any layout.
    Panels,
    /// Dot products along `k`: `a` row-major, `b` column-major (a transposed view such as
    /// `wᵀ`) and `a` short.
    Dot,
    /// The same layouts with `a` tall: the panel loop (reading `a` in place, packing `b` by
    /// transposes) for the columns of `c` that fill whole vectors, dot products for the last
    /// few, which would waste most of a vector's lanes (4 of 100 columns took an eighth of
    /// the time). Split over threads by rows, so every part has the same columns.
    PanelsDotTail,
}

/// `c ← alpha·a·b + beta·c` on the calling thread, for `m, n, k ≥ 1` and `alpha ≠ 0`, as
/// `plan` (from [`plan`] for the whole product) says.
pub(crate) fn single<T: Scalar>(
    isa: Isa,
    plan: Plan,
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    beta: T,
    mut c: ArrayViewMut2<'_, T>,
) {
    #[cfg(target_arch = "aarch64")]
    if isa == Isa::Neon {
        crate::simd::neon::gemm(alpha, a, b, beta, c);
        return;
    }
    let n = b.ncols();
    let dot_from = match plan {
        Plan::Panels => n,
        Plan::Dot => 0,
        Plan::PanelsDotTail => n - n % vector_lanes::<T>(isa),
    };
    if dot_from == 0 {
        if let (Some(a_rows), Some(bt_rows)) =
            (RowsRef::from_view(a), RowsRef::from_view(b.reversed_axes()))
        {
            dot_product(isa, alpha, &a_rows, &bt_rows, beta, &mut c);
            return;
        }
    }
    let dot_from = if dot_from == 0 { n } else { dot_from };
    single_panels(isa, alpha, a, BSource::View(b, dot_from), beta, c);
}

/// Lanes of one vector of `T` in the panel kernels (their tile is two vectors wide).
fn vector_lanes<T: Scalar>(isa: Isa) -> usize {
    (T::micro_tile(isa).1 / 2).max(1)
}

/// A `b` packed once into panels of `NR` columns, each `depth` rows deep (see
/// [`crate::PackedB`]), of which a product uses rows `k0..` and columns `col0..` (`col0` a
/// multiple of `NR`).
#[derive(Clone, Copy)]
pub(crate) struct Prepacked<'a, T> {
    /// The panels, `panels·depth` rows of `nr` values.
    pub(crate) panels: &'a [T],
    pub(crate) nr: usize,
    pub(crate) depth: usize,
    pub(crate) k0: usize,
    pub(crate) col0: usize,
}

/// The `b` of the panel loop: a view (with dot products from a column on, where the layout
/// allows), or panels packed beforehand.
#[derive(Clone, Copy)]
pub(crate) enum BSource<'a, T> {
    View(ArrayView2<'a, T>, usize),
    Prepacked(Prepacked<'a, T>),
}

/// The panel loop ([`packed`]) on the calling thread and its buffers, through a dense copy
/// of `c` if its rows are strided.
pub(crate) fn single_panels<T: Scalar>(
    isa: Isa,
    alpha: T,
    a: ArrayView2<'_, T>,
    b: BSource<'_, T>,
    beta: T,
    mut c: ArrayViewMut2<'_, T>,
) {
    T::with_workspace(|ws| {
        if let Some(mut c_rows) = RowsMut::from_view(&mut c) {
            let bufs = (&mut ws.a, &mut ws.b);
            packed(isa, alpha, a, b, beta, &mut c_rows, bufs);
            return;
        }
        // c has no unit stride along its rows: compute alpha·a·b densely, then merge.
        let (m, n) = c.dim();
        let dense = aligned(&mut ws.c, m * n);
        packed(
            isa,
            alpha,
            a,
            b,
            T::zero(),
            &mut RowsMut::from_slice(dense, m, n),
            (&mut ws.a, &mut ws.b),
        );
        let dense =
            ArrayView2::from_shape((m, n), &*dense).expect("dense buffer holds m·n elements");
        let read_c = !beta.is_zero();
        Zip::from(&mut c)
            .and(&dense)
            .for_each(|c, &x| *c = if read_c { x + beta * *c } else { x });
    });
}

/// The plan for `a·b`: dot products when `b` is column-major (a transposed view such as
/// `wᵀ`), `a` row-major and short and `k` deep enough; the panel loop otherwise.
pub(crate) fn plan<T: Scalar>(isa: Isa, a: &ArrayView2<'_, T>, b: &ArrayView2<'_, T>) -> Plan {
    let (m, k) = a.dim();
    let a_rows_contiguous = k == 1 || a.strides()[1] == 1;
    let b_cols_contiguous = k == 1 || b.strides()[0] == 1;
    let b_rows_contiguous = b.ncols() == 1 || b.strides()[1] == 1;
    let min_k = if m <= DOT_SHORT_ROWS {
        DOT_MIN_K
    } else {
        DOT_MIN_K_TALL
    };
    let dot = T::dot_tile(isa).is_some()
        && a_rows_contiguous
        && b_cols_contiguous
        && !b_rows_contiguous
        && k >= min_k;
    match (dot, m >= PANELS_MIN_ROWS_TRANSPOSED) {
        (false, _) => Plan::Panels,
        (true, false) => Plan::Dot,
        (true, true) => Plan::PanelsDotTail,
    }
}

/// `c ← alpha·a·btᵀ + beta·c` by tiles of dot products along `k`: depth blocks of `kc`,
/// blocks of rows of `a` that stay in L2, then `DN` rows of `bᵀ` against every `DM`-row tile
/// of the block.
fn dot_product<T: Scalar>(
    isa: Isa,
    alpha: T,
    a: &RowsRef<'_, T>,
    bt: &RowsRef<'_, T>,
    beta: T,
    c: &mut ArrayViewMut2<'_, T>,
) {
    let Some((dm_max, _)) = T::dot_tile(isa) else {
        return;
    };
    let (m, k) = (a.rows(), a.cols());
    let kc_max = DOT_KC_BYTES / std::mem::size_of::<T>();
    let mb_max = (DOT_A_BLOCK_BYTES / DOT_KC_BYTES).next_multiple_of(dm_max);
    for pc in (0..k).step_by(kc_max) {
        let kc = kc_max.min(k - pc);
        // Later depth blocks accumulate onto the first, which applied beta.
        let beta = if pc == 0 { beta } else { T::one() };
        for ib in (0..m).step_by(mb_max) {
            let rows = ib..m.min(ib + mb_max);
            dot_block(isa, (alpha, beta), (a, rows), (bt, 0), pc..pc + kc, c);
        }
    }
}

/// A matrix that dot-product tiles write into, element by element.
trait DotOut<T> {
    fn elem(&mut self, row: usize, col: usize) -> &mut T;
}

impl<T> DotOut<T> for ArrayViewMut2<'_, T> {
    fn elem(&mut self, row: usize, col: usize) -> &mut T {
        &mut self[[row, col]]
    }
}

impl<T> DotOut<T> for RowsMut<'_, T> {
    fn elem(&mut self, row: usize, col: usize) -> &mut T {
        self.get_mut(row, col)
    }
}

/// `c[i, col0 + j] ← alpha·Σ_{p ∈ depth} a[i, p]·bt[j, p] + beta·c[i, col0 + j]` for the rows
/// `i` of `a` in `rows` and every row `j` of `bt`: `DN` rows of `bᵀ` against every `DM`-row
/// tile of `rows`.
fn dot_block<T: Scalar>(
    isa: Isa,
    (alpha, beta): (T, T),
    (a, rows): (&RowsRef<'_, T>, std::ops::Range<usize>),
    (bt, col0): (&RowsRef<'_, T>, usize),
    depth: std::ops::Range<usize>,
    c: &mut impl DotOut<T>,
) {
    let (dm_max, dn_max) = T::dot_tile(isa).expect("dot kernel exists for this isa");
    let read_c = !beta.is_zero();
    let span = (depth.start, depth.len());
    for j0 in (0..bt.rows()).step_by(dn_max) {
        let dn = dn_max.min(bt.rows() - j0);
        for i0 in rows.clone().step_by(dm_max) {
            let dm = dm_max.min(rows.end - i0);
            let sums = dot(isa, a, (i0, dm), bt, (j0, dn), span);
            for (i, row) in sums.iter().enumerate().take(dm) {
                for (j, &sum) in row.iter().enumerate().take(dn) {
                    let c_ij = c.elem(i0 + i, col0 + j0 + j);
                    *c_ij = if read_c {
                        alpha * sum + beta * *c_ij
                    } else {
                        alpha * sum
                    };
                }
            }
        }
    }
}

/// Where in its source the kernel finds the panels of a block of `b`.
#[derive(Clone, Copy)]
enum BPlace {
    /// In place: column `jr` of the block's rows.
    InPlace,
    /// Packed for this block: panel `q` at row `q·kc`.
    Block,
    /// Packed beforehand for the whole matrix: panel `q` of the block at row
    /// `first + q·depth`, from `Whole(first, depth)`.
    Whole(usize, usize),
}

/// Where the kernel reads a block of `b`: in place if `in_place` allows and its rows are
/// contiguous (`false`), or packed into `buf` in panels of `nr` columns (`true`), by
/// transposes in registers when `b` is column-major.
fn b_block<'a, T: Scalar>(
    isa: Isa,
    block: ArrayView2<'a, T>,
    in_place: bool,
    nr: usize,
    buf: &'a mut Vec<T>,
) -> (RowsRef<'a, T>, bool) {
    if let Some(rows) = RowsRef::from_view(block).filter(|_| in_place) {
        return (rows, false);
    }
    let (kc, nc) = block.dim();
    let panels = nc.div_ceil(nr);
    let buf = aligned(buf, panels * kc * nr);
    if !transpose_panels(isa, block, nr, buf) {
        pack_b(block, nr, buf);
    }
    (RowsRef::from_slice(buf, panels * kc, nr, nr), true)
}

/// The blocked packed-panel loop (GotoBLAS/BLIS structure): `ic` over row blocks of `a`
/// (`MC`), `pc` over depth blocks (`kc`) with that block of `a` packed once into micro-panels
/// of `MR` rows (or, for row-major `a`, read in place: the kernel's `MR` broadcasts per step
/// then come from `MR` rows, each walked along its length), `jc` over column blocks of `b`
/// (packed, by transposes if `b` is column-major, unless read in place), then `ir` over the
/// micro-panels and `jr` over `NR`-column panels of `b`, one register-tile kernel call per
/// (`ir`, `jr`).
///
/// Columns from `dot_from` on are computed by dot products instead, right after each
/// micro-panel of `a` has been through the panel kernel (so it is still in L1), when `a` is
/// row-major and `b` column-major; otherwise `dot_from` is ignored.
fn packed<T: Scalar>(
    isa: Isa,
    alpha: T,
    a: ArrayView2<'_, T>,
    b: BSource<'_, T>,
    beta: T,
    c: &mut RowsMut<'_, T>,
    (a_buf, b_buf): (&mut Vec<T>, &mut Vec<T>),
) {
    let (m, k) = a.dim();
    let a_rows = RowsRef::from_view(a);
    let dot_tail = match b {
        BSource::View(b, dot_from) => {
            let tail_rows = b
                .slice_move(s![.., dot_from.min(b.ncols())..])
                .reversed_axes();
            RowsRef::from_view(tail_rows)
                .filter(|bt| bt.rows() > 0 && a_rows.is_some() && T::dot_tile(isa).is_some())
        }
        BSource::Prepacked(_) => None,
    };
    let n = match b {
        BSource::View(_, dot_from) if dot_tail.is_some() => dot_from,
        BSource::View(b, _) => b.ncols(),
        BSource::Prepacked(_) => c.cols(),
    };
    let (mr_max, nr_max) = T::micro_tile(isa);
    let kc_max = KC_BYTES / std::mem::size_of::<T>();
    let nc_max = (B_BLOCK_BYTES / (kc_max * std::mem::size_of::<T>()) / nr_max).max(1) * nr_max;
    let mc_max = (A_BLOCK_BYTES / (kc_max * std::mem::size_of::<T>())).next_multiple_of(mr_max);
    let direct_b = m <= DIRECT_B_MAX_ROWS;
    // Rows of `a` are read in place when they are contiguous; then nothing of `a` is packed
    // and one row block spans all of `a`, so `b` is packed once per depth block.
    let mc_max = if a_rows.is_some() { m } else { mc_max };
    for ic in (0..m).step_by(mc_max) {
        let mc = mc_max.min(m - ic);
        for pc in (0..k).step_by(kc_max) {
            let kc = kc_max.min(k - pc);
            // Later depth blocks accumulate onto the first, which applied beta.
            let beta = if pc == 0 { beta } else { T::one() };
            // Micro-panel `ir` (rows ic + ir ..) sits at `ir·kc`, `mr·kc` elements long.
            let a_panels = aligned(a_buf, if a_rows.is_some() { 0 } else { mc * kc });
            if a_rows.is_none() {
                for ir in (0..mc).step_by(mr_max) {
                    let mr = mr_max.min(mc - ir);
                    let rows = ic + ir..ic + ir + mr;
                    pack_a(
                        a.slice(s![rows, pc..pc + kc]),
                        &mut a_panels[ir * kc..(ir + mr) * kc],
                    );
                }
            }
            let a_panels = &*a_panels;
            for jc in (0..n).step_by(nc_max) {
                let nc = nc_max.min(n - jc);
                let (b_src, b_place) = match b {
                    BSource::View(b, _) => {
                        let block = b.slice_move(s![pc..pc + kc, jc..jc + nc]).reborrow();
                        let (src, is_packed) = b_block(isa, block, direct_b, nr_max, b_buf);
                        (
                            src,
                            if is_packed {
                                BPlace::Block
                            } else {
                                BPlace::InPlace
                            },
                        )
                    }
                    // Panel `q` of this block is panel `(col0 + jc)/NR + q` of the whole.
                    BSource::Prepacked(p) => {
                        let rows = p.panels.len() / p.nr;
                        let panels = RowsRef::from_slice(p.panels, rows, p.nr, p.nr);
                        let first = (p.col0 + jc) / nr_max;
                        (panels, BPlace::Whole(first * p.depth + p.k0 + pc, p.depth))
                    }
                };
                for ir in (0..mc).step_by(mr_max) {
                    let mr = mr_max.min(mc - ir);
                    let a_tile = match &a_rows {
                        Some(rows) => ATile::Rows(rows, (ic + ir, pc)),
                        None => ATile::Packed(&a_panels[ir * kc..(ir + mr) * kc]),
                    };
                    for (q, jr) in (0..nc).step_by(nr_max).enumerate() {
                        let nr = nr_max.min(nc - jr);
                        let b_at = match b_place {
                            BPlace::InPlace => (0, jr),
                            BPlace::Block => (q * kc, 0),
                            BPlace::Whole(row, depth) => (row + q * depth, 0),
                        };
                        let c_at = (ic + ir, jc + jr);
                        micro(
                            isa,
                            (mr, nr, kc),
                            a_tile,
                            &b_src,
                            b_at,
                            c,
                            c_at,
                            alpha,
                            beta,
                        );
                    }
                    if let (Some(a_rows), Some(bt), true) = (&a_rows, &dot_tail, jc + nc == n) {
                        let rows = ic + ir..ic + ir + mr;
                        dot_block(isa, (alpha, beta), (a_rows, rows), (bt, n), pc..pc + kc, c);
                    }
                }
            }
        }
    }
}
