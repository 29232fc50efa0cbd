//! x86-64 micro-kernels (AVX-512F and AVX2+FMA) for `f32` and `f64`.
//!
//! Each kernel is one macro body instantiated with a small table of vector operations
//! (`ops_*` modules), so the four type × instruction-set variants cannot drift apart.
//! Callers (the `Kernels` impls in the parent module) uphold the documented pointer contracts;
//! every function here is `unsafe` because it dereferences raw pointers and needs its CPU
//! feature.

use super::{DOT_COLS, DOT_ROWS};

/// Generates a table of vector operations with a common signature.
macro_rules! ops {
    (
        $name:ident, $feat:literal, $t:ty, $v:ty, $mask:ty, lanes = $lanes:literal,
        zero = $zero:expr, splat = $splat:path, load = $load:path, store = $store:path,
        fma = $fma:path, mul = $mul:path,
        mask = |$tail:ident| $make_mask:expr,
        load_m = |$lp:ident, $lm:ident| $load_m:expr,
        store_m = |$sp:ident, $sm:ident, $sv:ident| $store_m:expr,
        hsum = |$hv:ident| $hsum:expr $(,)?
    ) => {
        pub(super) mod $name {
            use std::arch::x86_64::*;

            pub(crate) type V = $v;
            pub(crate) type Mask = $mask;
            pub(crate) const LANES: usize = $lanes;

            #[inline]
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn zero() -> V {
                $zero
            }
            #[inline]
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn splat(x: $t) -> V {
                $splat(x)
            }
            #[inline]
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn load(p: *const $t) -> V {
                $load(p)
            }
            #[inline]
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn store(p: *mut $t, v: V) {
                $store(p, v)
            }
            /// `a · b + c`, one rounding.
            #[inline]
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn fma(a: V, b: V, c: V) -> V {
                $fma(a, b, c)
            }
            #[inline]
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn mul(a: V, b: V) -> V {
                $mul(a, b)
            }
            /// Mask selecting the first `tail` lanes (`1 ≤ tail ≤ LANES`).
            #[inline]
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn mask($tail: usize) -> Mask {
                $make_mask
            }
            /// Loads the masked lanes, zeroes the others; masked-off lanes are not accessed.
            #[inline]
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn load_m($lp: *const $t, $lm: Mask) -> V {
                $load_m
            }
            /// Stores the masked lanes only; masked-off lanes are not accessed.
            #[inline]
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn store_m($sp: *mut $t, $sm: Mask, $sv: V) {
                $store_m
            }
            #[inline]
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn hsum($hv: V) -> $t {
                $hsum
            }
        }
    };
}

ops!(
    ops_f32_avx512,
    "avx512f",
    f32,
    __m512,
    __mmask16,
    lanes = 16,
    zero = _mm512_setzero_ps(),
    splat = _mm512_set1_ps,
    load = _mm512_loadu_ps,
    store = _mm512_storeu_ps,
    fma = _mm512_fmadd_ps,
    mul = _mm512_mul_ps,
    mask = |tail| if tail >= 16 {
        u16::MAX
    } else {
        (1_u16 << tail) - 1
    },
    load_m = |p, m| _mm512_maskz_loadu_ps(m, p),
    store_m = |p, m, v| _mm512_mask_storeu_ps(p, m, v),
    // Only 512-bit (EVEX) shuffles: VEX-encoded 128/256-bit reductions can only name the
    // first 16 registers, which makes the compiler keep (and spill) accumulators there.
    hsum = |v| {
        let t = _mm512_add_ps(v, _mm512_shuffle_f32x4::<0b01_00_11_10>(v, v));
        let t = _mm512_add_ps(t, _mm512_shuffle_f32x4::<0b10_11_00_01>(t, t));
        let t = _mm512_add_ps(t, _mm512_permute_ps::<0b01_00_11_10>(t));
        _mm512_cvtss_f32(_mm512_add_ps(t, _mm512_permute_ps::<0b10_11_00_01>(t)))
    },
);

ops!(
    ops_f64_avx512,
    "avx512f",
    f64,
    __m512d,
    __mmask8,
    lanes = 8,
    zero = _mm512_setzero_pd(),
    splat = _mm512_set1_pd,
    load = _mm512_loadu_pd,
    store = _mm512_storeu_pd,
    fma = _mm512_fmadd_pd,
    mul = _mm512_mul_pd,
    mask = |tail| if tail >= 8 {
        u8::MAX
    } else {
        (1_u8 << tail) - 1
    },
    load_m = |p, m| _mm512_maskz_loadu_pd(m, p),
    store_m = |p, m, v| _mm512_mask_storeu_pd(p, m, v),
    hsum = |v| {
        let t = _mm512_add_pd(v, _mm512_shuffle_f64x2::<0b01_00_11_10>(v, v));
        let t = _mm512_add_pd(t, _mm512_shuffle_f64x2::<0b10_11_00_01>(t, t));
        _mm512_cvtsd_f64(_mm512_add_pd(t, _mm512_permute_pd::<0b0101_0101>(t)))
    },
);

ops!(
    ops_f32_avx2,
    "avx2,fma",
    f32,
    __m256,
    __m256i,
    lanes = 8,
    zero = _mm256_setzero_ps(),
    splat = _mm256_set1_ps,
    load = _mm256_loadu_ps,
    store = _mm256_storeu_ps,
    fma = _mm256_fmadd_ps,
    mul = _mm256_mul_ps,
    mask = |tail| _mm256_cmpgt_epi32(
        _mm256_set1_epi32(tail as i32),
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
    ),
    load_m = |p, m| _mm256_maskload_ps(p, m),
    store_m = |p, m, v| _mm256_maskstore_ps(p, m, v),
    hsum = |v| {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
    },
);

ops!(
    ops_f64_avx2,
    "avx2,fma",
    f64,
    __m256d,
    __m256i,
    lanes = 4,
    zero = _mm256_setzero_pd(),
    splat = _mm256_set1_pd,
    load = _mm256_loadu_pd,
    store = _mm256_storeu_pd,
    fma = _mm256_fmadd_pd,
    mul = _mm256_mul_pd,
    mask = |tail| _mm256_cmpgt_epi64(
        _mm256_set1_epi64x(tail as i64),
        _mm256_setr_epi64x(0, 1, 2, 3)
    ),
    load_m = |p, m| _mm256_maskload_pd(p, m),
    store_m = |p, m, v| _mm256_maskstore_pd(p, m, v),
    hsum = |v| {
        let s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd::<1>(v));
        _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)))
    },
);

/// Rows of `b` ahead of the current one that the micro-kernel prefetches when it reads `b` in
/// place (measured on `hᵀ·Δ`, 100 × 8000 × 640: 8 rows 186, 16 rows 190, 32 and 64 rows
/// 200–205 GFLOP/s, none 182). Prefetching past the end of the block cost 15–19 % on the
/// same product and on its 20-row version at batch 1, so the last rows go without.
const PREFETCH_ROWS: isize = 32;
/// Row strides up to this are packed panels (`NR` elements apart), read sequentially.
const PACKED_B_MAX_STRIDE: isize = 64;
/// Depth steps per iteration of the micro-kernel's inner loop.
const UNROLL: usize = 4;

/// Generates the packed-panel micro-kernel and the dot-product kernel for one ops table.
macro_rules! kernels {
    ($micro:ident, $dot:ident, $feat:literal, $t:ty, $ops:ident) => {
        /// `MR × (NV·LANES)` register tile: `c ← alpha · a · b + beta · c`, with `a` read as
        /// a packed micro-panel (`a[p·MR + i]`) or, if `ROWS_A`, in place (`a[i·a_rs + p]`).
        ///
        /// # Safety
        /// See `Kernels::micro_raw`; additionally `1 ≤ tail ≤ LANES` is the number of valid
        /// columns in the last vector and equals `LANES` unless `MASKED`.
        #[target_feature(enable = $feat)]
        #[allow(clippy::too_many_arguments)]
        pub(super) unsafe fn $micro<
            const MR: usize,
            const NV: usize,
            const MASKED: bool,
            const ROWS_A: bool,
        >(
            kc: usize,
            a: *const $t,
            a_rs: isize,
            b: *const $t,
            b_rs: isize,
            tail: usize,
            c: *mut $t,
            c_rs: isize,
            alpha: $t,
            beta: $t,
        ) {
            use $ops as o;
            let mask = o::mask(tail);
            // The tile of c is read only after the loop; ask for its lines now, so they arrive
            // while the loop runs (c is often too large for L2: a gradient of 100 × 8000).
            if beta != 0.0 {
                for i in 0..MR {
                    let row = c.wrapping_offset(i as isize * c_rs);
                    for v in 0..NV {
                        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                            row.wrapping_add(v * o::LANES).cast(),
                        );
                    }
                }
            }
            let mut acc = [[o::zero(); NV]; MR];
            let mut a_p = a;
            let mut b_p = b;
            // Rows of b read in place (strided, one or two lines each) are prefetched a few
            // hundred cycles ahead, within this block only; packed panels are sequential and
            // need no help.
            let (pf_dist, pf_steps) = if b_rs > PACKED_B_MAX_STRIDE {
                (
                    PREFETCH_ROWS * b_rs,
                    kc.saturating_sub(PREFETCH_ROWS as usize),
                )
            } else {
                (0, 0)
            };
            // One row of the b tile, then an outer product with one column of a: MR·NV
            // independent FMAs per step keep both FMA pipes busy.
            let mut step = |a_p: *const $t, b_p: *const $t| {
                let mut row = [o::zero(); NV];
                for (v, r) in row.iter_mut().enumerate() {
                    let p = b_p.add(v * o::LANES);
                    *r = if MASKED && v + 1 == NV {
                        o::load_m(p, mask)
                    } else {
                        o::load(p)
                    };
                }
                for (i, acc_i) in acc.iter_mut().enumerate() {
                    let a_i = if ROWS_A {
                        *a_p.offset(i as isize * a_rs)
                    } else {
                        *a_p.add(i)
                    };
                    let a_i = o::splat(a_i);
                    for (acc_iv, &r) in acc_i.iter_mut().zip(&row) {
                        *acc_iv = o::fma(a_i, r, *acc_iv);
                    }
                }
            };
            let a_step = if ROWS_A { 1 } else { MR };
            for _ in 0..pf_steps {
                for v in 0..NV {
                    std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                        b_p.wrapping_offset(pf_dist)
                            .wrapping_add(v * o::LANES)
                            .cast(),
                    );
                }
                step(a_p, b_p);
                a_p = a_p.wrapping_add(a_step);
                b_p = b_p.wrapping_offset(b_rs);
            }
            // The other steps UNROLL per iteration: the loop's own counter, pointer and
            // branch instructions share the ports with the FMAs (one step per iteration ran
            // at 72 % of the FMA peak on an L1-resident 10 × 32 tile, four at 84 %; eight
            // were slower than two).
            let rest = kc - pf_steps;
            for _ in 0..rest / UNROLL {
                for u in 0..UNROLL {
                    step(
                        a_p.wrapping_add(u * a_step),
                        b_p.wrapping_offset(u as isize * b_rs),
                    );
                }
                a_p = a_p.wrapping_add(UNROLL * a_step);
                b_p = b_p.wrapping_offset(UNROLL as isize * b_rs);
            }
            for _ in 0..rest % UNROLL {
                step(a_p, b_p);
                a_p = a_p.wrapping_add(a_step);
                b_p = b_p.wrapping_offset(b_rs);
            }
            let alpha_v = o::splat(alpha);
            let beta_v = o::splat(beta);
            // beta = 0 must not read c: it may hold NaN or uninitialized-looking garbage.
            let read_c = beta != 0.0;
            let mut c_p = c;
            for acc_i in &acc {
                for (v, &x) in acc_i.iter().enumerate() {
                    let p = c_p.add(v * o::LANES);
                    let scaled = o::mul(x, alpha_v);
                    if MASKED && v + 1 == NV {
                        let out = if read_c {
                            o::fma(o::load_m(p, mask), beta_v, scaled)
                        } else {
                            scaled
                        };
                        o::store_m(p, mask, out);
                    } else {
                        let out = if read_c {
                            o::fma(o::load(p), beta_v, scaled)
                        } else {
                            scaled
                        };
                        o::store(p, out);
                    }
                }
                c_p = c_p.wrapping_offset(c_rs);
            }
        }

        /// `DM × DN` dot products of length `k`, vectorized along `k`.
        ///
        /// # Safety
        /// See `Kernels::dot_raw` (with `dm = DM`, `dn = DN`).
        #[target_feature(enable = $feat)]
        pub(super) unsafe fn $dot<const DM: usize, const DN: usize>(
            k: usize,
            a: &[*const $t; DOT_ROWS],
            b: &[*const $t; DOT_COLS],
        ) -> [[$t; DOT_COLS]; DOT_ROWS] {
            use $ops as o;
            // The ragged tail goes first, as the accumulators' initial value, so the main loop
            // is the last thing they live through before the sums (keeps them in registers).
            let full = k - k % o::LANES;
            let mut acc = [[o::zero(); DN]; DM];
            if full < k {
                // Masked loads: the zeroed lanes contribute nothing.
                let mask = o::mask(k - full);
                let mut av = [o::zero(); DM];
                for (i, x) in av.iter_mut().enumerate() {
                    *x = o::load_m(a[i].add(full), mask);
                }
                for j in 0..DN {
                    let b_j = o::load_m(b[j].add(full), mask);
                    for (acc_i, &a_i) in acc.iter_mut().zip(&av) {
                        acc_i[j] = o::mul(a_i, b_j);
                    }
                }
            }
            let mut p = 0;
            while p < full {
                let mut av = [o::zero(); DM];
                for (i, x) in av.iter_mut().enumerate() {
                    *x = o::load(a[i].add(p));
                }
                // Each row of bᵀ is loaded once and used DM times right away, so only the DM
                // vectors of a and the accumulators stay live.
                for j in 0..DN {
                    let b_j = o::load(b[j].add(p));
                    for (acc_i, &a_i) in acc.iter_mut().zip(&av) {
                        acc_i[j] = o::fma(a_i, b_j, acc_i[j]);
                    }
                }
                p += o::LANES;
            }
            let mut out = [[0.0; DOT_COLS]; DOT_ROWS];
            for (out_i, acc_i) in out.iter_mut().zip(&acc) {
                for (o_ij, &acc_ij) in out_i.iter_mut().zip(acc_i) {
                    *o_ij = o::hsum(acc_ij);
                }
            }
            out
        }
    };
}

kernels!(
    micro_f32_avx512,
    dot_f32_avx512,
    "avx512f",
    f32,
    ops_f32_avx512
);
kernels!(
    micro_f64_avx512,
    dot_f64_avx512,
    "avx512f",
    f64,
    ops_f64_avx512
);
kernels!(micro_f32_avx2, dot_f32_avx2, "avx2,fma", f32, ops_f32_avx2);
kernels!(micro_f64_avx2, dot_f64_avx2, "avx2,fma", f64, ops_f64_avx2);

/// Generates a kernel that packs up to `nr` contiguous columns of `b` (a transposed view)
/// into one `nr`-wide panel by `LANES × LANES` transposes in registers: each load reads a run
/// of one column, each store writes a run of one panel row.
macro_rules! transpose_panel {
    ($name:ident, $t:ty, $v:ty, $mask:ty, lanes = $lanes:literal,
     zero = $zero:expr, load_m = $load_m:path, store_m = $store_m:path,
     transpose = $transpose:path) => {
        /// `dst[p·nr + j] = src[j·ld + p]` for `p < kc`, `j < cols`; nothing else is written.
        ///
        /// # Safety
        /// `avx512f` is supported; `src + j·ld + p` is readable and `dst + p·nr + j` writable
        /// for the ranges above.
        #[target_feature(enable = "avx512f")]
        pub(super) unsafe fn $name(
            src: *const $t,
            ld: usize,
            kc: usize,
            cols: usize,
            dst: *mut $t,
            nr: usize,
        ) {
            use std::arch::x86_64::*;
            let lane_mask = |n: usize| -> $mask {
                if n >= $lanes {
                    <$mask>::MAX
                } else {
                    (1 << n) - 1
                }
            };
            for j0 in (0..cols).step_by($lanes) {
                let col_mask = lane_mask(cols - j0);
                let used = (cols - j0).min($lanes);
                for p0 in (0..kc).step_by($lanes) {
                    let depth = (kc - p0).min($lanes);
                    let depth_mask = lane_mask(depth);
                    let mut tile: [$v; $lanes] = [$zero; $lanes];
                    for (j, row) in tile.iter_mut().enumerate().take(used) {
                        *row = $load_m(depth_mask, src.add((j0 + j) * ld + p0));
                    }
                    let tile = $transpose(tile);
                    for (p, &row) in tile.iter().enumerate().take(depth) {
                        $store_m(dst.add((p0 + p) * nr + j0), col_mask, row);
                    }
                }
            }
        }
    };
}

/// Transposes a 16 × 16 tile of `f32` held as 16 rows: pairs within 128-bit lanes, then
/// quads, then the lanes themselves.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn transpose_16x16(r: [std::arch::x86_64::__m512; 16]) -> [std::arch::x86_64::__m512; 16] {
    use std::arch::x86_64::*;
    // t[2k + h]: rows 2k, 2k+1 interleaved, elements 2h, 2h+1 of each lane.
    let mut t = [_mm512_setzero_ps(); 16];
    for k in 0..8 {
        t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
        t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
    }
    // u[4g + e]: rows 4g..4g+3 at element e of each lane.
    let mut u = [_mm512_setzero_ps(); 16];
    for g in 0..4 {
        let (lo, hi) = (t[4 * g], t[4 * g + 2]);
        let (lo2, hi2) = (t[4 * g + 1], t[4 * g + 3]);
        u[4 * g] = _mm512_shuffle_ps::<0x44>(lo, hi);
        u[4 * g + 1] = _mm512_shuffle_ps::<0xEE>(lo, hi);
        u[4 * g + 2] = _mm512_shuffle_ps::<0x44>(lo2, hi2);
        u[4 * g + 3] = _mm512_shuffle_ps::<0xEE>(lo2, hi2);
    }
    gather_lanes(u)
}

/// The last two stages of a transpose: `u[g·E + e]` holds, in 128-bit lane `l`, element `e` of
/// that lane for row group `g` (four groups); row `l·E + e` of the result is lane `l` of
/// `u[e]`, `u[E + e]`, `u[2E + e]`, `u[3E + e]`, side by side.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn gather_lanes<const N: usize>(
    u: [std::arch::x86_64::__m512; N],
) -> [std::arch::x86_64::__m512; N] {
    use std::arch::x86_64::*;
    let e_count = N / 4;
    let mut out = [_mm512_setzero_ps(); N];
    for e in 0..e_count {
        let (a, b) = (u[e], u[e_count + e]);
        let (c, d) = (u[2 * e_count + e], u[3 * e_count + e]);
        let ab_even = _mm512_shuffle_f32x4::<0x88>(a, b);
        let ab_odd = _mm512_shuffle_f32x4::<0xDD>(a, b);
        let cd_even = _mm512_shuffle_f32x4::<0x88>(c, d);
        let cd_odd = _mm512_shuffle_f32x4::<0xDD>(c, d);
        out[e] = _mm512_shuffle_f32x4::<0x88>(ab_even, cd_even);
        out[2 * e_count + e] = _mm512_shuffle_f32x4::<0xDD>(ab_even, cd_even);
        out[e_count + e] = _mm512_shuffle_f32x4::<0x88>(ab_odd, cd_odd);
        out[3 * e_count + e] = _mm512_shuffle_f32x4::<0xDD>(ab_odd, cd_odd);
    }
    out
}

/// Transposes an 8 × 8 tile of `f64` held as 8 rows.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn transpose_8x8(r: [std::arch::x86_64::__m512d; 8]) -> [std::arch::x86_64::__m512d; 8] {
    use std::arch::x86_64::*;
    // t[2k + e]: rows 2k, 2k+1 at element e of each 128-bit lane; the lane moves are the same
    // as for f32, on the same bits.
    let mut t = [_mm512_setzero_ps(); 8];
    for k in 0..4 {
        t[2 * k] = _mm512_castpd_ps(_mm512_unpacklo_pd(r[2 * k], r[2 * k + 1]));
        t[2 * k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(r[2 * k], r[2 * k + 1]));
    }
    gather_lanes(t).map(|x| _mm512_castps_pd(x))
}

transpose_panel!(
    transpose_panel_f32_avx512,
    f32,
    __m512,
    __mmask16,
    lanes = 16,
    zero = _mm512_setzero_ps(),
    load_m = _mm512_maskz_loadu_ps,
    store_m = _mm512_mask_storeu_ps,
    transpose = transpose_16x16
);
transpose_panel!(
    transpose_panel_f64_avx512,
    f64,
    __m512d,
    __mmask8,
    lanes = 8,
    zero = _mm512_setzero_pd(),
    load_m = _mm512_maskz_loadu_pd,
    store_m = _mm512_mask_storeu_pd,
    transpose = transpose_8x8
);
