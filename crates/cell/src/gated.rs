//! What the gated cells ([`crate::Lstm`], [`crate::Gru`]) share: their parameter layout
//! (input and recurrent weights of `k` gate blocks side by side, two optional biases), the
//! gradient of the biases and weights from one block of pre-activation gradients, a
//! scratch buffer and transposed weight copies for the backward pass, and the activation of
//! a column range.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};

use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2};
use rand::Rng;
use recur_core::activation::{apply_in_place, Activation};
use recur_core::linalg::gemm;
use recur_core::params::{fill_zero, zero_rows, RowSet};
use recur_core::{Error, Float, Input, ParamSet, Result, Slot, SlotMut};
use serde::{Deserialize, Serialize};

use crate::step::input_weight_grad;
use crate::Init;

/// Parameters (or gradients) of a gated cell with `k` gate blocks: `k = 4` for an
/// [`crate::Lstm`] (blocks `i, f, g, o`), `k = 3` for a [`crate::Gru`] (blocks `r, z, n`).
///
/// Weights are stored input-major, as the [`crate::Elman`] cell's: a batch of rows
/// multiplies on the right (`x·W_ih`), a token's input weights are one contiguous row, and
/// gate block `j` is columns `j·hidden..(j+1)·hidden`. PyTorch's `weight_ih_l0` is
/// `w_ihᵀ` (and `weight_hh_l0` is `w_hhᵀ`), with the same gate order; `bias_ih_l0` and
/// `bias_hh_l0` are `b_ih` and `b_hh` as they are.
///
/// Slot order: `w_ih`, `w_hh`, then `b_ih` and `b_hh` when present.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GatedParams<F> {
    /// Input weights, `[input_size, k·hidden_size]`.
    pub w_ih: Array2<F>,
    /// Recurrent weights, `[hidden_size, k·hidden_size]`.
    pub w_hh: Array2<F>,
    /// Input bias, `[k·hidden_size]`, if any.
    pub b_ih: Option<Array1<F>>,
    /// Recurrent bias, `[k·hidden_size]`, if any.
    pub b_hh: Option<Array1<F>>,
    /// Invariant as [`crate::ElmanParams`]': when `Some(rows)`, every row of `w_ih` outside
    /// `rows` is zero.
    #[serde(skip)]
    touched: Option<RowSet>,
}

/// The parameters of an [`crate::Lstm`]: gate blocks `i, f, g, o`.
pub type LstmParams<F> = GatedParams<F>;
/// The parameters of a [`crate::Gru`]: gate blocks `r, z, n`.
pub type GruParams<F> = GatedParams<F>;

impl<F: Float> GatedParams<F> {
    /// Parameters from explicit weights for `gates` gate blocks, checked for consistent
    /// shapes: `w_hh` is `[hidden, gates·hidden]`, `w_ih` is `[input, gates·hidden]`, each
    /// bias has `gates·hidden` entries.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `gates`, the input size or the hidden size is zero;
    /// [`Error::ShapeMismatch`] naming the first inconsistent tensor.
    pub fn new(
        gates: usize,
        w_ih: Array2<F>,
        w_hh: Array2<F>,
        b_ih: Option<Array1<F>>,
        b_hh: Option<Array1<F>>,
    ) -> Result<Self> {
        let hidden = w_hh.nrows();
        if gates == 0 || hidden == 0 || w_ih.nrows() == 0 {
            return Err(Error::config(
                "gates/hidden_size/input_size",
                "must be at least 1",
            ));
        }
        let width = gates * hidden;
        if w_hh.ncols() != width {
            return Err(Error::shape(
                "GatedParams::new w_hh",
                &[hidden, width],
                w_hh.shape(),
            ));
        }
        if w_ih.ncols() != width {
            return Err(Error::shape(
                "GatedParams::new w_ih",
                &[w_ih.nrows(), width],
                w_ih.shape(),
            ));
        }
        for (name, b) in [
            ("GatedParams::new b_ih", &b_ih),
            ("GatedParams::new b_hh", &b_hh),
        ] {
            if let Some(b) = b {
                if b.len() != width {
                    return Err(Error::shape(name, &[width], b.shape()));
                }
            }
        }
        Ok(GatedParams {
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            touched: None,
        })
    }

    /// Draws `w_ih` then `w_hh` with `init` (biases zero when present).
    pub(crate) fn draw(
        gates: usize,
        input: usize,
        hidden: usize,
        bias: bool,
        init: Init,
        rng: &mut (impl Rng + ?Sized),
    ) -> Result<Self> {
        if input == 0 || hidden == 0 {
            return Err(Error::config(
                "input_size/hidden_size",
                format!("input_size ({input}) and hidden_size ({hidden}) must be at least 1"),
            ));
        }
        let w_ih = init.matrix(input, gates * hidden, rng)?;
        let w_hh = init.matrix(hidden, gates * hidden, rng)?;
        let bias = || bias.then(|| Array1::zeros(gates * hidden));
        GatedParams::new(gates, w_ih, w_hh, bias(), bias())
    }

    /// Re-checks a set whose fields are public, for `gates` gate blocks.
    pub(crate) fn checked(self, gates: usize) -> Result<Self> {
        GatedParams::new(gates, self.w_ih, self.w_hh, self.b_ih, self.b_hh)
    }

    pub(crate) fn hidden(&self) -> usize {
        self.w_hh.nrows()
    }

    pub(crate) fn zeros_like(&self) -> Self {
        GatedParams {
            w_ih: Array2::zeros(self.w_ih.raw_dim()),
            w_hh: Array2::zeros(self.w_hh.raw_dim()),
            b_ih: self.b_ih.as_ref().map(|b| Array1::zeros(b.raw_dim())),
            b_hh: self.b_hh.as_ref().map(|b| Array1::zeros(b.raw_dim())),
            touched: Some(RowSet::default()),
        }
    }

    /// Adds the input-side gradients of one block `da = ∂L/∂(x·W_ih + b_ih)`.
    pub(crate) fn add_input_grads(&mut self, x: Input<'_, F>, da: ArrayView2<'_, F>) -> Result<()> {
        input_weight_grad(x, da, self.w_ih.view_mut(), &mut self.touched)?;
        add_row_sums(self.b_ih.as_mut(), da);
        Ok(())
    }
}

/// `b += Σ_rows d` when the bias exists.
pub(crate) fn add_row_sums<F: Float>(b: Option<&mut Array1<F>>, d: ArrayView2<'_, F>) {
    if let Some(b) = b {
        for row in d.rows() {
            *b += &row;
        }
    }
}

impl<F: Float> ParamSet<F> for GatedParams<F> {
    fn slot_count(&self) -> usize {
        2 + usize::from(self.b_ih.is_some()) + usize::from(self.b_hh.is_some())
    }

    fn slot(&self, index: usize) -> Slot<'_, F> {
        let biases = [("b_ih", &self.b_ih), ("b_hh", &self.b_hh)];
        let mut present = biases
            .iter()
            .filter_map(|(n, b)| b.as_ref().map(|b| (*n, b)));
        match index {
            0 => Slot {
                name: "w_ih",
                value: self.w_ih.view().into_dyn(),
                rows: self.touched.as_ref().map(RowSet::rows),
            },
            1 => Slot {
                name: "w_hh",
                value: self.w_hh.view().into_dyn(),
                rows: None,
            },
            _ => match present.nth(index - 2) {
                Some((name, b)) => Slot {
                    name,
                    value: b.view().into_dyn(),
                    rows: None,
                },
                None => panic!("GatedParams has no slot {index}"),
            },
        }
    }

    fn slot_mut(&mut self, index: usize) -> SlotMut<'_, F> {
        match index {
            0 => {
                // A generic writer may touch any row: dense from now on.
                self.touched = None;
                SlotMut {
                    name: "w_ih",
                    value: self.w_ih.view_mut().into_dyn(),
                }
            }
            1 => SlotMut {
                name: "w_hh",
                value: self.w_hh.view_mut().into_dyn(),
            },
            _ => {
                let mut present = [("b_ih", &mut self.b_ih), ("b_hh", &mut self.b_hh)]
                    .into_iter()
                    .filter_map(|(n, b)| b.as_mut().map(|b| (n, b)));
                match present.nth(index - 2) {
                    Some((name, b)) => SlotMut {
                        name,
                        value: b.view_mut().into_dyn(),
                    },
                    None => panic!("GatedParams has no slot {index}"),
                }
            }
        }
    }

    /// Zeroes only the touched rows of `w_ih` when they are known, then restarts tracking.
    fn zero(&mut self) {
        zero_rows(&mut self.w_ih, self.touched.as_ref().map(RowSet::rows));
        self.touched.get_or_insert_with(RowSet::default).clear();
        fill_zero(&mut self.w_hh);
        for b in [&mut self.b_ih, &mut self.b_hh].into_iter().flatten() {
            fill_zero(b);
        }
    }
}

/// A backward scratch buffer kept in a step's cache: grows to the largest row count asked
/// for and is then reused, so the backward pass does not allocate in steady state.
#[derive(Debug, Default)]
pub(crate) struct Scratch<F>(Mutex<Vec<F>>);

impl<F: Float> Scratch<F> {
    /// Runs `f` on a `[rows, cols]` view of the buffer, whose entries are stale: the caller
    /// writes each entry before reading it.
    pub(crate) fn with<T>(
        &self,
        rows: usize,
        cols: usize,
        f: impl FnOnce(ArrayViewMut2<'_, F>) -> Result<T>,
    ) -> Result<T> {
        let mut buffer = self.0.lock().map_err(|_| poisoned())?;
        if buffer.len() < rows * cols {
            buffer.resize(rows * cols, F::zero());
        }
        let view = ArrayViewMut2::from_shape((rows, cols), &mut buffer[..rows * cols])
            .map_err(|_| Error::shape("Scratch::with", &[rows, cols], &[rows * cols]))?;
        f(view)
    }
}

/// Which weight matrix of a [`GatedParams`] a [`Transposed`] copy holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Weight {
    /// `w_ih`.
    Input,
    /// `w_hh`.
    Recurrent,
}

/// Row-major copies of `w_ihᵀ` and `w_hhᵀ`, made when the backward pass first needs them
/// after the weights changed, for its products `δa·W_ihᵀ` and `δa·W_hhᵀ`.
///
/// With the weights as they are, `Wᵀ` is a column-major view and its product runs as dot
/// products, which at 32 rows ran 1.3–1.4× slower than the same product with a row-major
/// copy (`docs/performance.md`, gated cells). A copy's rows are padded by one cache line so
/// that its row stride is not a multiple of 1 KiB (hidden 256 in `f32`), which would map
/// the rows a kernel reads together onto the same cache sets. The owner calls
/// [`Transposed::invalidate`] whenever its weights may change (every `&mut` access); the
/// copies are remade once per update, a pass over each weight matrix against the many
/// steps' products that use them.
#[derive(Debug)]
pub(crate) struct Transposed<F> {
    /// Per [`Weight`]: whether its copy matches the weights.
    fresh: [AtomicBool; 2],
    /// Per [`Weight`]: the padded copy, once made (its buffer is kept across updates).
    copies: RwLock<[Option<Array2<F>>; 2]>,
}

impl<F> Default for Transposed<F> {
    fn default() -> Self {
        Transposed {
            fresh: Default::default(),
            copies: RwLock::new([None, None]),
        }
    }
}

impl<F> Clone for Transposed<F> {
    /// A clone starts without copies: they are made from the clone's own weights.
    fn clone(&self) -> Self {
        Transposed::default()
    }
}

impl<F: Float> Transposed<F> {
    /// Marks both copies out of date.
    pub(crate) fn invalidate(&mut self) {
        for fresh in &mut self.fresh {
            *fresh.get_mut() = false;
        }
    }

    /// Runs `f` on `wᵀ` (`[k·hidden, rows of w]`, rows contiguous) for the chosen weight of
    /// `params`, remaking the copy first if it is out of date.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when a previous use panicked; whatever `f` returns.
    pub(crate) fn with<T>(
        &self,
        params: &GatedParams<F>,
        which: Weight,
        f: impl FnOnce(ArrayView2<'_, F>) -> Result<T>,
    ) -> Result<T> {
        let (index, w) = match which {
            Weight::Input => (0, params.w_ih.view()),
            Weight::Recurrent => (1, params.w_hh.view()),
        };
        if !self.fresh[index].load(Ordering::Acquire) {
            let mut copies = self.copies.write().map_err(|_| poisoned())?;
            if !self.fresh[index].load(Ordering::Acquire) {
                transpose_padded(w, &mut copies[index]);
                self.fresh[index].store(true, Ordering::Release);
            }
        }
        let copies = self.copies.read().map_err(|_| poisoned())?;
        match &copies[index] {
            Some(copy) => f(copy.slice(s![.., ..w.nrows()])),
            None => Err(Error::config("cell", "transposed weights were not made")),
        }
    }
}

/// The error for a lock that a panicking backward pass left behind.
fn poisoned() -> Error {
    Error::config("cell", "a previous backward pass panicked")
}

/// Writes `wᵀ` into the first `w.nrows()` columns of `out`, resized (only when its shape
/// changes) to `[w.ncols(), w.nrows() + one cache line]`.
fn transpose_padded<F: Float>(w: ArrayView2<'_, F>, out: &mut Option<Array2<F>>) {
    const TILE: usize = 32;
    let pad = (64 / std::mem::size_of::<F>()).max(1);
    let (rows, cols) = w.dim();
    let out = match out {
        Some(copy) if copy.dim() == (cols, rows + pad) => copy,
        _ => out.insert(Array2::zeros((cols, rows + pad))),
    };
    // Tiles keep both the reads and the writes within a few cache lines each.
    for i in (0..rows).step_by(TILE) {
        for j in (0..cols).step_by(TILE) {
            let (i_end, j_end) = ((i + TILE).min(rows), (j + TILE).min(cols));
            out.slice_mut(s![j..j_end, i..i_end])
                .assign(&w.slice(s![i..i_end, j..j_end]).t());
        }
    }
}

/// Applies `act` in place to columns `from..to` of every row.
pub(crate) fn activate_columns<F: Float, A: Activation<F>>(
    act: &A,
    mut m: ArrayViewMut2<'_, F>,
    from: usize,
    to: usize,
) {
    for mut row in m.rows_mut() {
        let mut part = row.slice_mut(s![from..to]);
        match part.as_slice_mut() {
            Some(values) => apply_in_place(act, values),
            None => part.mapv_inplace(|v| act.apply(v)),
        }
    }
}

/// Gate block `k` (columns `k·hidden..(k+1)·hidden`) of one row.
#[inline]
pub(crate) fn gate_block<F>(row: ArrayView1<'_, F>, k: usize, hidden: usize) -> ArrayView1<'_, F> {
    row.slice_move(s![k * hidden..(k + 1) * hidden])
}

/// `f'` at output `y`, given the pre-activation when the activation needs it.
#[inline]
pub(crate) fn slope<F: Float, A: Activation<F>>(act: &A, pre: Option<F>, y: F) -> F {
    act.derivative(pre.unwrap_or(y), y)
}

/// Adds `aᵀ·d` into `w` (a weight gradient from a block of rows).
pub(crate) fn add_outer<F: Float>(
    a: ArrayView2<'_, F>,
    d: ArrayView2<'_, F>,
    w: ArrayViewMut2<'_, F>,
) -> Result<()> {
    gemm(F::one(), a.t(), d, F::one(), w)?;
    Ok(())
}

/// Sums the `n` blocks of `batch` rows of `m` into its first block, in place.
pub(crate) fn sum_blocks<F: Float>(mut m: ArrayViewMut2<'_, F>, batch: usize) {
    let (mut first, rest) = m.view_mut().split_at(ndarray::Axis(0), batch);
    for block in rest.axis_chunks_iter(ndarray::Axis(0), batch) {
        first += &block;
    }
}
