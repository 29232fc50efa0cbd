//! The only `unsafe` code for arithmetic in the crate: micro-kernels and the raw row views they
//! read and write through, and the entry points that run safe loops compiled for wider
//! vectors ([`run_wide`]).
//!
//! Why `unsafe` is needed here (and measured to matter): `std::arch` intrinsics are `unsafe`
//! functions that require a CPU feature and take raw pointers, and the kernels read `b` and
//! write `c` in place through the caller's strided views, which only raw pointers can address
//! without a copy (a copy of `b` costs as much as the product itself when `a` has one row).
//!
//! The structure keeps the unsafe surface small: [`RowsRef`] and [`RowsMut`] can only be built
//! from an ndarray view or a slice, which proves which elements are addressable; the safe
//! wrappers [`micro`] and [`dot`] check every index a kernel will touch against those bounds;
//! the kernels in `x86` and `portable` then only dereference addresses inside them.
#![allow(unsafe_code)]

use std::marker::PhantomData;

use ndarray::{ArrayView2, ArrayViewMut2};

use crate::Isa;

#[cfg(target_arch = "aarch64")]
pub(crate) mod neon;
mod portable;
mod wide;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use wide::{run_wide, WideLoop};

/// Largest dot-product tile (rows of `a` × rows of `bᵀ`) any instruction set uses.
pub(crate) const DOT_ROWS: usize = 4;
pub(crate) const DOT_COLS: usize = 6;

/// A read-only matrix whose rows are contiguous (unit column stride).
///
/// Invariant: for every `r < rows` and `col < cols`, `ptr + r * row_stride + col` points to an
/// initialized `T` that stays readable and unmodified for `'a`.
#[derive(Clone, Copy)]
pub(crate) struct RowsRef<'a, T> {
    ptr: *const T,
    row_stride: isize,
    rows: usize,
    cols: usize,
    _borrow: PhantomData<&'a [T]>,
}

impl<'a, T> RowsRef<'a, T> {
    /// Wraps a view whose column stride is 1 (or that has at most one column).
    pub(crate) fn from_view(view: ArrayView2<'a, T>) -> Option<Self> {
        let (rows, cols) = view.dim();
        let strides = view.strides();
        if cols > 1 && strides[1] != 1 {
            return None;
        }
        // The view's own invariant gives ours: every in-range index is a valid element.
        Some(Self {
            ptr: view.as_ptr(),
            row_stride: strides[0],
            rows,
            cols,
            _borrow: PhantomData,
        })
    }

    /// Wraps `data` read as `rows` rows of `cols` elements, `row_stride` apart.
    pub(crate) fn from_slice(data: &'a [T], rows: usize, cols: usize, row_stride: usize) -> Self {
        assert!(rows == 0 || cols == 0 || last_index(rows, cols, row_stride) < data.len());
        Self {
            ptr: data.as_ptr(),
            row_stride: isize::try_from(row_stride).expect("slice strides fit in isize"),
            rows,
            cols,
            _borrow: PhantomData,
        }
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    pub(crate) fn cols(&self) -> usize {
        self.cols
    }

    /// Pointer to element `(r, col)`; callers check `r < rows`, `col < cols`.
    fn at(&self, r: usize, col: usize) -> *const T {
        debug_assert!(r < self.rows && col < self.cols);
        // wrapping_* never creates UB by itself; dereferencing is what the invariant covers.
        self.ptr
            .wrapping_offset(r as isize * self.row_stride)
            .wrapping_add(col)
    }
}

/// A mutable matrix whose rows are contiguous (unit column stride).
///
/// Invariant: for every `r < rows` and `col < cols`, `ptr + r * row_stride + col` points to an
/// initialized `T` that only this value may read or write for `'a`.
pub(crate) struct RowsMut<'a, T> {
    ptr: *mut T,
    row_stride: isize,
    rows: usize,
    cols: usize,
    _borrow: PhantomData<&'a mut [T]>,
}

impl<'a, T> RowsMut<'a, T> {
    /// Wraps a mutable view whose column stride is 1 (or that has at most one column).
    pub(crate) fn from_view(view: &'a mut ArrayViewMut2<'_, T>) -> Option<Self> {
        let (rows, cols) = view.dim();
        let row_stride = view.strides()[0];
        if cols > 1 && view.strides()[1] != 1 {
            return None;
        }
        // Holding `&'a mut` of the view gives exclusive access to all its elements for 'a.
        Some(Self {
            ptr: view.as_mut_ptr(),
            row_stride,
            rows,
            cols,
            _borrow: PhantomData,
        })
    }

    /// Wraps `data` as a dense row-major `rows × cols` matrix.
    pub(crate) fn from_slice(data: &'a mut [T], rows: usize, cols: usize) -> Self {
        assert!(rows.checked_mul(cols).is_some_and(|len| len <= data.len()));
        Self {
            ptr: data.as_mut_ptr(),
            row_stride: isize::try_from(cols).expect("slice strides fit in isize"),
            rows,
            cols,
            _borrow: PhantomData,
        }
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    pub(crate) fn cols(&self) -> usize {
        self.cols
    }

    fn at(&mut self, r: usize, col: usize) -> *mut T {
        debug_assert!(r < self.rows && col < self.cols);
        self.ptr
            .wrapping_offset(r as isize * self.row_stride)
            .wrapping_add(col)
    }

    /// Element `(r, col)`. Panics if it is out of range.
    pub(crate) fn get_mut(&mut self, r: usize, col: usize) -> &mut T {
        assert!(r < self.rows && col < self.cols);
        // SAFETY: in range, so by the invariant the element is initialized and only `self`
        // may access it; the returned borrow holds `self` exclusively while it lives.
        unsafe { &mut *self.at(r, col) }
    }
}

fn last_index(rows: usize, cols: usize, row_stride: usize) -> usize {
    (rows - 1)
        .checked_mul(row_stride)
        .and_then(|x| x.checked_add(cols - 1))
        .expect("slice index fits in usize")
}

/// Per-type kernel tables: the sealed half of [`crate::Scalar`].
pub trait Kernels: Copy + Send + Sync + 'static {
    /// Register tile `(MR, NR)` of the packed-panel kernel for `isa`.
    fn micro_tile(isa: Isa) -> (usize, usize);

    /// Register tile `(DM, DN)` of the dot-product kernel for `isa`, `None` if `isa` has none.
    fn dot_tile(isa: Isa) -> Option<(usize, usize)>;

    /// `c[i][j] ← alpha · Σ_p a[i·a_rs + p·a_cs] · b[p·b_rs + j] + beta · c[i][j]` for
    /// `i < mr`, `j < nr`, `p < kc`; `c` is not read when `beta == 0`. `a` is either a packed
    /// micro-panel (`a_rs = 1`, `a_cs = mr`) or rows read in place (`a_cs = 1`).
    ///
    /// # Safety
    /// `isa` is supported by the CPU; `1 ≤ mr ≤ MR`, `1 ≤ nr ≤ NR`, `kc ≥ 1`; `a_rs = 1` and
    /// `a_cs = mr`, or `a_cs = 1`; `a + i·a_rs + p·a_cs` and `b + p·b_rs + j` are readable and
    /// `c + i·c_rs + j` writable (and not aliased) for the ranges above.
    #[allow(clippy::too_many_arguments)]
    unsafe fn micro_raw(
        isa: Isa,
        mr: usize,
        nr: usize,
        kc: usize,
        a: (*const Self, isize, isize),
        b: *const Self,
        b_rs: isize,
        c: *mut Self,
        c_rs: isize,
        alpha: Self,
        beta: Self,
    );

    /// `dst[p·nr + j] = src[j·ld + p]` for `p < kc`, `j < cols` by transposes in registers;
    /// returns `false` (and writes nothing) if `isa` has no such kernel for this type.
    ///
    /// # Safety
    /// `isa` is supported; `1 ≤ cols ≤ nr`; `src + j·ld + p` is readable and `dst + p·nr + j`
    /// writable for the ranges above.
    unsafe fn transpose_panel_raw(
        isa: Isa,
        src: *const Self,
        ld: usize,
        kc_cols: (usize, usize),
        dst: *mut Self,
        nr: usize,
    ) -> bool;

    /// matrixmultiply's product for this type (`sgemm` or `dgemm`), with its NEON kernels.
    ///
    /// # Safety
    /// matrixmultiply's contract: every element `a[i·rsa + p·csa]`, `b[p·rsb + j·csb]` and
    /// `c[i·rsc + j·csc]` for `i < m`, `p < k`, `j < n` is valid, `c`'s elements are distinct
    /// and not aliased by `a` or `b`.
    #[cfg(target_arch = "aarch64")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn neon_gemm(
        mkn: (usize, usize, usize),
        alpha: Self,
        a: (*const Self, isize, isize),
        b: (*const Self, isize, isize),
        beta: Self,
        c: (*mut Self, isize, isize),
    );

    /// `out[i][j] = Σ_p a[i][p] · b[j][p]` for `i < dm`, `j < dn`, `p < k`.
    ///
    /// # Safety
    /// `isa` has a dot tile `(DM, DN)` and is supported; `1 ≤ dm ≤ DM`, `1 ≤ dn ≤ DN`,
    /// `k ≥ 1`; `a[i]..a[i] + k` and `b[j]..b[j] + k` are readable for `i < dm`, `j < dn`.
    unsafe fn dot_raw(
        isa: Isa,
        dm: usize,
        dn: usize,
        k: usize,
        a: &[*const Self; DOT_ROWS],
        b: &[*const Self; DOT_COLS],
    ) -> [[Self; DOT_COLS]; DOT_ROWS];
}

/// Where a register tile reads its `mr × kc` block of `a`.
#[derive(Clone, Copy)]
pub(crate) enum ATile<'p, 'a, T> {
    /// A packed micro-panel: element `(i, p)` at `[p·mr + i]`.
    Packed(&'p [T]),
    /// In place: element `(i, p)` at `(row0 + i, col0 + p)` of a row-major matrix.
    Rows(&'p RowsRef<'a, T>, (usize, usize)),
}

/// One register tile of the packed-panel product:
/// `c[c_row0 + i, c_col0 + j] ← alpha · Σ_p a(i, p) · b[b_row0 + p, b_col0 + j] + beta · c[…]`
/// for `i < mr`, `j < nr`, `p < kc`, with `a(i, p)` read as `a` says. With `beta == 0`, `c`
/// is only written.
///
/// Panics (a bug in the caller, never reachable from the public API) if any index is out of
/// range.
#[allow(clippy::too_many_arguments)]
pub(crate) fn micro<T: Kernels>(
    isa: Isa,
    (mr, nr, kc): (usize, usize, usize),
    a: ATile<'_, '_, T>,
    b: &RowsRef<'_, T>,
    (b_row0, b_col0): (usize, usize),
    c: &mut RowsMut<'_, T>,
    (c_row0, c_col0): (usize, usize),
    alpha: T,
    beta: T,
) {
    let (mr_max, nr_max) = T::micro_tile(isa);
    assert!(isa.is_supported());
    assert!((1..=mr_max).contains(&mr) && (1..=nr_max).contains(&nr) && kc >= 1);
    let a = match a {
        ATile::Packed(panel) => {
            assert!(panel.len() >= kc * mr);
            (panel.as_ptr(), 1, mr as isize)
        }
        ATile::Rows(rows, (row0, col0)) => {
            assert!(row0 + mr <= rows.rows() && col0 + kc <= rows.cols());
            (rows.at(row0, col0), rows.row_stride, 1)
        }
    };
    assert!(b_row0 + kc <= b.rows() && b_col0 + nr <= b.cols());
    assert!(c_row0 + mr <= c.rows() && c_col0 + nr <= c.cols());
    let b_ptr = b.at(b_row0, b_col0);
    let c_ptr = c.at(c_row0, c_col0);
    // SAFETY: the asserts above put every (p, j) with p < kc, j < nr inside `b`'s rows/cols and
    // every (i, j) with i < mr, j < nr inside `c`'s, so by the RowsRef/RowsMut invariants the
    // addresses `b_ptr + p·row_stride + j` are readable and `c_ptr + i·row_stride + j` are
    // writable and exclusively ours; a packed panel holds kc·mr elements, and rows of `a` read
    // in place cover (i, p) for i < mr, p < kc; the ISA is supported.
    unsafe {
        T::micro_raw(
            isa,
            mr,
            nr,
            kc,
            a,
            b_ptr,
            b.row_stride,
            c_ptr,
            c.row_stride,
            alpha,
            beta,
        );
    }
}

/// Dot products of `dm` rows of `a` with `dn` rows of `bt`, over columns `col0..col0 + k`:
/// `out[i][j] = Σ_p a[a_row0 + i, col0 + p] · bt[b_row0 + j, col0 + p]`.
///
/// Panics (a caller bug) if any index is out of range or `isa` has no dot kernel.
pub(crate) fn dot<T: Kernels>(
    isa: Isa,
    a: &RowsRef<'_, T>,
    (a_row0, dm): (usize, usize),
    bt: &RowsRef<'_, T>,
    (b_row0, dn): (usize, usize),
    (col0, k): (usize, usize),
) -> [[T; DOT_COLS]; DOT_ROWS] {
    let (dm_max, dn_max) = T::dot_tile(isa).expect("dot kernel exists for this isa");
    assert!(isa.is_supported());
    assert!((1..=dm_max).contains(&dm) && (1..=dn_max).contains(&dn) && k >= 1);
    assert!(a_row0 + dm <= a.rows() && b_row0 + dn <= bt.rows());
    assert!(col0 + k <= a.cols() && col0 + k <= bt.cols());
    let mut a_ptrs = [a.at(a_row0, col0); DOT_ROWS];
    for (i, p) in a_ptrs.iter_mut().enumerate().take(dm) {
        *p = a.at(a_row0 + i, col0);
    }
    let mut b_ptrs = [bt.at(b_row0, col0); DOT_COLS];
    for (j, p) in b_ptrs.iter_mut().enumerate().take(dn) {
        *p = bt.at(b_row0 + j, col0);
    }
    // SAFETY: by the asserts, rows a_row0..a_row0+dm and b_row0..b_row0+dn and columns
    // col0..col0+k are in range, so each of the first dm (dn) pointers starts k readable
    // elements (RowsRef invariant, unit column stride); the ISA is supported.
    unsafe { T::dot_raw(isa, dm, dn, k, &a_ptrs, &b_ptrs) }
}

/// Packs a `kc × nc` block whose columns are contiguous (a transposed view) into panels of `nr`
/// columns, laid out as [`crate::pack::pack_b`] lays them out, by transposes in registers.
/// Returns `false`, writing nothing, if `isa` has no such kernel or the strides do not suit it.
///
/// Panics (a caller bug) if `dst` is shorter than `⌈nc / nr⌉·kc·nr`.
pub(crate) fn transpose_panels<T: Kernels>(
    isa: Isa,
    src: ArrayView2<'_, T>,
    nr: usize,
    dst: &mut [T],
) -> bool {
    let (kc, nc) = src.dim();
    let [row_stride, ld] = [src.strides()[0], src.strides()[1]];
    let Ok(ld) = usize::try_from(ld) else {
        return false;
    };
    if kc == 0 || nc == 0 || (kc > 1 && row_stride != 1) || !isa.is_supported() {
        return false;
    }
    let panel = kc * nr;
    assert!(dst.len() >= nc.div_ceil(nr) * panel);
    for (out, j0) in dst.chunks_exact_mut(panel).zip((0..nc).step_by(nr)) {
        let cols = nr.min(nc - j0);
        let first = src.slice(ndarray::s![.., j0..]).as_ptr();
        // SAFETY: columns j0..j0 + cols of the view are contiguous (unit row stride) and `ld`
        // apart, so `first + j·ld + p` is an element of the view for p < kc, j < cols; `out`
        // holds kc·nr elements, so `p·nr + j < kc·nr` is inside it; the ISA is supported.
        let done =
            unsafe { T::transpose_panel_raw(isa, first, ld, (kc, cols), out.as_mut_ptr(), nr) };
        if !done {
            return false;
        }
    }
    true
}

/// Expands to a `match` over `(mr, nv, masked, rows_a)` calling
/// `$kern::<MR, NV, MASKED, ROWS_A>$args` for every listed MR and NV in 1..=2, so run-time tile
/// sizes reach const-generic kernels.
#[cfg(target_arch = "x86_64")]
macro_rules! dispatch_micro {
    (
        $module:ident :: $kern:ident,
        ($mr:expr, $nv:expr, $masked:expr, $rows_a:expr),
        [$($m:literal)*],
        $args:tt
    ) => {
        match ($mr, $nv, $masked, $rows_a) {
            $(
                ($m, 1, false, false) => $module::$kern::<$m, 1, false, false> $args,
                ($m, 1, true, false) => $module::$kern::<$m, 1, true, false> $args,
                ($m, 2, false, false) => $module::$kern::<$m, 2, false, false> $args,
                ($m, 2, true, false) => $module::$kern::<$m, 2, true, false> $args,
                ($m, 1, false, true) => $module::$kern::<$m, 1, false, true> $args,
                ($m, 1, true, true) => $module::$kern::<$m, 1, true, true> $args,
                ($m, 2, false, true) => $module::$kern::<$m, 2, false, true> $args,
                ($m, 2, true, true) => $module::$kern::<$m, 2, true, true> $args,
            )*
            _ => unreachable!("tile size checked by the caller"),
        }
    };
}

/// Expands to a `match` over `(dm, dn)` calling `$kern::<DM, DN>$args` for the listed sizes.
#[cfg(target_arch = "x86_64")]
macro_rules! dispatch_dot {
    ($module:ident :: $kern:ident, ($dm:expr, $dn:expr), $is:tt, $js:tt, $args:tt) => {
        dispatch_dot!(@rows $module::$kern, ($dm, $dn), $is, $js, $args)
    };
    (@rows $module:ident :: $kern:ident, ($dm:expr, $dn:expr), [$($i:literal)*], $js:tt, $args:tt) => {
        match $dm {
            $( $i => dispatch_dot!(@cols $module::$kern, $i, $dn, $js, $args), )*
            _ => unreachable!("tile size checked by the caller"),
        }
    };
    (@cols $module:ident :: $kern:ident, $i:literal, $dn:expr, [$($j:literal)*], $args:tt) => {
        match $dn {
            $( $j => $module::$kern::<$i, $j> $args, )*
            _ => unreachable!("tile size checked by the caller"),
        }
    };
}

/// Register tiles, chosen so the accumulators plus one row of `b` fill the vector registers
/// (32 with AVX-512, 16 with AVX2) and `m = 20` (a 20-token window) splits without waste.
const AVX512_MR: usize = 10;
const AVX2_MR: usize = 6;
const PORTABLE_MR: usize = 4;
const PORTABLE_NR: usize = 16;

macro_rules! impl_kernels {
    ($t:ty, $lanes512:literal, $lanes256:literal,
     $micro512:ident, $micro256:ident, $dot512:ident, $dot256:ident, $transpose512:ident,
     $neon:ident) => {
        impl Kernels for $t {
            #[cfg(target_arch = "aarch64")]
            unsafe fn neon_gemm(
                (m, k, n): (usize, usize, usize),
                alpha: Self,
                (a, rsa, csa): (*const Self, isize, isize),
                (b, rsb, csb): (*const Self, isize, isize),
                beta: Self,
                (c, rsc, csc): (*mut Self, isize, isize),
            ) {
                // SAFETY: forwarded contract of `neon_gemm`, which is matrixmultiply's.
                unsafe {
                    matrixmultiply::$neon(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
                }
            }

            fn micro_tile(isa: Isa) -> (usize, usize) {
                match isa {
                    Isa::Avx512 => (AVX512_MR, 2 * $lanes512),
                    Isa::Avx2Fma => (AVX2_MR, 2 * $lanes256),
                    // NEON products never reach the panel loop (`neon::gemm` takes them).
                    Isa::Portable | Isa::Neon => (PORTABLE_MR, PORTABLE_NR),
                }
            }

            fn dot_tile(isa: Isa) -> Option<(usize, usize)> {
                match isa {
                    Isa::Avx512 => Some((4, 6)),
                    Isa::Avx2Fma => Some((3, 3)),
                    Isa::Portable | Isa::Neon => None,
                }
            }

            unsafe fn micro_raw(
                isa: Isa,
                mr: usize,
                nr: usize,
                kc: usize,
                (a, a_rs, a_cs): (*const Self, isize, isize),
                b: *const Self,
                b_rs: isize,
                c: *mut Self,
                c_rs: isize,
                alpha: Self,
                beta: Self,
            ) {
                match isa {
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 => {
                        let nv = nr.div_ceil($lanes512);
                        let tail = nr - (nv - 1) * $lanes512;
                        // SAFETY: forwarded contract of `micro_raw`; `mr ≤ AVX512_MR` and
                        // `nv ≤ 2` select an instantiated kernel, `tail` masks columns ≥ nr.
                        unsafe {
                            dispatch_micro!(
                                x86::$micro512,
                                (mr, nv, tail != $lanes512, a_cs == 1 && mr > 1),
                                [1 2 3 4 5 6 7 8 9 10],
                                (kc, a, a_rs, b, b_rs, tail, c, c_rs, alpha, beta)
                            )
                        }
                    }
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2Fma => {
                        let nv = nr.div_ceil($lanes256);
                        let tail = nr - (nv - 1) * $lanes256;
                        // SAFETY: as above, with `mr ≤ AVX2_MR`.
                        unsafe {
                            dispatch_micro!(
                                x86::$micro256,
                                (mr, nv, tail != $lanes256, a_cs == 1 && mr > 1),
                                [1 2 3 4 5 6],
                                (kc, a, a_rs, b, b_rs, tail, c, c_rs, alpha, beta)
                            )
                        }
                    }
                    #[cfg(not(target_arch = "x86_64"))]
                    Isa::Avx512 | Isa::Avx2Fma => unreachable!("not supported on this target"),
                    // SAFETY: forwarded contract of `micro_raw`.
                    Isa::Portable | Isa::Neon => unsafe {
                        portable::micro::<$t, PORTABLE_MR, PORTABLE_NR>(
                            mr, nr, kc, (a, a_rs, a_cs), b, b_rs, c, c_rs, alpha, beta,
                        )
                    },
                }
            }

            // Only x86-64 has these kernels; elsewhere the arguments go unused.
            #[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
            unsafe fn transpose_panel_raw(
                isa: Isa,
                src: *const Self,
                ld: usize,
                (kc, cols): (usize, usize),
                dst: *mut Self,
                nr: usize,
            ) -> bool {
                match isa {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: forwarded contract of `transpose_panel_raw`.
                    Isa::Avx512 => unsafe {
                        x86::$transpose512(src, ld, kc, cols, dst, nr);
                        true
                    },
                    _ => false,
                }
            }

            // Only x86-64 has these kernels; elsewhere the arguments go unused.
            #[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
            unsafe fn dot_raw(
                isa: Isa,
                dm: usize,
                dn: usize,
                k: usize,
                a: &[*const Self; DOT_ROWS],
                b: &[*const Self; DOT_COLS],
            ) -> [[Self; DOT_COLS]; DOT_ROWS] {
                match isa {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: forwarded contract of `dot_raw`; dm ≤ 4, dn ≤ 6 are instantiated.
                    Isa::Avx512 => unsafe {
                        dispatch_dot!(x86::$dot512, (dm, dn), [1 2 3 4], [1 2 3 4 5 6], (k, a, b))
                    },
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: forwarded contract of `dot_raw`; dm, dn ≤ 3 are instantiated.
                    Isa::Avx2Fma => unsafe {
                        dispatch_dot!(x86::$dot256, (dm, dn), [1 2 3], [1 2 3], (k, a, b))
                    },
                    _ => unreachable!("no dot kernel for {isa}"),
                }
            }
        }
    };
}

impl_kernels!(
    f32,
    16,
    8,
    micro_f32_avx512,
    micro_f32_avx2,
    dot_f32_avx512,
    dot_f32_avx2,
    transpose_panel_f32_avx512,
    sgemm
);
impl_kernels!(
    f64,
    8,
    4,
    micro_f64_avx512,
    micro_f64_avx2,
    dot_f64_avx512,
    dot_f64_avx2,
    transpose_panel_f64_avx512,
    dgemm
);
