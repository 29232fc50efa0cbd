//! Row kernels shared by the losses.
//!
//! The softmax kernels work on contiguous slices with `LANES` independent accumulators:
//! floating-point addition is not associative, so the compiler may not vectorise a single
//! running sum or max, but it does vectorise independent ones. Rows that are not
//! contiguous (a column-major or sliced array) take a plain iterator path instead.
//!
//! Every exponential is of `z − max ≤ 0`, so it is `fast_exp::exp_nonpositive`: a quarter
//! less work than the general one (18 % off the softmax over 640 × 8000 logits), the same
//! bits except that terms below the smallest normal number are 0, weightless beside the
//! largest term, which is 1.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};
use recur_core::linalg::{run_wide, Isa, WideLoop};
use recur_core::Float;

use crate::fast_exp::exp_nonpositive;
use crate::targets::{RowTarget, Targets};

const LANES: usize = 16;
/// Independent running maxima: a max is a single cheap operation per vector, so with one
/// vector of them the loop waits on the previous max's latency; four vectors' worth keep
/// the unit busy (measured: 1–2 % of the whole batch-32 step).
const MAX_LANES: usize = 4 * LANES;

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
    let mut acc = [F::neg_infinity(); MAX_LANES];
    let chunks = z.chunks_exact(MAX_LANES);
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
        Some(values) => run_wide(Isa::detect(), Scale(values, k)),
        None => row.mapv_inplace(|v| v * k),
    }
}

/// `Σ exp(z − shift)` over a slice, for a `shift` no smaller than any `z`.
#[inline(always)]
fn exp_sum_slice<F: Float>(z: &[F], shift: F) -> F {
    let mut acc = [F::zero(); LANES];
    let chunks = z.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a += exp_nonpositive(v - shift);
        }
    }
    let mut sum = tail
        .iter()
        .fold(F::zero(), |s, &v| s + exp_nonpositive(v - shift));
    for a in acc {
        sum += a;
    }
    sum
}

/// Writes `exp(z − shift)` into `out` and returns its sum; `out.len() == z.len()` and
/// `shift` is no smaller than any `z`.
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
            *e = exp_nonpositive(v - shift);
        }
        *out_chunk = e;
        for (a, &v) in acc.iter_mut().zip(&e) {
            *a += v;
        }
    }
    let mut sum = F::zero();
    for (&v, e) in z_tail.iter().zip(out_chunks.into_remainder()) {
        *e = exp_nonpositive(v - shift);
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
        Some(z) => run_wide(Isa::detect(), Max(z)),
        None => z.iter().fold(F::neg_infinity(), |m, &v| greater(m, v)),
    };
    let sum = match (z.as_slice(), exps) {
        (Some(zs), None) => run_wide(Isa::detect(), ExpSum(zs, max)),
        (None, None) => z
            .iter()
            .fold(F::zero(), |s, &v| s + exp_nonpositive(v - max)),
        (zs, Some(mut out)) => match (zs, out.as_slice_mut()) {
            (Some(zs), Some(out)) => run_wide(Isa::detect(), ExpSumInto(zs, max, out)),
            _ => {
                let mut sum = F::zero();
                for (e, &v) in out.iter_mut().zip(z.iter()) {
                    *e = exp_nonpositive(v - max);
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

/// The slice loops above as units that [`run_wide`] compiles for the widest vectors the CPU
/// has: at the baseline x86-64 width the softmax's 8000 exponentials per token were 18 % of
/// a language-model training step, against 6 % with AVX-512.
struct Max<'a, F>(&'a [F]);
struct Scale<'a, F>(&'a mut [F], F);
struct ExpSum<'a, F>(&'a [F], F);
struct ExpSumInto<'a, F>(&'a [F], F, &'a mut [F]);

impl<F: Float> WideLoop for Max<'_, F> {
    type Output = F;
    #[inline(always)]
    fn run(self) -> F {
        max_slice(self.0)
    }
}

impl<F: Float> WideLoop for Scale<'_, F> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        scale_slice(self.0, self.1);
    }
}

impl<F: Float> WideLoop for ExpSum<'_, F> {
    type Output = F;
    #[inline(always)]
    fn run(self) -> F {
        exp_sum_slice(self.0, self.1)
    }
}

impl<F: Float> WideLoop for ExpSumInto<'_, F> {
    type Output = F;
    #[inline(always)]
    fn run(self) -> F {
        exp_sum_into_slice(self.0, self.1, self.2)
    }
}
