//! What the gated cells ([`crate::Lstm`], [`crate::Gru`]) share: their parameter layout
//! (input and recurrent weights of `k` gate blocks side by side, two optional biases), the
//! gradient of the biases and weights from rows of pre-activation gradients, a scratch
//! buffer for the backward pass, packed copies of the weights for the steps' products, and
//! the activation of a column range.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};

use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2, CowArray, Ix2};
use rand::Rng;
use recur_core::activation::Activation;
use recur_core::linalg::{gemm, gemm_packed, PackedB};
use recur_core::params::{fill_zero, zero_rows, RowSet};
use recur_core::{Error, Float, Input, ParamSet, Result, Slot, SlotMut};
use serde::{Deserialize, Serialize};

use crate::step::{input_product, input_weight_grad};
use crate::{Init, StepDeltas, StepRecord};

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

    /// Adds the weight and bias gradients of rows of pre-activation gradients:
    /// `da_x = ∂L/∂(x·W_ih + b_ih)` for the input side and `da_h = ∂L/∂(h·W_hh + b_hh)` for
    /// the recurrent side, whose rows pair with those of `x` and `h`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] on inconsistent shapes.
    pub(crate) fn add_grads(
        &mut self,
        x: Input<'_, F>,
        da_x: ArrayView2<'_, F>,
        h: ArrayView2<'_, F>,
        da_h: ArrayView2<'_, F>,
    ) -> Result<()> {
        self.add_bias_grads(da_x, da_h)?;
        self.add_weight_grads(x, da_x, h, da_h)
    }

    /// The bias part of [`GatedParams::add_grads`]: `b_ih += Σ da_x`, `b_hh += Σ da_h`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when a gradient is not as wide as the gate blocks.
    pub(crate) fn add_bias_grads(
        &mut self,
        da_x: ArrayView2<'_, F>,
        da_h: ArrayView2<'_, F>,
    ) -> Result<()> {
        self.check_width(da_x)?;
        self.check_width(da_h)?;
        add_row_sums(self.b_ih.as_mut(), da_x);
        add_row_sums(self.b_hh.as_mut(), da_h);
        Ok(())
    }

    /// The weight part of [`GatedParams::add_grads`]: `w_ih += xᵀ·da_x` (a scatter-add for
    /// token ids), `w_hh += hᵀ·da_h`; over a whole sweep, one product each.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] on inconsistent shapes.
    pub(crate) fn add_weight_grads(
        &mut self,
        x: Input<'_, F>,
        da_x: ArrayView2<'_, F>,
        h: ArrayView2<'_, F>,
        da_h: ArrayView2<'_, F>,
    ) -> Result<()> {
        self.check_width(da_x)?;
        input_weight_grad(x, da_x, self.w_ih.view_mut(), &mut self.touched)?;
        add_outer(h, da_h, self.w_hh.view_mut())
    }

    fn check_width(&self, d: ArrayView2<'_, F>) -> Result<()> {
        let width = self.w_hh.ncols();
        if d.ncols() != width {
            return Err(Error::shape(
                "gated cell: gate gradients",
                &[d.nrows(), width],
                d.shape(),
            ));
        }
        Ok(())
    }

    /// Adds the input-side gradients of rows `da = ∂L/∂(x·W_ih + b_ih)`.
    pub(crate) fn add_input_grads(&mut self, x: Input<'_, F>, da: ArrayView2<'_, F>) -> Result<()> {
        input_weight_grad(x, da, self.w_ih.view_mut(), &mut self.touched)?;
        add_row_sums(self.b_ih.as_mut(), da);
        Ok(())
    }
}

/// The tape a gated cell's backward step was given, if it keeps one: `None` when there is
/// no tape or the cell keeps none (`width` 0), else the rows, checked to be `[batch, width]`.
pub(crate) fn tape_rows<'a, F>(
    op: &'static str,
    tape: Option<ArrayViewMut2<'a, F>>,
    batch: usize,
    width: usize,
) -> Result<Option<ArrayViewMut2<'a, F>>> {
    match tape {
        Some(_) if width == 0 => Ok(None),
        Some(t) if t.dim() != (batch, width) => Err(Error::shape(op, &[batch, width], t.shape())),
        tape => Ok(tape),
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

/// Which packed copy of a [`GatedParams`]' weights a product reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Weight {
    /// `w_ih`, for `x·W_ih`.
    Input,
    /// `w_hh`, for `h·W_hh`.
    Recurrent,
    /// `w_ihᵀ`, for `δa·W_ihᵀ`.
    InputT,
    /// `w_hhᵀ`, for `δa·W_hhᵀ`.
    RecurrentT,
}

impl Weight {
    const ALL: usize = 4;

    fn index(self) -> usize {
        self as usize
    }

    fn of<F>(self, params: &GatedParams<F>) -> ArrayView2<'_, F> {
        match self {
            Weight::Input => params.w_ih.view(),
            Weight::Recurrent => params.w_hh.view(),
            Weight::InputT => params.w_ih.t(),
            Weight::RecurrentT => params.w_hh.t(),
        }
    }
}

/// The weights and their transposes packed for the matrix kernels ([`PackedB`]), made when a
/// step first needs them after the weights changed, for the steps' products `x·W_ih`,
/// `h·W_hh`, `δa·W_ihᵀ` and `δa·W_hhᵀ`.
///
/// Every step of a sequence multiplies the same weights. Read in place, a weight matrix of
/// 1024 `f32` columns is walked with a 4 KiB row stride, each row of a kernel's panel on
/// another page and on the same few cache sets, and its transpose only as dot products;
/// packed once, each product streams contiguous panels (`docs/performance.md`, gated
/// cells). The owner calls [`Packed::invalidate`] whenever its weights may change (every
/// `&mut` access), so the copies are remade once per update: one pass over each matrix
/// against the many steps' products that read it.
#[derive(Debug)]
pub(crate) struct Packed<F> {
    /// Per [`Weight`]: whether its copy matches the weights.
    fresh: [AtomicBool; Weight::ALL],
    /// Per [`Weight`]: the packed copy, once made (its buffer is kept across updates).
    copies: RwLock<[Option<PackedB<F>>; Weight::ALL]>,
}

impl<F> Default for Packed<F> {
    fn default() -> Self {
        Packed {
            fresh: Default::default(),
            copies: RwLock::new([None, None, None, None]),
        }
    }
}

impl<F> Clone for Packed<F> {
    /// A clone starts without copies: they are made from the clone's own weights.
    fn clone(&self) -> Self {
        Packed::default()
    }
}

impl<F: Float> Packed<F> {
    /// Marks every copy out of date.
    pub(crate) fn invalidate(&mut self) {
        for fresh in &mut self.fresh {
            *fresh.get_mut() = false;
        }
    }

    /// Runs `f` on the chosen weight of `params`, packed, packing it first if its copy is
    /// out of date.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when a previous use panicked; whatever `f` returns.
    pub(crate) fn with<T>(
        &self,
        params: &GatedParams<F>,
        which: Weight,
        f: impl FnOnce(&PackedB<F>) -> Result<T>,
    ) -> Result<T> {
        let index = which.index();
        if !self.fresh[index].load(Ordering::Acquire) {
            let mut copies = self.copies.write().map_err(|_| poisoned())?;
            if !self.fresh[index].load(Ordering::Acquire) {
                let w = which.of(params);
                match &mut copies[index] {
                    Some(copy) => copy.pack(w),
                    empty => *empty = Some(PackedB::new(w)),
                }
                self.fresh[index].store(true, Ordering::Release);
            }
        }
        let copies = self.copies.read().map_err(|_| poisoned())?;
        match &copies[index] {
            Some(copy) => f(copy),
            None => Err(Error::config("cell", "packed weights were not made")),
        }
    }

    /// `d_x += δa·W_ihᵀ` when `d_x` is given (the input gradient of a step).
    ///
    /// # Errors
    /// Shape mismatches; a poisoned lock.
    pub(crate) fn input_delta(
        &self,
        params: &GatedParams<F>,
        da: ArrayView2<'_, F>,
        d_x: Option<&mut ArrayViewMut2<'_, F>>,
    ) -> Result<()> {
        match d_x {
            Some(d_x) => self.with(params, Weight::InputT, |w_ih_t| {
                Ok(gemm_packed(F::one(), da, w_ih_t, F::one(), d_x.view_mut())?)
            }),
            None => Ok(()),
        }
    }

    /// `out ← x·W_ih + beta·out`: for token ids a gather of rows of `w_ih`, for dense rows a
    /// product with the packed `w_ih`.
    ///
    /// # Errors
    /// Shape mismatches; a poisoned lock.
    pub(crate) fn input_product(
        &self,
        params: &GatedParams<F>,
        x: Input<'_, F>,
        beta: F,
        out: ArrayViewMut2<'_, F>,
    ) -> Result<()> {
        match x {
            Input::Tokens(_) => input_product(x, params.w_ih.view(), beta, out),
            Input::Dense(x) => self.with(params, Weight::Input, |w| {
                Ok(gemm_packed(F::one(), x, w, beta, out)?)
            }),
        }
    }
}

/// The error for a lock that a panicking backward pass left behind.
fn poisoned() -> Error {
    Error::config("cell", "a previous backward pass panicked")
}

/// Whether every row of `m` is one contiguous run of memory, as the row passes need.
pub(crate) fn unit_rows<F>(m: &ArrayView2<'_, F>) -> bool {
    m.ncols() <= 1 || m.strides()[1] == 1
}

/// `m` as it is when its rows are contiguous ([`unit_rows`]), else a standard-layout copy.
pub(crate) fn with_unit_rows<F: Clone>(m: ArrayView2<'_, F>) -> CowArray<'_, F, Ix2> {
    if unit_rows(&m) {
        m.into()
    } else {
        m.as_standard_layout().into_owned().into()
    }
}

/// Runs `f` on `m`, or, when the rows of `m` are not contiguous, on a standard-layout copy
/// that is written back afterwards.
pub(crate) fn with_unit_rows_mut<F: Clone, T>(
    mut m: ArrayViewMut2<'_, F>,
    f: impl FnOnce(ArrayViewMut2<'_, F>) -> Result<T>,
) -> Result<T> {
    if unit_rows(&m.view()) {
        return f(m);
    }
    let mut copy = m.as_standard_layout().into_owned();
    let out = f(copy.view_mut())?;
    m.assign(&copy);
    Ok(out)
}

/// Runs `f` on `prev` and `next` with contiguous rows ([`with_unit_rows`],
/// [`with_unit_rows_mut`]): what a forward step's row passes need.
pub(crate) fn with_unit_row_states<F: Clone, T>(
    prev: ArrayView2<'_, F>,
    next: ArrayViewMut2<'_, F>,
    f: impl FnOnce(ArrayView2<'_, F>, ArrayViewMut2<'_, F>) -> Result<T>,
) -> Result<T> {
    let prev = with_unit_rows(prev);
    with_unit_rows_mut(next, |next| f(prev.view(), next))
}

/// Runs `f` on a backward step whose states, `d_next` and `d_prev` have contiguous rows
/// (copied where they do not, the deltas written back after): what its row passes need.
pub(crate) fn with_unit_row_step<F: Clone, K, T>(
    step: StepRecord<'_, F, K>,
    deltas: StepDeltas<'_, F>,
    f: impl FnOnce(StepRecord<'_, F, K>, StepDeltas<'_, F>) -> Result<T>,
) -> Result<T> {
    let (prev, next) = (with_unit_rows(step.prev), with_unit_rows(step.next));
    let step = StepRecord {
        x: step.x.reborrow(),
        prev: prev.view(),
        next: next.view(),
        cache: step.cache,
    };
    let StepDeltas {
        d_next,
        d_prev,
        d_x,
        tape,
    } = deltas;
    with_unit_rows_mut(d_next, |d_next| {
        with_unit_rows_mut(d_prev, |d_prev| {
            let deltas = StepDeltas {
                d_next: d_next.reborrow(),
                d_prev: d_prev.reborrow(),
                d_x: d_x.map(ArrayViewMut2::reborrow),
                tape: tape.map(ArrayViewMut2::reborrow),
            };
            f(step, deltas)
        })
    })
}

/// `v += b` when the bias exists.
#[inline(always)]
pub(crate) fn add_bias<F: Float>(v: &mut [F], b: Option<&ArrayView1<'_, F>>) {
    let Some(b) = b else { return };
    let b = b
        .to_slice()
        .expect("bias vectors are owned, contiguous arrays");
    for (v, &b) in v.iter_mut().zip(b) {
        *v += b;
    }
}

/// Row `r` of a matrix with contiguous rows, as a slice.
#[inline(always)]
pub(crate) fn row_of<'a, F>(m: &'a ArrayView2<'_, F>, r: usize) -> &'a [F] {
    m.row(r)
        .to_slice()
        .expect("the row passes' operands have contiguous rows")
}

/// Row `r` of a matrix with contiguous rows, as a mutable slice.
#[inline(always)]
pub(crate) fn row_of_mut<'a, F>(m: &'a mut ArrayViewMut2<'_, F>, r: usize) -> &'a mut [F] {
    m.row_mut(r)
        .into_slice()
        .expect("the row passes' operands have contiguous rows")
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
