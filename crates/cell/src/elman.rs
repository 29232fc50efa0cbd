//! The Elman cell `h_t = f(x_t·W_xh + h_{t−1}·W_hh + b_h)`, generic over `f`, with an
//! optional second (recurrent) bias `b_hh` for an exact match of PyTorch's `nn.RNN`.

use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, Axis, Zip};
use rand::Rng;
use recur_core::activation::{apply_in_place, Activation};
use recur_core::linalg::gemm;
use recur_core::params::{fill_zero, zero_rows, RowSet};
use recur_core::{Error, Float, Input, ParamSet, Result, Slot, SlotMut};
use serde::{Deserialize, Serialize};

use crate::step::{
    check_deltas, check_forward, check_one_block, input_delta, input_product, input_weight_grad,
};
use crate::{Cell, Init, StepDeltas, StepRecord};

/// Parameters (or gradients) of an [`Elman`] cell.
///
/// Weights are stored input-major, so a batch of row vectors multiplies on the right
/// (`x·W_xh`) and a token's input weights are one contiguous row. In the language-model
/// tutorial's notation `U = W_xhᵀ` and `W = W_hhᵀ`.
///
/// Slot order: `w_xh`, `w_hh`, then `b_h` when the cell has a bias, then `b_hh` when it
/// has two.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ElmanParams<F> {
    /// Input weights, `[input_size, hidden_size]`.
    pub w_xh: Array2<F>,
    /// Recurrent weights, `[hidden_size, hidden_size]`: `h_{t−1}·w_hh`.
    pub w_hh: Array2<F>,
    /// Hidden bias, `[hidden_size]`, if the cell has one (PyTorch's `bias_ih`).
    pub b_h: Option<Array1<F>>,
    /// Second, recurrent bias, `[hidden_size]` (PyTorch's `bias_hh`); only beside `b_h`.
    /// The step adds `b_h + b_hh`, so it computes exactly what one bias of that sum would.
    /// (Absent from sets saved before it existed: serde reads a missing `Option` as `None`.)
    pub b_hh: Option<Array1<F>>,
    /// Invariant: when `Some(rows)`, every row of `w_xh` outside `rows` is zero. Token
    /// inputs add rows; dense inputs and generic writes through [`ParamSet::slot_mut`] make
    /// it `None` (dense); [`ParamSet::zero`] restarts it empty. Lets optimizers, norms and
    /// zeroing skip the untouched rows of a large vocabulary.
    #[serde(skip)]
    touched: Option<RowSet>,
}

impl<F: Float> ElmanParams<F> {
    /// Parameters from explicit weights, checked for consistent shapes.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when `w_hh` is not square, or `w_xh`/`b_h` do not have
    /// `hidden_size` columns/entries; [`Error::InvalidConfig`] when a size is zero.
    pub fn new(w_xh: Array2<F>, w_hh: Array2<F>, b_h: Option<Array1<F>>) -> Result<Self> {
        let hidden = w_hh.nrows();
        if hidden == 0 || w_xh.nrows() == 0 {
            return Err(Error::config(
                "hidden_size/input_size",
                "must be at least 1",
            ));
        }
        if w_hh.ncols() != hidden {
            return Err(Error::shape(
                "ElmanParams::new w_hh",
                &[hidden, hidden],
                w_hh.shape(),
            ));
        }
        if w_xh.ncols() != hidden {
            return Err(Error::shape(
                "ElmanParams::new w_xh",
                &[w_xh.nrows(), hidden],
                w_xh.shape(),
            ));
        }
        if let Some(b) = &b_h {
            if b.len() != hidden {
                return Err(Error::shape("ElmanParams::new b_h", &[hidden], b.shape()));
            }
        }
        Ok(ElmanParams {
            w_xh,
            w_hh,
            b_h,
            b_hh: None,
            touched: None,
        })
    }

    /// Adds the second, recurrent bias `b_hh` beside `b_h` (PyTorch's `bias_hh`).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the set has no `b_h` (the recurrent bias only comes as
    /// the second of two); [`Error::ShapeMismatch`] when `b_hh` does not have `hidden_size`
    /// entries.
    pub fn with_recurrent_bias(mut self, b_hh: Array1<F>) -> Result<Self> {
        if self.b_h.is_none() {
            return Err(Error::config(
                "ElmanParams::b_hh",
                "a recurrent bias needs the bias b_h: give both or neither",
            ));
        }
        let hidden = self.w_hh.nrows();
        if b_hh.len() != hidden {
            return Err(Error::shape(
                "ElmanParams::with_recurrent_bias b_hh",
                &[hidden],
                b_hh.shape(),
            ));
        }
        self.b_hh = Some(b_hh);
        Ok(self)
    }

    /// Re-checks a set whose fields are public.
    fn checked(self) -> Result<Self> {
        let checked = ElmanParams::new(self.w_xh, self.w_hh, self.b_h)?;
        match self.b_hh {
            Some(b_hh) => checked.with_recurrent_bias(b_hh),
            None => Ok(checked),
        }
    }

    fn zeros_like(&self) -> Self {
        let zeros = |b: &Option<Array1<F>>| b.as_ref().map(|b| Array1::zeros(b.raw_dim()));
        ElmanParams {
            w_xh: Array2::zeros(self.w_xh.raw_dim()),
            w_hh: Array2::zeros(self.w_hh.raw_dim()),
            b_h: zeros(&self.b_h),
            b_hh: zeros(&self.b_hh),
            touched: Some(RowSet::default()),
        }
    }
}

impl<F: Float> ParamSet<F> for ElmanParams<F> {
    fn slot_count(&self) -> usize {
        2 + usize::from(self.b_h.is_some()) + usize::from(self.b_hh.is_some())
    }

    fn slot(&self, index: usize) -> Slot<'_, F> {
        let (name, value, rows) = match (index, &self.b_h, &self.b_hh) {
            (0, _, _) => (
                "w_xh",
                self.w_xh.view().into_dyn(),
                self.touched.as_ref().map(RowSet::rows),
            ),
            (1, _, _) => ("w_hh", self.w_hh.view().into_dyn(), None),
            (2, Some(b), _) => ("b_h", b.view().into_dyn(), None),
            (3, Some(_), Some(b)) => ("b_hh", b.view().into_dyn(), None),
            _ => panic!("ElmanParams has no slot {index}"),
        };
        Slot { name, value, rows }
    }

    fn slot_mut(&mut self, index: usize) -> SlotMut<'_, F> {
        match (index, &mut self.b_h, &mut self.b_hh) {
            (0, _, _) => {
                // A generic writer may touch any row: forget the row list (dense from now on).
                self.touched = None;
                SlotMut {
                    name: "w_xh",
                    value: self.w_xh.view_mut().into_dyn(),
                }
            }
            (1, _, _) => SlotMut {
                name: "w_hh",
                value: self.w_hh.view_mut().into_dyn(),
            },
            (2, Some(b), _) => SlotMut {
                name: "b_h",
                value: b.view_mut().into_dyn(),
            },
            (3, Some(_), Some(b)) => SlotMut {
                name: "b_hh",
                value: b.view_mut().into_dyn(),
            },
            _ => panic!("ElmanParams has no slot {index}"),
        }
    }

    /// Zeroes only the touched rows when they are known; afterwards every row is zero, so
    /// row tracking (re)starts from an empty list.
    fn zero(&mut self) {
        zero_rows(&mut self.w_xh, self.touched.as_ref().map(RowSet::rows));
        self.touched.get_or_insert_with(RowSet::default).clear();
        fill_zero(&mut self.w_hh);
        for b in [&mut self.b_h, &mut self.b_hh].into_iter().flatten() {
            fill_zero(b);
        }
    }
}

/// Sizes and options of an [`Elman`] cell; [`ElmanConfig::init`] builds one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ElmanConfig {
    /// Input features, or vocabulary size for token inputs.
    pub input_size: usize,
    /// Hidden units.
    pub hidden_size: usize,
    /// Whether the cell has a bias `b_h` (the two classic tutorials have none).
    pub bias: bool,
    /// Whether the cell has a second, recurrent bias `b_hh` beside `b_h`, as PyTorch's
    /// `nn.RNN` has (`bias_ih`, `bias_hh`), so its weights map one to one. The step is the
    /// same as with one bias `b_h + b_hh`. Needs `bias`.
    #[serde(default)]
    pub recurrent_bias: bool,
    /// Initialisation of `w_xh` and `w_hh` (the bias starts at zero).
    pub init: Init,
}

impl ElmanConfig {
    /// A configuration without bias and with [`Init::UniformFanIn`].
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        ElmanConfig {
            input_size,
            hidden_size,
            bias: false,
            recurrent_bias: false,
            init: Init::UniformFanIn,
        }
    }

    /// Sets whether the cell has a bias.
    pub fn with_bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// Sets whether the cell has the second, recurrent bias `b_hh` (needs `bias`).
    pub fn with_recurrent_bias(mut self, recurrent_bias: bool) -> Self {
        self.recurrent_bias = recurrent_bias;
        self
    }

    /// Sets the initialisation.
    pub fn with_init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }

    /// Draws the weights from `rng` and builds the cell.
    ///
    /// `w_xh` is drawn first, then `w_hh`, so a seed gives the same weights every run.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a zero size, an invalid initialisation, or
    /// `recurrent_bias` without `bias`.
    pub fn init<F: Float, A: Activation<F>>(
        &self,
        activation: A,
        rng: &mut (impl Rng + ?Sized),
    ) -> Result<Elman<F, A>> {
        if self.input_size == 0 || self.hidden_size == 0 {
            return Err(Error::config(
                "ElmanConfig",
                format!(
                    "input_size ({}) and hidden_size ({}) must be at least 1",
                    self.input_size, self.hidden_size
                ),
            ));
        }
        let w_xh = self.init.matrix(self.input_size, self.hidden_size, rng)?;
        let w_hh = self.init.matrix(self.hidden_size, self.hidden_size, rng)?;
        let b_h = self.bias.then(|| Array1::zeros(self.hidden_size));
        let mut params = ElmanParams::new(w_xh, w_hh, b_h)?;
        if self.recurrent_bias {
            params = params.with_recurrent_bias(Array1::zeros(self.hidden_size))?;
        }
        Elman::from_params(params, activation)
    }
}

/// The Elman (simple recurrent) cell `h_t = f(x_t·W_xh + h_{t−1}·W_hh + b_h)`.
///
/// Generic over the activation `f`: `Elman<F, Tanh>` is the language model's cell,
/// `Elman<F, Sigmoid>` the binary-addition cell, and a user's own [`Activation`] works the
/// same way.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Elman<F, A> {
    params: ElmanParams<F>,
    activation: A,
}

/// What an [`Elman`] step keeps for its backward pass beyond `x`, `h_{t−1}` and `h_t`:
/// the pre-activation, and only when the activation's derivative needs it.
#[derive(Debug, Clone)]
pub struct ElmanCache<F> {
    pre_activation: Option<Array2<F>>,
}

impl<F: Float, A: Activation<F>> Elman<F, A> {
    /// A cell from explicit parameters (e.g. the tutorial's `U`, `W` transposed).
    ///
    /// # Errors
    /// As [`ElmanParams::new`] and [`ElmanParams::with_recurrent_bias`] (re-checked here,
    /// since the fields are public).
    pub fn from_params(params: ElmanParams<F>, activation: A) -> Result<Self> {
        Ok(Elman {
            params: params.checked()?,
            activation,
        })
    }

    /// The weights, by name (the [`Cell`] trait gives them as a [`ParamSet`]).
    pub fn weights(&self) -> &ElmanParams<F> {
        &self.params
    }

    /// The weights, writable. Shapes must stay as they are: the cell checks them at every
    /// step and reports a change as an error.
    pub fn weights_mut(&mut self) -> &mut ElmanParams<F> {
        &mut self.params
    }

    /// The activation.
    pub fn activation(&self) -> &A {
        &self.activation
    }

    /// `dz = d_h ⊙ f'(z)` in place, for one block of rows aligned with `h` (and `z`).
    fn activation_backward(
        &self,
        h: ArrayView2<'_, F>,
        z: Option<&Array2<F>>,
        mut d_h: ArrayViewMut2<'_, F>,
    ) {
        let act = &self.activation;
        // Contiguous blocks (the engine's) as plain slices: the loop vectorises, and a
        // general zip over a 16-element row costs more than the arithmetic.
        match (z, d_h.as_slice_mut(), h.as_slice()) {
            (None, Some(d), Some(h)) => {
                for (d, &y) in d.iter_mut().zip(h) {
                    *d *= act.derivative(y, y);
                }
            }
            (Some(z), _, _) => Zip::from(&mut d_h)
                .and(z)
                .and(h)
                .for_each(|d, &z, &y| *d *= act.derivative(z, y)),
            (None, _, _) => Zip::from(&mut d_h)
                .and(h)
                .for_each(|d, &y| *d *= act.derivative(y, y)),
        }
    }

    /// Adds the parameter gradients of one block `dz = ∂L/∂z_t` (rows aligned with `x`).
    fn accumulate_grads(
        &self,
        x: Input<'_, F>,
        prev: ArrayView2<'_, F>,
        dz: ArrayView2<'_, F>,
        grads: &mut ElmanParams<F>,
    ) -> Result<()> {
        gemm(F::one(), prev.t(), dz, F::one(), grads.w_hh.view_mut())?;
        input_weight_grad(x, dz, grads.w_xh.view_mut(), &mut grads.touched)?;
        // Both biases enter the step as one sum, so they have the same gradient.
        for b in [&mut grads.b_h, &mut grads.b_hh].into_iter().flatten() {
            for dz_row in dz.rows() {
                *b += &dz_row;
            }
        }
        Ok(())
    }
}

impl<F: Float, A: Activation<F>> Cell<F> for Elman<F, A> {
    type Params = ElmanParams<F>;
    type Cache = ElmanCache<F>;

    fn input_size(&self) -> usize {
        self.params.w_xh.nrows()
    }

    fn hidden_size(&self) -> usize {
        self.params.w_hh.nrows()
    }

    fn params(&self) -> &dyn ParamSet<F> {
        &self.params
    }

    fn params_mut(&mut self) -> &mut dyn ParamSet<F> {
        &mut self.params
    }

    fn zero_grads(&self) -> ElmanParams<F> {
        self.params.zeros_like()
    }

    fn new_cache(&self, batch: usize) -> ElmanCache<F> {
        ElmanCache {
            pre_activation: self
                .activation
                .needs_input()
                .then(|| Array2::zeros((batch, self.hidden_size()))),
        }
    }

    fn forward(
        &self,
        x: Input<'_, F>,
        prev: ArrayView2<'_, F>,
        mut next: ArrayViewMut2<'_, F>,
        cache: &mut ElmanCache<F>,
    ) -> Result<()> {
        check_forward("Elman::forward", self, x, prev, next.view())?;
        let p = &self.params;
        let one = F::one();
        match x {
            Input::Dense(_) => {
                input_product(x, p.w_xh.view(), F::zero(), next.view_mut())?;
                gemm(one, prev, p.w_hh.view(), one, next.view_mut())?;
            }
            Input::Tokens(_) => {
                gemm(one, prev, p.w_hh.view(), F::zero(), next.view_mut())?;
                input_product(x, p.w_xh.view(), one, next.view_mut())?;
            }
        }
        match (&p.b_h, &p.b_hh) {
            (Some(b), None) => next += b,
            // `b_h + b_hh` first, so the step is bit for bit that of one bias of their sum.
            (Some(b), Some(b_hh)) => {
                for row in next.rows_mut() {
                    Zip::from(row)
                        .and(b)
                        .and(b_hh)
                        .for_each(|n, &b, &b_hh| *n += b + b_hh);
                }
            }
            _ => {}
        }
        if let Some(z) = &mut cache.pre_activation {
            if z.dim() != next.dim() {
                return Err(Error::shape(
                    "Elman::forward cache",
                    next.shape(),
                    z.shape(),
                ));
            }
            z.assign(&next);
        }
        let act = &self.activation;
        match next.as_slice_mut() {
            // One loop over a slice vectorises (the sigmoid is branch-free).
            Some(values) => apply_in_place(act, values),
            None => next.mapv_inplace(|z| act.apply(z)),
        }
        Ok(())
    }

    fn backward(
        &self,
        step: StepRecord<'_, F, ElmanCache<F>>,
        deltas: StepDeltas<'_, F>,
        grads: &mut ElmanParams<F>,
    ) -> Result<()> {
        check_one_block("Elman::backward", step, &deltas)?;
        self.backward_stacked(step, deltas, grads)
    }

    /// One matrix product for all blocks: `d_prev = dz·W_hhᵀ` (and `d_x += dz·W_xhᵀ`) over
    /// the stacked rows, and the parameter gradients from the blocks' sum (the step is linear
    /// in `d_next`).
    fn backward_stacked(
        &self,
        step: StepRecord<'_, F, ElmanCache<F>>,
        deltas: StepDeltas<'_, F>,
        grads: &mut ElmanParams<F>,
    ) -> Result<()> {
        let batch = check_deltas("Elman::backward", self, step, &deltas)?;
        // No tape: the gradients are added at each step.
        let StepDeltas {
            mut d_next,
            d_prev,
            mut d_x,
            tape: _,
        } = deltas;
        let z = step.cache.pre_activation.as_ref();
        for block in d_next.axis_chunks_iter_mut(Axis(0), batch) {
            self.activation_backward(step.next, z, block);
        }
        let p = &self.params;
        gemm(F::one(), d_next.view(), p.w_hh.t(), F::zero(), d_prev)?;
        input_delta(d_next.view(), p.w_xh.view(), d_x.as_mut())?;
        // Sum the blocks into the first (d_next is scratch), then one gradient update.
        let (mut first, rest) = d_next.view_mut().split_at(Axis(0), batch);
        for block in rest.axis_chunks_iter(Axis(0), batch) {
            first += &block;
        }
        self.accumulate_grads(step.x, step.prev, first.view(), grads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Sigmoid, Tanh};
    use ndarray::array;
    use rand::{rngs::StdRng, SeedableRng};
    use recur_core::params;

    fn cell<A: Activation<f64>>(act: A, bias: bool) -> Elman<f64, A> {
        ElmanConfig::new(5, 3)
            .with_bias(bias)
            .init(act, &mut StdRng::seed_from_u64(7))
            .unwrap()
    }

    #[test]
    fn token_forward_equals_dense_one_hot_forward() {
        let c = cell(Tanh, true);
        let prev = array![[0.1, -0.2, 0.3], [0.0, 0.5, -0.5]];
        let mut one_hot = Array2::zeros((2, 5));
        one_hot[[0, 4]] = 1.0;
        one_hot[[1, 1]] = 1.0;
        let (mut a, mut b) = (Array2::zeros((2, 3)), Array2::zeros((2, 3)));
        let mut cache = c.new_cache(2);
        c.forward(
            Input::Tokens(&[4, 1]),
            prev.view(),
            a.view_mut(),
            &mut cache,
        )
        .unwrap();
        c.forward(
            Input::Dense(one_hot.view()),
            prev.view(),
            b.view_mut(),
            &mut cache,
        )
        .unwrap();
        assert!((&a - &b).iter().all(|d| d.abs() < 1e-15));
    }

    #[test]
    fn stacked_backward_equals_block_by_block() {
        let c = cell(Sigmoid, true);
        let x = [2usize, 0];
        let prev = array![[0.1, -0.2, 0.3], [0.0, 0.5, -0.5]];
        let mut next = Array2::zeros((2, 3));
        let mut cache = c.new_cache(2);
        c.forward(Input::Tokens(&x), prev.view(), next.view_mut(), &mut cache)
            .unwrap();
        let d = Array2::from_shape_fn((6, 3), |(i, j)| (i as f64 - 2.5) * 0.3 + j as f64);
        let (mut fast, mut slow) = (c.zero_grads(), c.zero_grads());
        let (mut dp_fast, mut dp_slow) = (Array2::zeros((6, 3)), Array2::zeros((6, 3)));
        let step = StepRecord {
            x: Input::Tokens(&x),
            prev: prev.view(),
            next: next.view(),
            cache: &cache,
        };
        let mut scratch = d.clone();
        let deltas = StepDeltas {
            d_next: scratch.view_mut(),
            d_prev: dp_fast.view_mut(),
            d_x: None,
            tape: None,
        };
        c.backward_stacked(step, deltas, &mut fast).unwrap();
        for (i, block) in d.axis_chunks_iter(Axis(0), 2).enumerate() {
            let mut d_next = block.to_owned();
            let d_prev = dp_slow.slice_mut(ndarray::s![2 * i..2 * i + 2, ..]);
            let deltas = StepDeltas::new(d_next.view_mut(), d_prev);
            c.backward(step, deltas, &mut slow).unwrap();
        }
        assert!(params::max_abs_diff(&fast, &slow).unwrap() < 1e-14);
        assert!((&dp_fast - &dp_slow).iter().all(|v| v.abs() < 1e-14));
        assert_eq!(fast.slot(0).rows, Some(&[2usize, 0][..]));
    }

    #[test]
    fn sparse_zeroing_clears_only_touched_rows_and_resets() {
        let c = cell(Tanh, false);
        let mut g = c.zero_grads();
        g.w_xh.row_mut(3).fill(1.0);
        g.touched.as_mut().unwrap().insert(3);
        g.zero();
        assert!(g.w_xh.iter().all(|v| *v == 0.0));
        assert_eq!(g.slot(0).rows, Some(&[][..]));
        assert_eq!(c.params().slot(0).rows, None);
    }

    #[test]
    fn generic_writes_keep_the_row_hint_truthful() {
        let c = cell(Tanh, false);
        let mut g = c.zero_grads();
        let mut token_grads = c.zero_grads();
        token_grads.w_xh.row_mut(2).fill(1.5);
        token_grads.touched.as_mut().unwrap().insert(2);
        params::add_assign(&mut g, &token_grads).unwrap();
        assert_eq!(
            g.slot(0).rows,
            None,
            "a generic write must not leave an empty row list"
        );
        assert!((params::global_norm(&g) - (3.0_f64 * 1.5 * 1.5).sqrt()).abs() < 1e-12);
        g.zero();
        assert!(g.w_xh.iter().all(|v| *v == 0.0));
        assert_eq!(g.slot(0).rows, Some(&[][..]));
    }

    /// A cell with biases `b_h`, `b_hh` and one with the single bias `b_h + b_hh`.
    fn two_and_one_bias_cells() -> (Elman<f64, Tanh>, Elman<f64, Tanh>) {
        let mut rng = StdRng::seed_from_u64(3);
        let mut two = ElmanConfig::new(5, 3)
            .with_bias(true)
            .with_recurrent_bias(true)
            .init(Tanh, &mut rng)
            .unwrap();
        let mut draw = || Array1::from_shape_fn(3, |_| rng.random_range(-1.0..1.0));
        let (b_h, b_hh) = (draw(), draw());
        let sum = &b_h + &b_hh;
        two.weights_mut().b_h = Some(b_h);
        two.weights_mut().b_hh = Some(b_hh);
        let p = two.weights();
        let one = ElmanParams::new(p.w_xh.clone(), p.w_hh.clone(), Some(sum)).unwrap();
        (two, Elman::from_params(one, Tanh).unwrap())
    }

    #[test]
    fn two_biases_step_as_their_sum_and_share_its_gradient() {
        let (two, one) = two_and_one_bias_cells();
        assert_eq!(params::paths(two.params()), ["w_xh", "w_hh", "b_h", "b_hh"]);
        let x = array![[0.3, -0.1, 0.7, 0.0, 0.2], [-0.4, 0.9, 0.1, 0.5, -0.6]];
        let prev = array![[0.1, -0.2, 0.3], [0.0, 0.5, -0.5]];
        let step = |c: &Elman<f64, Tanh>| {
            let mut next = Array2::zeros((2, 3));
            let mut cache = c.new_cache(2);
            c.forward(
                Input::Dense(x.view()),
                prev.view(),
                next.view_mut(),
                &mut cache,
            )
            .unwrap();
            let mut grads = c.zero_grads();
            let mut d_next = array![[0.5, -1.0, 0.25], [2.0, 0.1, -0.3]];
            let mut d_prev = Array2::zeros((2, 3));
            let record = StepRecord {
                x: Input::Dense(x.view()),
                prev: prev.view(),
                next: next.view(),
                cache: &cache,
            };
            let deltas = StepDeltas {
                d_next: d_next.view_mut(),
                d_prev: d_prev.view_mut(),
                d_x: None,
                tape: None,
            };
            c.backward(record, deltas, &mut grads).unwrap();
            (next, grads, d_prev)
        };
        let (next_two, grads_two, d_prev_two) = step(&two);
        let (next_one, grads_one, d_prev_one) = step(&one);
        assert_eq!(
            next_two, next_one,
            "the forward step must be bit for bit the sum's"
        );
        assert_eq!(d_prev_two, d_prev_one);
        assert_eq!(grads_two.w_xh, grads_one.w_xh);
        assert_eq!(grads_two.w_hh, grads_one.w_hh);
        assert_eq!(grads_two.b_h, grads_one.b_h);
        assert_eq!(grads_two.b_hh, grads_one.b_h);
        assert!(grads_one.b_h.unwrap().iter().all(|g| g.abs() > 1e-3));
    }

    #[test]
    fn a_recurrent_bias_needs_the_bias() {
        let config = ElmanConfig::new(4, 3).with_recurrent_bias(true);
        let lone = config.init::<f64, _>(Tanh, &mut StdRng::seed_from_u64(0));
        assert!(matches!(lone, Err(Error::InvalidConfig { .. })));
        let (mut two, _) = two_and_one_bias_cells();
        two.weights_mut().b_h = None;
        let lone = Elman::from_params(two.weights().clone(), Tanh);
        assert!(matches!(lone, Err(Error::InvalidConfig { .. })));
        let (two, _) = two_and_one_bias_cells();
        let short = two.weights().clone().with_recurrent_bias(Array1::zeros(2));
        assert!(matches!(short, Err(Error::ShapeMismatch { .. })));
    }

    #[test]
    fn configs_saved_before_the_recurrent_bias_load_without_it() {
        let config = ElmanConfig::new(4, 3).with_bias(true);
        let mut json = serde_json::to_value(config).unwrap();
        json.as_object_mut()
            .unwrap()
            .remove("recurrent_bias")
            .unwrap();
        let loaded: ElmanConfig = serde_json::from_value(json).unwrap();
        assert_eq!(loaded, config);
        let params = cell(Tanh, true).weights().clone();
        let mut json = serde_json::to_value(&params).unwrap();
        json.as_object_mut().unwrap().remove("b_hh").unwrap();
        let loaded: ElmanParams<f64> = serde_json::from_value(json).unwrap();
        assert_eq!((loaded.b_h, loaded.b_hh), (params.b_h, None));
    }

    #[test]
    fn bad_shapes_and_tokens_are_errors_not_panics() {
        let c = cell(Tanh, false);
        let prev = Array2::zeros((2, 3));
        let mut next = Array2::zeros((2, 3));
        let mut cache = c.new_cache(2);
        let bad_token = c.forward(
            Input::Tokens(&[0, 5]),
            prev.view(),
            next.view_mut(),
            &mut cache,
        );
        assert!(matches!(
            bad_token,
            Err(Error::TokenOutOfRange { token: 5, .. })
        ));
        let mut wrong = Array2::zeros((2, 4));
        let bad_shape = c.forward(
            Input::Tokens(&[0, 1]),
            prev.view(),
            wrong.view_mut(),
            &mut cache,
        );
        assert!(matches!(bad_shape, Err(Error::ShapeMismatch { .. })));
        assert!(ElmanConfig::new(0, 3)
            .init::<f64, _>(Tanh, &mut StdRng::seed_from_u64(0))
            .is_err());
        let not_square =
            ElmanParams::new(Array2::<f64>::zeros((2, 3)), Array2::zeros((3, 2)), None);
        assert!(not_square.is_err());
    }
}
