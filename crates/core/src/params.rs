//! Parameter sets: a model's tensors as an ordered list of named slots.
//!
//! A model's parameters and its gradients have the same [`ParamSet`] type, with the same
//! slots in the same order. Everything that walks parameters (optimizers, clipping,
//! gradient checks, checkpoints) goes through this trait, so it works for any cell.

use ndarray::{ArrayBase, ArrayViewD, ArrayViewMutD, Data, DataMut, Dimension};

use recur_linalg::{run_wide, Isa, WideLoop};

use crate::{Error, Float, Result};

/// One named tensor of a [`ParamSet`], read-only.
#[derive(Debug, Clone)]
pub struct Slot<'a, F> {
    /// Name, unique within the set (`"w_xh"`, `"w_hh"`, …).
    pub name: &'static str,
    /// The values.
    pub value: ArrayViewD<'a, F>,
    /// For a gradient whose non-zero entries lie in a few rows of axis 0 (the input weights
    /// of a token-id input), those rows; `None` means "treat as dense".
    pub rows: Option<&'a [usize]>,
}

/// One named tensor of a [`ParamSet`], writable.
#[derive(Debug)]
pub struct SlotMut<'a, F> {
    /// Name, unique within the set.
    pub name: &'static str,
    /// The values.
    pub value: ArrayViewMutD<'a, F>,
}

/// An ordered, fixed list of named tensors.
///
/// Slot order is part of a set's contract: it never changes for a given type and
/// configuration, and a set and its gradient list the same names and shapes in the same
/// order. The trait is object safe, so optimizers take `&mut dyn ParamSet<F>`.
pub trait ParamSet<F: Float> {
    /// Number of slots.
    fn slot_count(&self) -> usize;

    /// Slot `index`.
    ///
    /// # Panics
    /// If `index >= self.slot_count()` (a broken caller invariant).
    fn slot(&self, index: usize) -> Slot<'_, F>;

    /// Slot `index`, writable.
    ///
    /// # Panics
    /// If `index >= self.slot_count()`.
    fn slot_mut(&mut self, index: usize) -> SlotMut<'_, F>;

    /// Sets every entry to zero. Sets that track sparse rows override this to clear only
    /// what was touched and to forget the rows.
    fn zero(&mut self) {
        for i in 0..self.slot_count() {
            fill_zero(&mut self.slot_mut(i).value);
        }
    }
}

impl<F: Float, S: DataMut<Elem = F>, D: Dimension> ParamSet<F> for ArrayBase<S, D> {
    fn slot_count(&self) -> usize {
        1
    }

    fn slot(&self, index: usize) -> Slot<'_, F> {
        assert_eq!(index, 0, "an array is a one-slot parameter set");
        Slot {
            name: "tensor",
            value: self.view().into_dyn(),
            rows: None,
        }
    }

    fn slot_mut(&mut self, index: usize) -> SlotMut<'_, F> {
        assert_eq!(index, 0, "an array is a one-slot parameter set");
        SlotMut {
            name: "tensor",
            value: self.view_mut().into_dyn(),
        }
    }
}

impl<F: Float, A: ParamSet<F>, B: ParamSet<F>> ParamSet<F> for (A, B) {
    fn slot_count(&self) -> usize {
        self.0.slot_count() + self.1.slot_count()
    }

    fn slot(&self, index: usize) -> Slot<'_, F> {
        let first = self.0.slot_count();
        if index < first {
            self.0.slot(index)
        } else {
            self.1.slot(index - first)
        }
    }

    fn slot_mut(&mut self, index: usize) -> SlotMut<'_, F> {
        let first = self.0.slot_count();
        if index < first {
            self.0.slot_mut(index)
        } else {
            self.1.slot_mut(index - first)
        }
    }

    fn zero(&mut self) {
        self.0.zero();
        self.1.zero();
    }
}

/// Total number of scalars in the set.
pub fn len<F: Float>(set: &dyn ParamSet<F>) -> usize {
    (0..set.slot_count()).map(|i| set.slot(i).value.len()).sum()
}

/// Checks that two sets have the same slot names and shapes, in the same order.
///
/// # Errors
/// [`Error::LayoutMismatch`] naming the first slot that differs.
pub fn check_same_layout<F: Float>(a: &dyn ParamSet<F>, b: &dyn ParamSet<F>) -> Result<()> {
    if a.slot_count() != b.slot_count() {
        return Err(Error::LayoutMismatch {
            slot: a.slot_count().min(b.slot_count()),
            name: String::new(),
            reason: format!("{} slots versus {}", a.slot_count(), b.slot_count()),
        });
    }
    for i in 0..a.slot_count() {
        let (x, y) = (a.slot(i), b.slot(i));
        if x.name != y.name || x.value.shape() != y.value.shape() {
            return Err(Error::LayoutMismatch {
                slot: i,
                name: x.name.to_string(),
                reason: format!(
                    "{} {:?} versus {} {:?}",
                    x.name,
                    x.value.shape(),
                    y.name,
                    y.value.shape()
                ),
            });
        }
    }
    Ok(())
}

/// Visits every entry that may be non-zero as contiguous slices: all of a dense slot, only
/// the listed rows of a slot that reports [`Slot::rows`].
pub fn for_each_slice<F: Float>(set: &dyn ParamSet<F>, mut f: impl FnMut(&[F])) {
    let mut visit = |view: ArrayViewD<'_, F>| match flat(&view) {
        Some(values) => f(values),
        None => view.iter().for_each(|v| f(std::slice::from_ref(v))),
    };
    for i in 0..set.slot_count() {
        let slot = set.slot(i);
        match slot.rows {
            Some(rows) if slot.value.ndim() >= 1 => {
                for &r in rows {
                    visit(slot.value.index_axis(ndarray::Axis(0), r));
                }
            }
            _ => visit(slot.value.view()),
        }
    }
}

/// Whether every value is finite. Branch-free (`0·v` is 0 for finite `v`, NaN otherwise),
/// so it vectorises.
///
/// These checks read every gradient entry once per update (a tenth of a language-model step
/// in the baseline x86-64 build), so they run compiled for the widest vectors the CPU has
/// ([`run_wide`]).
pub fn slice_all_finite<F: Float>(values: &[F]) -> bool {
    struct AllFinite<'a, F>(&'a [F]);
    impl<F: Float> WideLoop for AllFinite<'_, F> {
        type Output = bool;
        #[inline(always)]
        fn run(self) -> bool {
            // Independent lanes: one running sum would be a serial chain that cannot vectorise.
            let mut lanes = [F::zero(); 16];
            let blocks = self.0.chunks_exact(16);
            let rest = blocks.remainder();
            for block in blocks {
                for (lane, &v) in lanes.iter_mut().zip(block) {
                    *lane += v * F::zero();
                }
            }
            lanes.iter().chain(rest).all(|v| v.is_finite())
        }
    }
    run_wide(Isa::detect(), AllFinite(values))
}

/// `Σ v²` in `f64`, with independent partial sums so it vectorises.
pub fn slice_sum_of_squares<F: Float>(values: &[F]) -> f64 {
    struct SumOfSquares<'a, F>(&'a [F]);
    impl<F: Float> WideLoop for SumOfSquares<'_, F> {
        type Output = f64;
        #[inline(always)]
        fn run(self) -> f64 {
            let mut lanes = [0.0_f64; 8];
            let blocks = self.0.chunks_exact(8);
            let rest = blocks.remainder();
            for block in blocks {
                for (lane, &v) in lanes.iter_mut().zip(block) {
                    let v = v.to_f64_lossless();
                    *lane += v * v;
                }
            }
            let tail: f64 = rest.iter().map(|&v| v.to_f64_lossless().powi(2)).sum();
            lanes.iter().sum::<f64>() + tail
        }
    }
    run_wide(Isa::detect(), SumOfSquares(values))
}

/// Euclidean norm of all entries together, accumulated in `f64`. Rows a slot reports as
/// the only non-zero ones are the only ones read.
pub fn global_norm<F: Float>(set: &dyn ParamSet<F>) -> F {
    F::from_f64_lossy(sum_of_squares(set).sqrt())
}

/// Sum of the squares of all entries, accumulated in `f64` (the square of [`global_norm`],
/// for adding the norms of several sets). Reads only reported rows, as [`global_norm`].
pub fn sum_of_squares<F: Float>(set: &dyn ParamSet<F>) -> f64 {
    let mut sum = 0.0_f64;
    for_each_slice(set, |values| sum += slice_sum_of_squares(values));
    sum
}

/// Whether every entry is finite (reading only reported rows, as [`global_norm`]).
pub fn all_finite<F: Float>(set: &dyn ParamSet<F>) -> bool {
    let mut finite = true;
    for_each_slice(set, |values| finite &= slice_all_finite(values));
    finite
}

/// Multiplies every entry by `factor`.
pub fn scale<F: Float>(set: &mut dyn ParamSet<F>, factor: F) {
    for i in 0..set.slot_count() {
        set.slot_mut(i).value.mapv_inplace(|v| v * factor);
    }
}

/// All entries in slot order, each slot in row-major order.
pub fn flatten<F: Float>(set: &dyn ParamSet<F>) -> Vec<F> {
    let mut out = Vec::with_capacity(len(set));
    for i in 0..set.slot_count() {
        out.extend(set.slot(i).value.iter().copied());
    }
    out
}

/// Writes `values` (in [`flatten`] order) into the set.
///
/// # Errors
/// [`Error::ShapeMismatch`] when `values.len()` differs from the set's [`len`].
pub fn assign_flat<F: Float>(set: &mut dyn ParamSet<F>, values: &[F]) -> Result<()> {
    let total = len(set);
    if values.len() != total {
        return Err(Error::shape("assign_flat", &[total], &[values.len()]));
    }
    let mut rest = values;
    for i in 0..set.slot_count() {
        let mut slot = set.slot_mut(i);
        let (head, tail) = rest.split_at(slot.value.len());
        for (dst, &src) in slot.value.iter_mut().zip(head) {
            *dst = src;
        }
        rest = tail;
    }
    Ok(())
}

/// Adds `other` into `set` entry by entry (`set += other`).
///
/// # Errors
/// [`Error::LayoutMismatch`] when the layouts differ.
pub fn add_assign<F: Float>(set: &mut dyn ParamSet<F>, other: &dyn ParamSet<F>) -> Result<()> {
    check_same_layout(set, other)?;
    for i in 0..set.slot_count() {
        set.slot_mut(i).value += &other.slot(i).value;
    }
    Ok(())
}

/// Copies `src` into `dst`.
///
/// # Errors
/// [`Error::LayoutMismatch`] when the layouts differ.
pub fn copy_from<F: Float>(dst: &mut dyn ParamSet<F>, src: &dyn ParamSet<F>) -> Result<()> {
    check_same_layout(dst, src)?;
    for i in 0..dst.slot_count() {
        dst.slot_mut(i).value.assign(&src.slot(i).value);
    }
    Ok(())
}

/// Largest absolute entry-wise difference between two sets of the same layout; NaN when
/// any entry of either set is NaN (or both hold the same infinity), so that a
/// `difference < tolerance` test fails.
///
/// # Errors
/// [`Error::LayoutMismatch`] when the layouts differ.
pub fn max_abs_diff<F: Float>(a: &dyn ParamSet<F>, b: &dyn ParamSet<F>) -> Result<F> {
    check_same_layout(a, b)?;
    let mut worst = F::zero();
    for i in 0..a.slot_count() {
        for (x, y) in a.slot(i).value.iter().zip(b.slot(i).value.iter()) {
            let difference = (*x - *y).abs();
            // `max` would drop the NaN and report the sets as close.
            if difference.is_nan() {
                return Ok(difference);
            }
            worst = worst.max(difference);
        }
    }
    Ok(worst)
}

/// A helper for parameter structs: the set of rows of axis 0 touched since the last clear,
/// kept both as a list (for iteration) and a bitmap (for O(1) insertion). After the first
/// few steps it stops allocating.
#[derive(Debug, Clone, Default)]
pub struct RowSet {
    rows: Vec<usize>,
    seen: Vec<bool>,
}

impl RowSet {
    /// Records `row`; repeated rows are stored once.
    pub fn insert(&mut self, row: usize) {
        if row >= self.seen.len() {
            self.seen.resize(row + 1, false);
        }
        if !self.seen[row] {
            self.seen[row] = true;
            self.rows.push(row);
        }
    }

    /// The rows recorded since the last [`RowSet::clear`], in first-touch order.
    pub fn rows(&self) -> &[usize] {
        &self.rows
    }

    /// Forgets every row (keeps the capacity).
    pub fn clear(&mut self) {
        for &r in &self.rows {
            self.seen[r] = false;
        }
        self.rows.clear();
    }
}

/// Helper for [`ParamSet`] implementations: zeroes the given rows of a 2-D tensor, or all
/// of it when `rows` is `None`.
pub fn zero_rows<S, F>(value: &mut ArrayBase<S, ndarray::Ix2>, rows: Option<&[usize]>)
where
    S: DataMut<Elem = F>,
    F: Float,
{
    match rows {
        Some(rows) => {
            for &r in rows {
                fill_zero(&mut value.row_mut(r));
            }
        }
        None => fill_zero(value),
    }
}

/// All entries of a contiguous array as one slice, in memory order (`None` if the array has
/// gaps). Row-major layout is tested first: for the dynamic-dimension views of a
/// [`ParamSet`] that test is several times cheaper than ndarray's general contiguity test,
/// which shows at a few calls per update of a small model.
pub fn flat<S, D, F>(a: &ArrayBase<S, D>) -> Option<&[F]>
where
    S: Data<Elem = F>,
    D: Dimension,
{
    a.as_slice().or_else(|| a.as_slice_memory_order())
}

/// [`flat`], writable.
pub fn flat_mut<S, D, F>(a: &mut ArrayBase<S, D>) -> Option<&mut [F]>
where
    S: DataMut<Elem = F>,
    D: Dimension,
{
    if a.is_standard_layout() {
        a.as_slice_mut()
    } else {
        a.as_slice_memory_order_mut()
    }
}

/// Sets every entry to zero; a contiguous array as one slice (a `memset`), which for the
/// small tensors of small models is several times cheaper than ndarray's general walk.
pub fn fill_zero<S, D, F>(value: &mut ArrayBase<S, D>)
where
    S: DataMut<Elem = F>,
    D: Dimension,
    F: Float,
{
    match flat_mut(value) {
        Some(values) => values.fill(F::zero()),
        None => value.fill(F::zero()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array1, Array2};

    #[test]
    fn tuple_concatenates_slots_in_order() {
        let set = (array![[1.0_f64, 2.0], [3.0, 4.0]], array![5.0_f64]);
        assert_eq!(set.slot_count(), 2);
        assert_eq!(set.slot(1).value.shape(), &[1]);
        assert_eq!(flatten(&set), vec![1.0, 2.0, 3.0, 4.0, 5.0]);
    }

    #[test]
    fn assign_flat_round_trips_and_checks_length() {
        let mut set = (Array2::<f64>::zeros((2, 2)), Array1::<f64>::zeros(3));
        let values: Vec<f64> = (0..7).map(f64::from).collect();
        assign_flat(&mut set, &values).unwrap();
        assert_eq!(flatten(&set), values);
        assert!(matches!(
            assign_flat(&mut set, &values[..6]),
            Err(Error::ShapeMismatch { .. })
        ));
    }

    #[test]
    fn layout_mismatch_names_the_slot() {
        let a = (Array2::<f64>::zeros((2, 2)), Array1::<f64>::zeros(3));
        let b = (Array2::<f64>::zeros((2, 2)), Array1::<f64>::zeros(4));
        let err = check_same_layout(&a, &b).unwrap_err();
        assert!(
            matches!(err, Error::LayoutMismatch { slot: 1, .. }),
            "{err}"
        );
        assert!(add_assign(&mut a.clone(), &b).is_err());
    }

    #[test]
    fn norm_scale_and_diff() {
        let mut a = (array![3.0_f64], array![4.0_f64]);
        assert!((global_norm(&a) - 5.0).abs() < 1e-15);
        scale(&mut a, -2.0);
        let b = (array![-6.0_f64], array![-7.0_f64]);
        assert!((max_abs_diff(&a, &b).unwrap() - 1.0).abs() < 1e-15);
        assert!(all_finite(&a));
        a.0[0] = f64::NAN;
        assert!(!all_finite(&a));
    }

    #[test]
    fn row_set_deduplicates_and_clears() {
        let mut rows = RowSet::default();
        for r in [3, 1, 3, 7] {
            rows.insert(r);
        }
        assert_eq!(rows.rows(), &[3, 1, 7]);
        rows.clear();
        assert!(rows.rows().is_empty());
        rows.insert(1);
        assert_eq!(rows.rows(), &[1]);
    }
}

#[cfg(test)]
mod slice_tests {
    use super::*;

    #[test]
    fn finiteness_and_squares_over_slices() {
        let mut v: Vec<f32> = (0..1000).map(|i| i as f32 * 0.5).collect();
        assert!(slice_all_finite(&v));
        let expected: f64 = v.iter().map(|&x| f64::from(x).powi(2)).sum();
        assert!((slice_sum_of_squares(&v) - expected).abs() <= 1e-9 * expected);
        v[777] = f32::INFINITY;
        assert!(!slice_all_finite(&v));
        v[777] = f32::NAN;
        assert!(!slice_all_finite(&v));
        assert!(slice_all_finite::<f64>(&[]));
    }
}
