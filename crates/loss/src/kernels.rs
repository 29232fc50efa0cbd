//! Row kernels shared by the losses.
//!
//! The softmax kernels work on contiguous slices with `LANES` independent accumulators:
//! floating-point addition is not associative, so the compiler may not vectorise a single
//! running sum or max, but it does vectorise eight independent ones. Rows that are not
//! contiguous (a column-major or sliced array) take a plain iterator path instead.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};
use recur_core::Float;

use crate::fast_exp::exp;
use crate::targets::{RowTarget, Targets};

const LANES: usize = 16;

/// `max(a, b)` that ignores a NaN in `a` (it is the running value); NaN logits still
/// poison the row through the exponentials.
#[inline(always)]
fn greater<F: Float>(a: F, b: F) -> F {
    if b > a {
        b
    } else {
        a
    }
}

/// Largest element of a slice (`−∞` when empty).
#[inline(always)]
fn max_slice<F: Float>(z: &[F]) -> F {
    let mut acc = [F::neg_infinity(); LANES];
    let chunks = z.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a = greater(*a, v);
        }
    }
    let m = acc.iter().fold(F::neg_infinity(), |m, &v| greater(m, v));
    tail.iter().fold(m, |m, &v| greater(m, v))
}

/// `values ← k · values`.
#[inline(always)]
fn scale_slice<F: Float>(values: &mut [F], k: F) {
    values.iter_mut().for_each(|v| *v *= k);
}

/// Multiplies a row by `k` (vectorised when the row is contiguous).
pub(crate) fn scale_row<F: Float>(mut row: ArrayViewMut1<'_, F>, k: F) {
    match row.as_slice_mut() {
        Some(values) => wide::scale(values, k),
        None => row.mapv_inplace(|v| v * k),
    }
}

/// `Σ exp(z − shift)` over a slice.
#[inline(always)]
fn exp_sum_slice<F: Float>(z: &[F], shift: F) -> F {
    let mut acc = [F::zero(); LANES];
    let chunks = z.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a += exp(v - shift);
        }
    }
    let mut sum = tail.iter().fold(F::zero(), |s, &v| s + exp(v - shift));
    for a in acc {
        sum += a;
    }
    sum
}

/// Writes `exp(z − shift)` into `out` and returns its sum; `out.len() == z.len()`.
#[inline(always)]
fn exp_sum_into_slice<F: Float>(z: &[F], shift: F, out: &mut [F]) -> F {
    let mut acc = [F::zero(); LANES];
    let chunks = z.chunks_exact(LANES);
    let z_tail = chunks.remainder();
    let mut out_chunks = out.chunks_exact_mut(LANES);
    for (chunk, out_chunk) in chunks.zip(&mut out_chunks) {
        // Fixed-size views: with the trip count known to be LANES the compiler unrolls the
        // lane loop and turns it into SIMD; over plain slices it stays scalar.
        let (Ok(chunk), Ok(out_chunk)) = (
            <&[F; LANES]>::try_from(chunk),
            <&mut [F; LANES]>::try_from(out_chunk),
        ) else {
            unreachable!("chunks_exact yields chunks of exactly LANES elements")
        };
        let mut e = [F::zero(); LANES];
        for (e, &v) in e.iter_mut().zip(chunk) {
            *e = exp(v - shift);
        }
        *out_chunk = e;
        for (a, &v) in acc.iter_mut().zip(&e) {
            *a += v;
        }
    }
    let mut sum = F::zero();
    for (&v, e) in z_tail.iter().zip(out_chunks.into_remainder()) {
        *e = exp(v - shift);
        sum += *e;
    }
    for a in acc {
        sum += a;
    }
    sum
}

/// For one row of logits: `(max, Σ exp(z − max))`, writing `exp(z − max)` into `exps`
/// when given (same length as `z`). Subtracting the max keeps every exponent ≤ 0, so
/// nothing overflows and the largest term is exactly 1.
pub(crate) fn shifted_exp_sum<F: Float>(
    z: ArrayView1<'_, F>,
    exps: Option<ArrayViewMut1<'_, F>>,
) -> (F, F) {
    let max = match z.as_slice() {
        Some(z) => wide::max(z),
        None => z.iter().fold(F::neg_infinity(), |m, &v| greater(m, v)),
    };
    let sum = match (z.as_slice(), exps) {
        (Some(zs), None) => wide::exp_sum(zs, max),
        (None, None) => z.iter().fold(F::zero(), |s, &v| s + exp(v - max)),
        (zs, Some(mut out)) => match (zs, out.as_slice_mut()) {
            (Some(zs), Some(out)) => wide::exp_sum_into(zs, max, out),
            _ => {
                let mut sum = F::zero();
                for (e, &v) in out.iter_mut().zip(z.iter()) {
                    *e = exp(v - max);
                    sum += *e;
                }
                sum
            }
        },
    };
    (max, sum)
}

/// Drives a loss that is a sum of independent per-element terms: `term(z, y)` returns the
/// element's loss and its derivative with respect to `z`. Shapes are already checked.
pub(crate) fn elementwise<F: Float>(
    logits: ArrayView2<'_, F>,
    targets: &Targets<'_, F>,
    mut row_loss: ArrayViewMut1<'_, F>,
    mut d_logits: Option<ArrayViewMut2<'_, F>>,
    grad_scale: F,
    term: impl Fn(F, F) -> (F, F),
) {
    for (n, z) in logits.rows().into_iter().enumerate() {
        let target = targets.row(n);
        let mut d = d_logits.as_mut().map(|d| d.row_mut(n));
        if let RowTarget::Ignored = target {
            row_loss[n] = F::zero();
            if let Some(d) = &mut d {
                d.fill(F::zero());
            }
            continue;
        }
        let mut total = F::zero();
        for (o, &zo) in z.iter().enumerate() {
            let (value, slope) = term(zo, target.value(o));
            total += value;
            if let Some(d) = &mut d {
                d[o] = grad_scale * slope;
            }
        }
        row_loss[n] = total;
    }
}

/// The exponential loops compiled a second time for AVX-512 and chosen at run time.
///
/// The default build targets baseline x86-64, where these loops run 4 lanes of `f32` wide;
/// the softmax's 8000 exponentials per token were 18 % of a language-model training step.
/// Compiling the same safe loops under `#[target_feature]` lets them run 16 lanes wide on
/// CPUs that have AVX-512, with no other change. Calling such a function is `unsafe` only
/// because the CPU must support the features, which is checked just before.
#[allow(unsafe_code)]
mod wide {
    use recur_core::Float;

    #[cfg(target_arch = "x86_64")]
    fn has_avx512() -> bool {
        std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512dq")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vl")
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")]
    fn exp_sum_avx512<F: Float>(z: &[F], shift: F) -> F {
        super::exp_sum_slice(z, shift)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")]
    fn exp_sum_into_avx512<F: Float>(z: &[F], shift: F, out: &mut [F]) -> F {
        super::exp_sum_into_slice(z, shift, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")]
    fn max_avx512<F: Float>(z: &[F]) -> F {
        super::max_slice(z)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")]
    fn scale_avx512<F: Float>(values: &mut [F], k: F) {
        super::scale_slice(values, k)
    }

    /// Largest element (`−∞` when empty).
    pub(super) fn max<F: Float>(z: &[F]) -> F {
        #[cfg(target_arch = "x86_64")]
        if has_avx512() {
            // SAFETY: the CPU supports every feature `max_avx512` is compiled with.
            return unsafe { max_avx512(z) };
        }
        super::max_slice(z)
    }

    /// `values ← k · values`.
    pub(super) fn scale<F: Float>(values: &mut [F], k: F) {
        #[cfg(target_arch = "x86_64")]
        if has_avx512() {
            // SAFETY: the CPU supports every feature `scale_avx512` is compiled with.
            return unsafe { scale_avx512(values, k) };
        }
        super::scale_slice(values, k)
    }

    /// `Σ exp(z − shift)`.
    pub(super) fn exp_sum<F: Float>(z: &[F], shift: F) -> F {
        #[cfg(target_arch = "x86_64")]
        if has_avx512() {
            // SAFETY: the CPU supports every feature `exp_sum_avx512` is compiled with.
            return unsafe { exp_sum_avx512(z, shift) };
        }
        super::exp_sum_slice(z, shift)
    }

    /// Writes `exp(z − shift)` into `out` and returns its sum.
    pub(super) fn exp_sum_into<F: Float>(z: &[F], shift: F, out: &mut [F]) -> F {
        #[cfg(target_arch = "x86_64")]
        if has_avx512() {
            // SAFETY: the CPU supports every feature `exp_sum_into_avx512` is compiled with.
            return unsafe { exp_sum_into_avx512(z, shift, out) };
        }
        super::exp_sum_into_slice(z, shift, out)
    }
}
