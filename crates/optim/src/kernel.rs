//! Shared pieces of the update rules: input validation and element-wise loops that run
//! over contiguous slices when the layouts allow it (so they vectorise), with an ndarray
//! `Zip` fallback for strided views.

use ndarray::{ArrayViewD, ArrayViewMutD, Zip};
use recur_core::params::{check_same_layout, flat, flat_mut};
use recur_core::{Error, Float, ParamSet, Result};

/// Validates everything a step reads before anything is written, so a failing step leaves
/// parameters and buffers untouched: the layouts of `params` and `grads`, the range of
/// sparse rows, and the finiteness of the gradient entries the update reads (only the
/// listed rows when `sparse` is true and the slot lists rows).
pub(crate) fn check_inputs<F: Float>(
    params: &dyn ParamSet<F>,
    grads: &dyn ParamSet<F>,
    steps: u64,
    sparse: bool,
) -> Result<()> {
    check_same_layout(params, grads)?;
    let non_finite = || Error::NonFinite {
        what: "gradient",
        update: steps + 1,
    };
    for i in 0..grads.slot_count() {
        let g = grads.slot(i);
        let Some(rows) = g.rows else {
            if !all_finite(&g.value) {
                return Err(non_finite());
            }
            continue;
        };
        check_rows(i, g.name, g.value.shape(), rows)?;
        let finite = if sparse {
            rows.iter()
                .all(|&r| all_finite(&g.value.index_axis(ndarray::Axis(0), r)))
        } else {
            all_finite(&g.value)
        };
        if !finite {
            return Err(non_finite());
        }
    }
    Ok(())
}

/// The cheap part of [`check_inputs`] for one slot, for updates whose caller has compared
/// the layouts already: equal shapes, and sparse rows within range.
pub(crate) fn check_slot(
    slot: usize,
    name: &str,
    param_shape: &[usize],
    grad_shape: &[usize],
    rows: Option<&[usize]>,
) -> Result<()> {
    if param_shape != grad_shape {
        return Err(Error::LayoutMismatch {
            slot,
            name: name.to_string(),
            reason: format!("parameter shape {param_shape:?} versus gradient shape {grad_shape:?}"),
        });
    }
    rows.map_or(Ok(()), |rows| check_rows(slot, name, grad_shape, rows))
}

/// [`Error::LayoutMismatch`] unless every sparse row lies within the slot's first axis.
fn check_rows(slot: usize, name: &str, shape: &[usize], rows: &[usize]) -> Result<()> {
    let row_count = shape.first().copied().unwrap_or(0);
    match rows.iter().find(|&&r| r >= row_count) {
        Some(bad) => Err(Error::LayoutMismatch {
            slot,
            name: name.to_string(),
            reason: format!("sparse gradient row {bad} is out of range for shape {shape:?}"),
        }),
        None => Ok(()),
    }
}

fn all_finite<F: Float>(values: &ArrayViewD<'_, F>) -> bool {
    match flat(values) {
        Some(s) => recur_core::params::slice_all_finite(s),
        None => values.iter().all(|v| v.is_finite()),
    }
}

/// `x`, or zero when it is subnormal. A running average that decays (a moment whose
/// gradient stays zero, as the rows of characters or words absent from recent batches do)
/// passes through the subnormal range, and x86 cores take a slow microcode path for every
/// operation on a subnormal: measured, a character-level Elman run with Adam fell from
/// 26k to 12.7k characters/s within 57k updates. What flushing changes is of the order of
/// the smallest normal number (1.2e-38 in f32), except through a denominator `√v + eps`
/// whose `eps` is below √(smallest normal), about 1e-19 in f32: there the squared
/// gradients feeding `v` have already underflowed anyway.
#[inline(always)]
pub(crate) fn flush_subnormal<F: Float>(x: F) -> F {
    if x.abs() < F::min_positive_value() {
        F::zero()
    } else {
        x
    }
}

/// Checks the learning rate (and any other strictly positive hyper-parameter).
pub(crate) fn check_positive<F: Float>(name: &'static str, value: F) -> Result<()> {
    if value.is_finite() && value > F::zero() {
        Ok(())
    } else {
        Err(Error::config(
            name,
            format!("must be finite and > 0, got {value}"),
        ))
    }
}

/// Checks a decay rate: `0 <= value < 1`.
pub(crate) fn check_unit<F: Float>(name: &'static str, value: F) -> Result<()> {
    if value >= F::zero() && value < F::one() {
        Ok(())
    } else {
        Err(Error::config(
            name,
            format!("must be in [0, 1), got {value}"),
        ))
    }
}

/// Calls `f` once for every distinct row in `rows` (callers' row lists may repeat a row,
/// and applying a row's update twice would be wrong). `mask` is scratch space that grows
/// to the largest row count seen and is left all-false.
pub(crate) fn for_each_unique_row(
    mask: &mut Vec<bool>,
    rows: &[usize],
    row_count: usize,
    mut f: impl FnMut(usize),
) {
    if mask.len() < row_count {
        mask.resize(row_count, false);
    }
    for &r in rows {
        if !mask[r] {
            mask[r] = true;
            f(r);
        }
    }
    for &r in rows {
        mask[r] = false;
    }
}

/// `f(param, grad)` for every element.
#[inline]
pub(crate) fn zip2<F: Float>(
    mut p: ArrayViewMutD<'_, F>,
    g: ArrayViewD<'_, F>,
    f: impl Fn(&mut F, F),
) {
    if p.strides() == g.strides() {
        if let (Some(ps), Some(gs)) = (flat_mut(&mut p), flat(&g)) {
            for (p, &g) in ps.iter_mut().zip(gs) {
                f(p, g);
            }
            return;
        }
    }
    Zip::from(&mut p).and(&g).for_each(|p, &g| f(p, g));
}

/// `f(param, grad, buffer)` for every element.
#[inline]
pub(crate) fn zip3<F: Float>(
    mut p: ArrayViewMutD<'_, F>,
    g: ArrayViewD<'_, F>,
    mut s: ArrayViewMutD<'_, F>,
    f: impl Fn(&mut F, F, &mut F),
) {
    if p.strides() == g.strides() && p.strides() == s.strides() {
        if let (Some(ps), Some(gs), Some(ss)) = (flat_mut(&mut p), flat(&g), flat_mut(&mut s)) {
            for ((p, &g), s) in ps.iter_mut().zip(gs).zip(ss) {
                f(p, g, s);
            }
            return;
        }
    }
    Zip::from(&mut p)
        .and(&g)
        .and(&mut s)
        .for_each(|p, &g, s| f(p, g, s));
}

/// `f(param, grad, buffer1, buffer2)` for every element.
#[inline]
pub(crate) fn zip4<F: Float>(
    mut p: ArrayViewMutD<'_, F>,
    g: ArrayViewD<'_, F>,
    mut s1: ArrayViewMutD<'_, F>,
    mut s2: ArrayViewMutD<'_, F>,
    f: impl Fn(&mut F, F, &mut F, &mut F),
) {
    if p.strides() == g.strides() && p.strides() == s1.strides() && p.strides() == s2.strides() {
        if let (Some(ps), Some(gs), Some(s1s), Some(s2s)) = (
            flat_mut(&mut p),
            flat(&g),
            flat_mut(&mut s1),
            flat_mut(&mut s2),
        ) {
            for (((p, &g), a), b) in ps.iter_mut().zip(gs).zip(s1s).zip(s2s) {
                f(p, g, a, b);
            }
            return;
        }
    }
    Zip::from(&mut p)
        .and(&g)
        .and(&mut s1)
        .and(&mut s2)
        .for_each(|p, &g, a, b| f(p, g, a, b));
}
