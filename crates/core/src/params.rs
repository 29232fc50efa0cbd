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
    /// The slot's own name within the set that defines it (`"w_xh"`, `"w_hh"`, …). Inside a
    /// composite the full name is a path ([`path`]: `"cell.layers.0.w_xh"`).
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
    /// The slot's own name within the set that defines it (see [`Slot::name`]).
    pub name: &'static str,
    /// The values.
    pub value: ArrayViewMutD<'a, F>,
}

/// An ordered, fixed list of named tensors.
///
/// Slot order is part of a set's contract: it never changes for a given type and
/// configuration, and a set and its gradient list the same names and shapes in the same
/// order. The trait is object safe, so optimizers take `&mut dyn ParamSet<F>`.
///
/// **Names are paths.** A leaf set (a cell's weights) names its slots (`w_xh`); a composite
/// prefixes the names of its parts in [`ParamSet::write_path`] (`cell.layers.0.w_xh`,
/// `readout.w_hy`), at any depth. Checkpoints, exports, gradient checks and optimizer state
/// use these full paths; [`check_unique_paths`] refuses a set in which two slots share one.
/// Hot loops use slot indices and never build a path.
///
/// Leaf sets rarely need a hand-written impl: [`param_set!`](crate::param_set) declares the
/// struct and its impl in one go.
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

    /// Appends the full path name of slot `index` to `out`. The default is the slot's own
    /// [`Slot::name`]; a composite writes its part's prefix (`"layers.0."`) and lets the part
    /// write the rest.
    ///
    /// # Panics
    /// If `index >= self.slot_count()`.
    fn write_path(&self, index: usize, out: &mut String) {
        out.push_str(self.slot(index).name);
    }

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

/// A borrowed set is a set: composites can lay borrowed parts side by side (`(&mut a, &mut b)`).
impl<F: Float, P: ParamSet<F> + ?Sized> ParamSet<F> for &mut P {
    fn slot_count(&self) -> usize {
        (**self).slot_count()
    }
    fn slot(&self, index: usize) -> Slot<'_, F> {
        (**self).slot(index)
    }
    fn slot_mut(&mut self, index: usize) -> SlotMut<'_, F> {
        (**self).slot_mut(index)
    }
    fn write_path(&self, index: usize, out: &mut String) {
        (**self).write_path(index, out);
    }
    fn zero(&mut self) {
        (**self).zero();
    }
}

/// A pair of sets is their concatenation; its paths are prefixed by position (`0.…`, `1.…`).
impl<F: Float, A: ParamSet<F>, B: ParamSet<F>> ParamSet<F> for (A, B) {
    fn slot_count(&self) -> usize {
        self.0.slot_count() + self.1.slot_count()
    }

    fn slot(&self, index: usize) -> Slot<'_, F> {
        concat_slot([&self.0 as &dyn ParamSet<F>, &self.1], index)
    }

    fn slot_mut(&mut self, index: usize) -> SlotMut<'_, F> {
        concat_slot_mut([&mut self.0 as &mut dyn ParamSet<F>, &mut self.1], index)
    }

    fn write_path(&self, index: usize, out: &mut String) {
        concat_write_path([&self.0 as &dyn ParamSet<F>, &self.1], |i| i, index, out);
    }

    fn zero(&mut self) {
        self.0.zero();
        self.1.zero();
    }
}

/// The full path name of slot `index` (see [`ParamSet::write_path`]).
///
/// # Panics
/// If `index >= set.slot_count()`.
pub fn path<F: Float>(set: &(impl ParamSet<F> + ?Sized), index: usize) -> String {
    let mut out = String::new();
    set.write_path(index, &mut out);
    out
}

/// The full path names of all slots, in slot order.
pub fn paths<F: Float>(set: &(impl ParamSet<F> + ?Sized)) -> Vec<String> {
    (0..set.slot_count()).map(|i| path(set, i)).collect()
}

/// For composites' [`ParamSet::write_path`]: writes `prefix.` and then the part's own path of
/// its slot `index`.
pub fn write_part_path<F: Float>(
    out: &mut String,
    prefix: impl std::fmt::Display,
    part: &(impl ParamSet<F> + ?Sized),
    index: usize,
) {
    use std::fmt::Write;
    // Writing into a String cannot fail.
    let _ = write!(out, "{prefix}.");
    part.write_path(index, out);
}

/// For composites: the part that slot `index` of a concatenation falls in, and the slot's
/// index within that part, given the parts' slot counts in order. `None` when `index` is
/// past the last part.
pub fn locate(counts: impl IntoIterator<Item = usize>, index: usize) -> Option<(usize, usize)> {
    let mut rest = index;
    for (part, count) in counts.into_iter().enumerate() {
        if rest < count {
            return Some((part, rest));
        }
        rest -= count;
    }
    None
}

/// Slot count of a concatenation of sets.
pub fn concat_count<'a, F: Float + 'a>(
    parts: impl IntoIterator<Item = &'a dyn ParamSet<F>>,
) -> usize {
    parts.into_iter().map(|p| p.slot_count()).sum()
}

/// Slot `index` of a concatenation of sets.
///
/// # Panics
/// If `index` is past the last slot (a broken caller invariant, as for [`ParamSet::slot`]).
pub fn concat_slot<'a, F: Float + 'a>(
    parts: impl IntoIterator<Item = &'a dyn ParamSet<F>>,
    index: usize,
) -> Slot<'a, F> {
    let mut rest = index;
    for part in parts {
        match rest.checked_sub(part.slot_count()) {
            None => return part.slot(rest),
            Some(r) => rest = r,
        }
    }
    panic!("no slot {index} in this parameter set")
}

/// Writable slot `index` of a concatenation of sets.
///
/// # Panics
/// If `index` is past the last slot.
pub fn concat_slot_mut<'a, F: Float + 'a>(
    parts: impl IntoIterator<Item = &'a mut dyn ParamSet<F>>,
    index: usize,
) -> SlotMut<'a, F> {
    let mut rest = index;
    for part in parts {
        match rest.checked_sub(part.slot_count()) {
            None => return part.slot_mut(rest),
            Some(r) => rest = r,
        }
    }
    panic!("no slot {index} in this parameter set")
}

/// The path of slot `index` of a concatenation: `prefix(part)` for the part it falls in, a
/// dot, and the part's own path. Composites lay their parts' slots end to end with the
/// `concat_*` helpers and name them with this one.
///
/// # Panics
/// If `index` is past the last slot.
pub fn concat_write_path<'a, F: Float + 'a, D: std::fmt::Display>(
    parts: impl IntoIterator<Item = &'a dyn ParamSet<F>>,
    prefix: impl Fn(usize) -> D,
    index: usize,
    out: &mut String,
) {
    let mut rest = index;
    for (i, part) in parts.into_iter().enumerate() {
        match rest.checked_sub(part.slot_count()) {
            None => return write_part_path(out, prefix(i), part, rest),
            Some(r) => rest = r,
        }
    }
    panic!("no slot {index} in this parameter set")
}

/// Whether a name saved for slot `index` (in a checkpoint or an optimizer state) names that
/// slot of `set`: its full path, or, for files written before names were paths, its own
/// [`Slot::name`] (such names have no dot; slot order has not changed).
pub fn saved_name_matches<F: Float>(
    saved: &str,
    set: &(impl ParamSet<F> + ?Sized),
    index: usize,
) -> bool {
    let leaf = set.slot(index).name;
    if saved.contains('.') {
        // Cheap test first: a path ends with its slot's own name.
        saved.ends_with(leaf) && saved == path(set, index)
    } else {
        saved == leaf
    }
}

/// Checks that no two slots share a full path name.
///
/// # Errors
/// [`Error::DuplicateName`] with the first repeated path and the two slot indices.
pub fn check_unique_paths<F: Float>(set: &(impl ParamSet<F> + ?Sized)) -> Result<()> {
    let mut seen = std::collections::HashMap::new();
    for (index, name) in paths(set).into_iter().enumerate() {
        if let Some(first) = seen.insert(name.clone(), index) {
            return Err(Error::DuplicateName {
                path: name,
                first,
                second: index,
            });
        }
    }
    Ok(())
}

/// A copy of `set` with every entry zero: a gradient buffer with the set's layout.
pub fn zeroed<F: Float, P: ParamSet<F> + Clone>(set: &P) -> P {
    let mut zero = set.clone();
    zero.zero();
    zero
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
                name: path(a, i),
                reason: format!(
                    "{} {:?} versus {} {:?}",
                    path(a, i),
                    x.value.shape(),
                    path(b, i),
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
    fn composites_name_slots_by_path_at_any_depth() {
        let nested = ((array![1.0_f64], array![2.0_f64]), array![3.0_f64]);
        assert_eq!(paths(&nested), ["0.0.tensor", "0.1.tensor", "1.tensor"]);
        assert!(check_unique_paths(&nested).is_ok());
        assert_eq!(locate([2, 0, 3], 4), Some((2, 2)));
        assert_eq!(locate([2, 0, 3], 5), None);
    }

    /// A set whose two slots share a name, as a hand-written impl might.
    struct Twice(Array1<f64>, Array1<f64>);
    impl ParamSet<f64> for Twice {
        fn slot_count(&self) -> usize {
            2
        }
        fn slot(&self, index: usize) -> Slot<'_, f64> {
            let value = if index == 0 { &self.0 } else { &self.1 };
            Slot {
                name: "w",
                value: value.view().into_dyn(),
                rows: None,
            }
        }
        fn slot_mut(&mut self, index: usize) -> SlotMut<'_, f64> {
            let value = if index == 0 { &mut self.0 } else { &mut self.1 };
            SlotMut {
                name: "w",
                value: value.view_mut().into_dyn(),
            }
        }
    }

    #[test]
    fn duplicate_paths_are_refused() {
        let twice = Twice(Array1::zeros(1), Array1::zeros(2));
        let err = check_unique_paths(&twice).unwrap_err();
        assert!(
            matches!(&err, Error::DuplicateName { path, first: 0, second: 1 } if path == "w"),
            "{err}"
        );
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
