//! The long short-term memory cell, generic over its gate and cell activations.

use ndarray::{s, Array1, Array2, ArrayView2, ArrayViewMut2, Axis};
use rand::Rng;
use recur_core::activation::{Activation, Sigmoid, Tanh};
use recur_core::linalg::{for_each_parallel, gemm_packed, run_wide, Isa};
use recur_core::{Error, Float, Input, ParamSet, Result};
use serde::{Deserialize, Serialize};

use crate::gated::{
    sum_blocks, tape_rows, unit_rows, with_unit_row_states, with_unit_row_step, GatedParams,
    LstmParams, Packed, Scratch, Weight,
};
use crate::step::{check_deltas, check_forward, check_one_block, row_block};
use crate::{Cell, Init, StepDeltas, StepRecord, SweepRecord};

mod rows;

use rows::{BackwardRows, ForwardRows};

/// Sizes and options of an [`Lstm`] cell; [`LstmConfig::init`] builds one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LstmConfig {
    /// Input features, or vocabulary size for token inputs.
    pub input_size: usize,
    /// Hidden units (the cell state `c` has as many).
    pub hidden_size: usize,
    /// Whether the cell has the two biases `b_ih` and `b_hh` (PyTorch's `bias=True`).
    pub bias: bool,
    /// Whether the forget-gate block of `b_ih` starts at 1.0 instead of 0, so the cell
    /// keeps its memory at the start of training. Needs `bias`.
    pub forget_bias: bool,
    /// Initialisation of `w_ih` and `w_hh` (biases start at zero).
    pub init: Init,
}

impl LstmConfig {
    /// A configuration with both biases, no forget-gate offset, and [`Init::UniformFanIn`].
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        LstmConfig {
            input_size,
            hidden_size,
            bias: true,
            forget_bias: false,
            init: Init::UniformFanIn,
        }
    }

    /// Sets whether the cell has biases.
    pub fn with_bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// Sets whether the forget-gate bias starts at 1.0.
    pub fn with_forget_bias(mut self, forget_bias: bool) -> Self {
        self.forget_bias = forget_bias;
        self
    }

    /// Sets the initialisation.
    pub fn with_init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }

    /// Draws `w_ih` then `w_hh` from `rng` and builds the cell with gate activation `gate`
    /// and cell activation `cell`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a zero size, an invalid initialisation, or
    /// `forget_bias` without `bias`.
    pub fn init<F: Float, G: Activation<F>, C: Activation<F>>(
        &self,
        gate: G,
        cell: C,
        rng: &mut (impl Rng + ?Sized),
    ) -> Result<Lstm<F, G, C>> {
        if self.forget_bias && !self.bias {
            return Err(Error::config(
                "LstmConfig::forget_bias",
                "needs bias: the offset lives in b_ih",
            ));
        }
        let (input, hidden) = (self.input_size, self.hidden_size);
        let mut params = GatedParams::draw(4, input, hidden, self.bias, self.init, rng)?;
        if let (true, Some(b)) = (self.forget_bias, &mut params.b_ih) {
            b.slice_mut(s![hidden..2 * hidden]).fill(F::one());
        }
        Lstm::from_params(params, gate, cell)
    }
}

/// The LSTM cell, with gate activation `G` (σ by default) and cell activation `C` (tanh by
/// default):
///
/// ```text
/// a   = x_t·W_ih + h_{t−1}·W_hh + b_ih + b_hh          (4 blocks: i, f, g, o)
/// i = G(a_i)   f = G(a_f)   g = C(a_g)   o = G(a_o)
/// c_t = f ⊙ c_{t−1} + i ⊙ g
/// h_t = o ⊙ C(c_t)
/// ```
///
/// The state is `[h_t | c_t]`: [`Cell::state_size`] is `2·hidden`, `h_t` in the first
/// `hidden` columns ([`Cell::hidden_offset`] 0). With σ and tanh and PyTorch's weights
/// transposed (see [`GatedParams`]) it computes `nn.LSTM`'s step.
///
/// The backward pass, for `δh = ∂L/∂h_t` and `δc = ∂L/∂c_t + δh ⊙ o ⊙ C'(c_t)`:
/// `δa_o = δh ⊙ C(c_t) ⊙ G'(a_o)`, `δa_i = δc ⊙ g ⊙ G'(a_i)`,
/// `δa_f = δc ⊙ c_{t−1} ⊙ G'(a_f)`, `δa_g = δc ⊙ i ⊙ C'(a_g)`, then
/// `∂L/∂c_{t−1} = δc ⊙ f`, `∂L/∂h_{t−1} = δa·W_hhᵀ`, `∂L/∂x_t = δa·W_ihᵀ`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lstm<F, G = Sigmoid, C = Tanh> {
    params: LstmParams<F>,
    gate: G,
    cell: C,
    #[serde(skip)]
    packed: Packed<F>,
}

/// What an [`Lstm`] step keeps for its backward pass: the activated gates `[i f g o]`,
/// `C(c_t)`, the pre-activations when an activation's derivative needs its input, and a
/// scratch buffer for the backward pass.
#[derive(Debug)]
pub struct LstmCache<F> {
    gates: Array2<F>,
    c_act: Array2<F>,
    pre: Option<Array2<F>>,
    scratch: Scratch<F>,
}

impl<F: Float, G: Activation<F>, C: Activation<F>> Lstm<F, G, C> {
    /// A cell from explicit parameters (four gate blocks `i, f, g, o`).
    ///
    /// # Errors
    /// As [`GatedParams::new`] with four gates (re-checked, since the fields are public).
    pub fn from_params(params: LstmParams<F>, gate: G, cell: C) -> Result<Self> {
        Ok(Lstm {
            params: params.checked(4)?,
            gate,
            cell,
            packed: Packed::default(),
        })
    }

    /// The weights, by name.
    pub fn weights(&self) -> &LstmParams<F> {
        &self.params
    }

    /// The weights, writable. Shapes must stay as they are: the cell checks them at every
    /// step and reports a change as an error.
    pub fn weights_mut(&mut self) -> &mut LstmParams<F> {
        self.packed.invalidate();
        &mut self.params
    }

    /// The gate activation `G`.
    pub fn gate_activation(&self) -> &G {
        &self.gate
    }

    /// The cell activation `C`.
    pub fn cell_activation(&self) -> &C {
        &self.cell
    }

    fn needs_pre(&self) -> bool {
        self.gate.needs_input() || self.cell.needs_input()
    }

    fn check_cache(&self, op: &'static str, batch: usize, cache: &LstmCache<F>) -> Result<()> {
        let h = self.hidden_size();
        let pre_ok = cache.pre.as_ref().is_none_or(|p| p.dim() == (batch, 4 * h));
        if cache.gates.dim() != (batch, 4 * h) || cache.c_act.dim() != (batch, h) || !pre_ok {
            return Err(Error::shape(op, &[batch, 4 * h], cache.gates.shape()));
        }
        Ok(())
    }

    /// The backward step without its parameter gradients: the gate gradients `δa` of all
    /// blocks into `da`, `∂L/∂h_{t−1}` and `∂L/∂c_{t−1}` into `d_prev`, and `∂L/∂x_t` added
    /// into `d_x` when given.
    fn backward_rows(
        &self,
        step: StepRecord<'_, F, LstmCache<F>>,
        d_next: ArrayView2<'_, F>,
        mut d_prev: ArrayViewMut2<'_, F>,
        d_x: Option<&mut ArrayViewMut2<'_, F>>,
        mut da: ArrayViewMut2<'_, F>,
    ) -> Result<()> {
        let (p, h, rows) = (&self.params, self.hidden_size(), d_next.nrows());
        // The gate gradients, by blocks of rows over the worker pool.
        let height = row_block(rows, 4 * h);
        let blocks = da
            .axis_chunks_iter_mut(Axis(0), height)
            .zip(d_next.axis_chunks_iter(Axis(0), height))
            .zip(d_prev.axis_chunks_iter_mut(Axis(0), height))
            .enumerate();
        let cache = step.cache;
        for_each_parallel(blocks, |(i, ((da, d_next), d_prev))| {
            let pass = BackwardRows {
                gate: &self.gate,
                cell: &self.cell,
                first: i * height,
                gates: cache.gates.view(),
                pre: cache.pre.as_ref().map(Array2::view),
                c_act: cache.c_act.view(),
                c: step.next.slice(s![.., h..]),
                c_prev: step.prev.slice(s![.., h..]),
                d_next,
                da,
                d_prev_c: d_prev.slice_move(s![.., h..]),
            };
            run_wide(Isa::detect(), pass);
        });
        self.packed.with(p, Weight::RecurrentT, |w_hh_t| {
            let d_prev_h = d_prev.slice_mut(s![.., ..h]);
            Ok(gemm_packed(
                F::one(),
                da.view(),
                w_hh_t,
                F::zero(),
                d_prev_h,
            )?)
        })?;
        self.packed.input_delta(p, da.view(), d_x)
    }

    /// [`Cell::forward`] once shapes are checked and the rows of `prev` and `next` are
    /// contiguous.
    fn forward_checked(
        &self,
        x: Input<'_, F>,
        prev: ArrayView2<'_, F>,
        mut next: ArrayViewMut2<'_, F>,
        cache: &mut LstmCache<F>,
    ) -> Result<()> {
        let (p, h, batch) = (&self.params, self.hidden_size(), prev.nrows());
        let a = &mut cache.gates;
        self.packed.input_product(p, x, F::zero(), a.view_mut())?;
        self.packed.with(p, Weight::Recurrent, |w_hh| {
            Ok(gemm_packed(
                F::one(),
                prev.slice(s![.., ..h]),
                w_hh,
                F::one(),
                a.view_mut(),
            )?)
        })?;
        // The element-wise rest, by blocks of rows over the worker pool.
        let height = row_block(batch, 4 * h);
        let (mut h_next, mut c_next) = next.view_mut().split_at(Axis(1), h);
        let c_prev = prev.slice(s![.., h..]);
        let mut pre = cache
            .pre
            .as_mut()
            .map(|p| p.axis_chunks_iter_mut(Axis(0), height));
        let blocks = a
            .axis_chunks_iter_mut(Axis(0), height)
            .zip(cache.c_act.axis_chunks_iter_mut(Axis(0), height))
            .zip(h_next.axis_chunks_iter_mut(Axis(0), height))
            .zip(c_next.axis_chunks_iter_mut(Axis(0), height))
            .zip(c_prev.axis_chunks_iter(Axis(0), height))
            .map(move |((((a, c_act), h), c), c_prev)| {
                let pre = pre.as_mut().and_then(Iterator::next);
                (a, pre, c_act, h, c, c_prev)
            });
        for_each_parallel(blocks, |(a, pre, c_act, h_next, c_next, c_prev)| {
            let pass = ForwardRows {
                gate: &self.gate,
                cell: &self.cell,
                b_ih: p.b_ih.as_ref().map(Array1::view),
                b_hh: p.b_hh.as_ref().map(Array1::view),
                a,
                pre,
                c_act,
                h_next,
                c_next,
                c_prev,
            };
            run_wide(Isa::detect(), pass);
        });
        Ok(())
    }

    /// [`Cell::backward_stacked`] once shapes are checked and the rows of the step's
    /// states and of `d_next` and `d_prev` are contiguous.
    fn backward_checked(
        &self,
        step: StepRecord<'_, F, LstmCache<F>>,
        deltas: StepDeltas<'_, F>,
        grads: &mut LstmParams<F>,
    ) -> Result<()> {
        let (h, batch, cache) = (self.hidden_size(), step.prev.nrows(), step.cache);
        let StepDeltas {
            d_next,
            mut d_prev,
            mut d_x,
            tape,
        } = deltas;
        let tape = tape_rows("Lstm::backward tape", tape, batch, self.tape_width())?;
        let rows = d_next.nrows();
        let (d_next, d_x) = (d_next.view(), d_x.as_mut());
        match tape {
            // One block (no per-output scheme): the gate gradients go straight onto the tape.
            Some(mut tape) if rows == batch && unit_rows(&tape.view()) => {
                self.backward_rows(step, d_next, d_prev.view_mut(), d_x, tape.view_mut())?;
                grads.add_bias_grads(tape.view(), tape.view())
            }
            tape => cache.scratch.with(rows, 4 * h, |mut da| {
                self.backward_rows(step, d_next, d_prev.view_mut(), d_x, da.view_mut())?;
                sum_blocks(da.view_mut(), batch);
                let da = da.slice(s![..batch, ..]);
                match tape {
                    Some(mut tape) => {
                        tape.assign(&da);
                        grads.add_bias_grads(da, da)
                    }
                    None => grads.add_grads(step.x, da, step.prev.slice(s![.., ..h]), da),
                }
            }),
        }
    }
}

impl<F: Float, G: Activation<F>, C: Activation<F>> Cell<F> for Lstm<F, G, C> {
    type Params = LstmParams<F>;
    type Cache = LstmCache<F>;

    fn input_size(&self) -> usize {
        self.params.w_ih.nrows()
    }

    fn hidden_size(&self) -> usize {
        self.params.hidden()
    }

    fn state_size(&self) -> usize {
        2 * self.params.hidden()
    }

    fn params(&self) -> &dyn ParamSet<F> {
        &self.params
    }

    fn params_mut(&mut self) -> &mut dyn ParamSet<F> {
        self.packed.invalidate();
        &mut self.params
    }

    fn zero_grads(&self) -> LstmParams<F> {
        self.params.zeros_like()
    }

    fn new_cache(&self, batch: usize) -> LstmCache<F> {
        let h = self.hidden_size();
        LstmCache {
            gates: Array2::zeros((batch, 4 * h)),
            c_act: Array2::zeros((batch, h)),
            pre: self.needs_pre().then(|| Array2::zeros((batch, 4 * h))),
            scratch: Scratch::default(),
        }
    }

    fn forward(
        &self,
        x: Input<'_, F>,
        prev: ArrayView2<'_, F>,
        next: ArrayViewMut2<'_, F>,
        cache: &mut LstmCache<F>,
    ) -> Result<()> {
        let batch = check_forward("Lstm::forward", self, x, prev, next.view())?;
        self.check_cache("Lstm::forward cache", batch, cache)?;
        with_unit_row_states(prev, next, |prev, next| {
            self.forward_checked(x, prev, next, cache)
        })
    }

    fn backward(
        &self,
        step: StepRecord<'_, F, LstmCache<F>>,
        deltas: StepDeltas<'_, F>,
        grads: &mut LstmParams<F>,
    ) -> Result<()> {
        check_one_block("Lstm::backward", step, &deltas)?;
        self.backward_stacked(step, deltas, grads)
    }

    /// All blocks at once: the gate gradients `δa` of every block side by side, one
    /// product each for `∂L/∂h_{t−1}` and `∂L/∂x_t`, and the parameter gradients from the
    /// blocks' sum (the step is linear in `d_next` given the cache).
    fn backward_stacked(
        &self,
        step: StepRecord<'_, F, LstmCache<F>>,
        deltas: StepDeltas<'_, F>,
        grads: &mut LstmParams<F>,
    ) -> Result<()> {
        let batch = check_deltas("Lstm::backward", self, step, &deltas)?;
        self.check_cache("Lstm::backward cache", batch, step.cache)?;
        with_unit_row_step(step, deltas, |step, deltas| {
            self.backward_checked(step, deltas, grads)
        })
    }

    /// `δa` of the step (its blocks summed): both weight gradients are products with it.
    fn tape_width(&self) -> usize {
        4 * self.hidden_size()
    }

    /// `w_ih += Xᵀ·ΔA`, `w_hh += Hᵀ·ΔA` and the bias sums, over all the sweep's steps.
    fn backward_sequence(
        &self,
        sweep: SweepRecord<'_, F>,
        grads: &mut LstmParams<F>,
    ) -> Result<()> {
        let h = self.hidden_size();
        let prev_h = sweep.prev.slice(s![.., ..h]);
        grads.add_weight_grads(sweep.x, sweep.tape, prev_h, sweep.tape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn forget_bias_sets_only_the_forget_block_of_b_ih() {
        let cell: Lstm<f64> = LstmConfig::new(3, 2)
            .with_forget_bias(true)
            .init(Sigmoid, Tanh, &mut StdRng::seed_from_u64(0))
            .unwrap();
        let b = cell.weights().b_ih.as_ref().unwrap();
        assert_eq!(b.to_vec(), [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
        assert!(cell
            .weights()
            .b_hh
            .as_ref()
            .unwrap()
            .iter()
            .all(|v| *v == 0.0));
        assert!(LstmConfig::new(3, 2)
            .with_bias(false)
            .with_forget_bias(true)
            .init::<f64, _, _>(Sigmoid, Tanh, &mut StdRng::seed_from_u64(0))
            .is_err());
    }

    #[test]
    fn bad_shapes_and_tokens_are_errors_not_panics() {
        let cell: Lstm<f64> = LstmConfig::new(4, 3)
            .init(Sigmoid, Tanh, &mut StdRng::seed_from_u64(0))
            .unwrap();
        assert_eq!(cell.state_size(), 6);
        let prev = Array2::zeros((2, 6));
        let mut next = Array2::zeros((2, 6));
        let mut cache = cell.new_cache(2);
        let bad = cell.forward(
            Input::Tokens(&[0, 4]),
            prev.view(),
            next.view_mut(),
            &mut cache,
        );
        assert!(matches!(bad, Err(Error::TokenOutOfRange { token: 4, .. })));
        let mut narrow = Array2::zeros((2, 3));
        let bad = cell.forward(
            Input::Tokens(&[0, 1]),
            prev.view(),
            narrow.view_mut(),
            &mut cache,
        );
        assert!(matches!(bad, Err(Error::ShapeMismatch { .. })));
        let w_ih = Array2::<f64>::zeros((4, 12));
        let bad = Lstm::from_params(
            GatedParams::new(
                3,
                Array2::<f64>::zeros((4, 9)),
                Array2::zeros((3, 9)),
                None,
                None,
            )
            .unwrap(),
            Sigmoid,
            Tanh,
        );
        assert!(matches!(bad, Err(Error::ShapeMismatch { .. })));
        assert!(GatedParams::new(
            4,
            w_ih,
            Array2::zeros((3, 12)),
            None,
            Some(ndarray::Array1::zeros(11))
        )
        .is_err());
        assert!(LstmConfig::new(0, 3)
            .init::<f64, _, _>(Sigmoid, Tanh, &mut StdRng::seed_from_u64(0))
            .is_err());
    }
}
