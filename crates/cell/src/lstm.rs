//! The long short-term memory cell, generic over its gate and cell activations.

use ndarray::{s, Array2, ArrayView2, ArrayViewMut2, Axis, Zip};
use rand::Rng;
use recur_core::activation::{Activation, Sigmoid, Tanh};
use recur_core::linalg::{for_each_parallel, gemm_packed};
use recur_core::{Error, Float, Input, ParamSet, Result};
use serde::{Deserialize, Serialize};

use crate::gated::{
    activate_columns, gate_block, row_block, slope, sum_blocks, tape_rows, GatedParams, LstmParams,
    Packed, Scratch, Weight,
};
use crate::step::{check_deltas, check_forward, check_one_block};
use crate::{Cell, Init, StepDeltas, StepRecord, SweepRecord};

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

    /// The element-wise part of a forward step on a block of rows: biases and activations
    /// of the gates `a` (`x·W_ih + h·W_hh` on entry), then `c`, `C(c)` and `h`.
    fn gates_forward(
        &self,
        mut a: ArrayViewMut2<'_, F>,
        pre: Option<ArrayViewMut2<'_, F>>,
        mut c_act: ArrayViewMut2<'_, F>,
        mut h_next: ArrayViewMut2<'_, F>,
        mut c_next: ArrayViewMut2<'_, F>,
        c_prev: ArrayView2<'_, F>,
    ) {
        let (p, h) = (&self.params, self.hidden_size());
        for b in [&p.b_ih, &p.b_hh].into_iter().flatten() {
            a += b;
        }
        if let Some(mut pre) = pre {
            pre.assign(&a);
        }
        activate_columns(&self.gate, a.view_mut(), 0, 2 * h);
        activate_columns(&self.cell, a.view_mut(), 2 * h, 3 * h);
        activate_columns(&self.gate, a.view_mut(), 3 * h, 4 * h);
        Zip::from(&mut c_next)
            .and(&c_prev)
            .and(a.slice(s![.., ..h]))
            .and(a.slice(s![.., h..2 * h]))
            .and(a.slice(s![.., 2 * h..3 * h]))
            .for_each(|c, &c_prev, &i, &f, &g| *c = f * c_prev + i * g);
        c_act.assign(&c_next);
        activate_columns(&self.cell, c_act.view_mut(), 0, h);
        Zip::from(&mut h_next)
            .and(a.slice(s![.., 3 * h..]))
            .and(&c_act)
            .for_each(|h, &o, &cc| *h = o * cc);
    }

    /// The gate gradients `δa` of a block of rows of a backward step, its rows `first..` of
    /// all blocks, and `∂L/∂c_{t−1}` into the `c` columns of `d_prev`.
    fn gates_backward(
        &self,
        step: StepRecord<'_, F, LstmCache<F>>,
        first: usize,
        mut da: ArrayViewMut2<'_, F>,
        d_next: ArrayView2<'_, F>,
        mut d_prev: ArrayViewMut2<'_, F>,
    ) {
        let (gate, cell, h) = (&self.gate, &self.cell, self.hidden_size());
        let (cache, batch) = (step.cache, step.prev.nrows());
        for r in 0..da.nrows() {
            let b = (first + r) % batch;
            let a = cache.gates.row(b);
            // Where a derivative may read its output instead of its input, x is the output.
            let x = cache.pre.as_ref().map_or(a, |pre| pre.row(b));
            let (dh, dc_next) = d_next.row(r).split_at(Axis(0), h);
            let c = step.next.row(b).slice_move(s![h..]);
            let c_prev = step.prev.row(b).slice_move(s![h..]);
            let cc = cache.c_act.row(b);
            let (da_if, da_go) = da.row_mut(r).split_at(Axis(0), 2 * h);
            let (mut da_i, mut da_f) = da_if.split_at(Axis(0), h);
            let (mut da_g, mut da_o) = da_go.split_at(Axis(0), h);
            // One pass per gate, each over contiguous rows so that it vectorises; δc
            // waits in δa_f until the last pass replaces it with the forget gate's own.
            Zip::from(&mut da_f)
                .and(&dc_next)
                .and(&dh)
                .and(gate_block(a, 3, h))
                .and(&c)
                .and(&cc)
                .for_each(|dc, &dcn, &dh, &o, &c, &cc| {
                    *dc = dcn + dh * o * slope(cell, Some(c), cc);
                });
            Zip::from(&mut da_o)
                .and(&dh)
                .and(&cc)
                .and(gate_block(a, 3, h))
                .and(gate_block(x, 3, h))
                .for_each(|d, &dh, &cc, &o, &xo| *d = dh * cc * slope(gate, Some(xo), o));
            Zip::from(&mut da_i)
                .and(&da_f)
                .and(gate_block(a, 2, h))
                .and(gate_block(a, 0, h))
                .and(gate_block(x, 0, h))
                .for_each(|d, &dc, &g, &i, &xi| *d = dc * g * slope(gate, Some(xi), i));
            Zip::from(&mut da_g)
                .and(&da_f)
                .and(gate_block(a, 0, h))
                .and(gate_block(a, 2, h))
                .and(gate_block(x, 2, h))
                .for_each(|d, &dc, &i, &g, &xg| *d = dc * i * slope(cell, Some(xg), g));
            Zip::from(&mut da_f)
                .and(d_prev.row_mut(r).slice_move(s![h..]))
                .and(gate_block(a, 1, h))
                .and(&c_prev)
                .and(gate_block(x, 1, h))
                .for_each(|d, d_prev_c, &f, &cp, &xf| {
                    let dc = *d;
                    *d_prev_c = dc * f;
                    *d = dc * cp * slope(gate, Some(xf), f);
                });
        }
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
        for_each_parallel(blocks, |(i, ((da, d_next), d_prev))| {
            self.gates_backward(step, i * height, da, d_next, d_prev);
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
        mut next: ArrayViewMut2<'_, F>,
        cache: &mut LstmCache<F>,
    ) -> Result<()> {
        let batch = check_forward("Lstm::forward", self, x, prev, next.view())?;
        let (p, h) = (&self.params, self.hidden_size());
        if cache.gates.dim() != (batch, 4 * h) || cache.c_act.dim() != (batch, h) {
            return Err(Error::shape(
                "Lstm::forward cache",
                &[batch, 4 * h],
                cache.gates.shape(),
            ));
        }
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
        if cache.pre.as_ref().is_some_and(|pre| pre.dim() != a.dim()) {
            return Err(Error::shape("Lstm::forward cache", a.shape(), &[0, 0]));
        }
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
        for_each_parallel(blocks, |(a, pre, c_act, h, c, c_prev)| {
            self.gates_forward(a, pre, c_act, h, c, c_prev);
        });
        Ok(())
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
        let h = self.hidden_size();
        let cache = step.cache;
        let pre_ok = cache.pre.as_ref().is_none_or(|p| p.dim() == (batch, 4 * h));
        if cache.gates.dim() != (batch, 4 * h) || cache.c_act.dim() != (batch, h) || !pre_ok {
            return Err(Error::shape(
                "Lstm::backward cache",
                &[batch, 4 * h],
                cache.gates.shape(),
            ));
        }
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
            Some(mut tape) if rows == batch => {
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
