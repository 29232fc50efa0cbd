//! The gated recurrent unit, in PyTorch's form (the default) or Cho et al.'s original.

use ndarray::{s, Array1, Array2, ArrayView2, ArrayViewMut2, Axis, Zip};
use rand::Rng;
use recur_core::activation::{Activation, Sigmoid, Tanh};
use recur_core::linalg::{for_each_parallel, gemm, gemm_packed, run_wide, Isa};
use recur_core::{Error, Float, Input, ParamSet, Result};
use serde::{Deserialize, Serialize};

use crate::gated::{
    add_outer, add_row_sums, gate_block, slope, sum_blocks, tape_rows, unit_rows,
    with_unit_row_states, with_unit_row_step, GatedParams, GruParams, Packed, Scratch, Weight,
};
use crate::step::{check_deltas, check_forward, check_one_block, row_block};
use crate::{Cell, Init, StepDeltas, StepRecord, SweepRecord};

mod rows;

use rows::{BackwardRows, ForwardRows, GruRows, Part};

/// Where a [`Gru`] applies its reset gate `r` in the candidate `n`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum GruVariant {
    /// After the recurrent product: `n = C(x·W_in + b_in + r ⊙ (h·W_hn + b_hn))`. PyTorch's
    /// `nn.GRU`, cuDNN and Keras' `reset_after=True` compute this.
    #[default]
    ResetAfter,
    /// Before the recurrent product, as Cho et al. (2014) wrote it:
    /// `n = C(x·W_in + b_in + (r ⊙ h)·W_hn + b_hn)`. Keras' `reset_after=False`.
    ResetBefore,
}

/// Sizes and options of a [`Gru`] cell; [`GruConfig::init`] builds one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GruConfig {
    /// Input features, or vocabulary size for token inputs.
    pub input_size: usize,
    /// Hidden units.
    pub hidden_size: usize,
    /// Whether the cell has the two biases `b_ih` and `b_hh` (PyTorch's `bias=True`).
    pub bias: bool,
    /// Where the reset gate applies.
    pub variant: GruVariant,
    /// Initialisation of `w_ih` and `w_hh` (biases start at zero).
    pub init: Init,
}

impl GruConfig {
    /// A configuration with both biases, PyTorch's variant, and [`Init::UniformFanIn`].
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        GruConfig {
            input_size,
            hidden_size,
            bias: true,
            variant: GruVariant::ResetAfter,
            init: Init::UniformFanIn,
        }
    }

    /// Sets whether the cell has biases.
    pub fn with_bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// Sets where the reset gate applies.
    pub fn with_variant(mut self, variant: GruVariant) -> Self {
        self.variant = variant;
        self
    }

    /// Sets the initialisation.
    pub fn with_init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }

    /// Draws `w_ih` then `w_hh` from `rng` and builds the cell with gate activation `gate`
    /// and candidate activation `cell`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a zero size or an invalid initialisation.
    pub fn init<F: Float, G: Activation<F>, C: Activation<F>>(
        &self,
        gate: G,
        cell: C,
        rng: &mut (impl Rng + ?Sized),
    ) -> Result<Gru<F, G, C>> {
        let (input, hidden) = (self.input_size, self.hidden_size);
        let params = GatedParams::draw(3, input, hidden, self.bias, self.init, rng)?;
        Gru::from_params(params, self.variant, gate, cell)
    }
}

/// The GRU cell, with gate activation `G` (σ by default) and candidate activation `C` (tanh
/// by default). With `a = x_t·W_ih + b_ih` and `u = h_{t−1}·W_hh + b_hh`, each in three
/// blocks `r, z, n`:
///
/// ```text
/// r = G(a_r + u_r)      z = G(a_z + u_z)
/// n = C(a_n + r ⊙ u_n)                                   (GruVariant::ResetAfter)
/// n = C(a_n + (r ⊙ h_{t−1})·W_hn + b_hn)                 (GruVariant::ResetBefore)
/// h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}
/// ```
///
/// The state is `h_t` alone. With σ, tanh, [`GruVariant::ResetAfter`] and PyTorch's weights
/// transposed (see [`GatedParams`]) it computes `nn.GRU`'s step.
///
/// The backward pass, for `δh = ∂L/∂h_t`: `δn = δh ⊙ (1 − z) ⊙ C'(n)`,
/// `δz = δh ⊙ (h_{t−1} − n) ⊙ G'(z)`; reset after: `δr = δn ⊙ u_n ⊙ G'(r)` and the
/// recurrent product sees `[δr, δz, r ⊙ δn]`; reset before: `δ(r⊙h) = δn·W_hnᵀ`,
/// `δr = δ(r⊙h) ⊙ h_{t−1} ⊙ G'(r)`. Then `∂L/∂h_{t−1} = δh ⊙ z + ` the recurrent
/// products' input gradients, and `∂L/∂x_t = [δr, δz, δn]·W_ihᵀ`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Gru<F, G = Sigmoid, C = Tanh> {
    params: GruParams<F>,
    variant: GruVariant,
    gate: G,
    cell: C,
    #[serde(skip)]
    packed: Packed<F>,
}

/// What a [`Gru`] step keeps for its backward pass: the activated gates `[r z n]`, the
/// recurrent product `u` (its `n` block, for [`GruVariant::ResetAfter`]), `r ⊙ h_{t−1}`
/// (for [`GruVariant::ResetBefore`]), the pre-activations when an activation's derivative
/// needs its input, and a scratch buffer for the backward pass.
#[derive(Debug)]
pub struct GruCache<F> {
    gates: Array2<F>,
    recurrent: Array2<F>,
    reset_h: Array2<F>,
    pre: Option<Array2<F>>,
    scratch: Scratch<F>,
}

impl<F: Float, G: Activation<F>, C: Activation<F>> Gru<F, G, C> {
    /// A cell from explicit parameters (three gate blocks `r, z, n`).
    ///
    /// # Errors
    /// As [`GatedParams::new`] with three gates (re-checked, since the fields are public).
    pub fn from_params(
        params: GruParams<F>,
        variant: GruVariant,
        gate: G,
        cell: C,
    ) -> Result<Self> {
        Ok(Gru {
            params: params.checked(3)?,
            variant,
            gate,
            cell,
            packed: Packed::default(),
        })
    }

    /// The weights, by name.
    pub fn weights(&self) -> &GruParams<F> {
        &self.params
    }

    /// The weights, writable. Shapes must stay as they are: the cell checks them at every
    /// step and reports a change as an error.
    pub fn weights_mut(&mut self) -> &mut GruParams<F> {
        self.packed.invalidate();
        &mut self.params
    }

    /// Where the reset gate applies.
    pub fn variant(&self) -> GruVariant {
        self.variant
    }

    /// The gate activation `G`.
    pub fn gate_activation(&self) -> &G {
        &self.gate
    }

    /// The candidate activation `C`.
    pub fn cell_activation(&self) -> &C {
        &self.cell
    }

    fn check_cache(&self, op: &'static str, batch: usize, cache: &GruCache<F>) -> Result<()> {
        let h = self.hidden_size();
        let pre_ok = cache.pre.as_ref().is_none_or(|p| p.dim() == (batch, 3 * h));
        if cache.gates.dim() != (batch, 3 * h)
            || cache.recurrent.dim() != (batch, 3 * h)
            || cache.reset_h.dim() != (batch, h)
            || !pre_ok
        {
            return Err(Error::shape(op, &[batch, 3 * h], cache.gates.shape()));
        }
        Ok(())
    }
}

impl<F: Float, G: Activation<F>, C: Activation<F>> Gru<F, G, C> {
    /// Runs `part` of a forward step's element-wise work on blocks of rows over the worker
    /// pool (see [`row_block`]).
    fn for_row_blocks(
        &self,
        batch: usize,
        cache: &mut GruCache<F>,
        prev: ArrayView2<'_, F>,
        mut next: ArrayViewMut2<'_, F>,
        part: Part,
    ) {
        let height = row_block(batch, 3 * self.hidden_size());
        let mut pre = cache
            .pre
            .as_mut()
            .map(|p| p.axis_chunks_iter_mut(Axis(0), height));
        let blocks = cache
            .gates
            .axis_chunks_iter_mut(Axis(0), height)
            .zip(cache.recurrent.axis_chunks_iter_mut(Axis(0), height))
            .zip(cache.reset_h.axis_chunks_iter_mut(Axis(0), height))
            .zip(prev.axis_chunks_iter(Axis(0), height))
            .zip(next.axis_chunks_iter_mut(Axis(0), height))
            .map(move |((((a, u), reset_h), prev), next)| GruRows {
                a,
                u,
                reset_h,
                pre: pre.as_mut().and_then(Iterator::next),
                prev,
                next,
            });
        for_each_parallel(blocks, |rows| {
            let pass = ForwardRows {
                gate: &self.gate,
                cell: &self.cell,
                b_ih: self.params.b_ih.as_ref().map(Array1::view),
                b_hh: self.params.b_hh.as_ref().map(Array1::view),
                reset_after: self.variant == GruVariant::ResetAfter,
                part,
                rows,
            };
            run_wide(Isa::detect(), pass);
        });
    }

    /// The backward step without its parameter gradients: the gate gradients of all
    /// blocks into `buffer` (`[δa | δu]`, `6·hidden` columns), `∂L/∂h_{t−1}` into `d_prev`
    /// and `∂L/∂x_t` added into `d_x` when given.
    fn backward_rows(
        &self,
        step: StepRecord<'_, F, GruCache<F>>,
        d_next: ArrayView2<'_, F>,
        mut d_prev: ArrayViewMut2<'_, F>,
        d_x: Option<&mut ArrayViewMut2<'_, F>>,
        mut buffer: ArrayViewMut2<'_, F>,
    ) -> Result<()> {
        let (p, h, rows) = (&self.params, self.hidden_size(), d_next.nrows());
        let (cache, batch) = (step.cache, step.prev.nrows());
        let (gate, a) = (&self.gate, &cache.gates);
        // Where a derivative may read its output instead of its input, x is the output.
        let x = cache.pre.as_ref().unwrap_or(a);
        // The gate gradients, by blocks of rows over the worker pool.
        let height = row_block(rows, 3 * h);
        let blocks = buffer
            .axis_chunks_iter_mut(Axis(0), height)
            .zip(d_next.axis_chunks_iter(Axis(0), height))
            .zip(d_prev.axis_chunks_iter_mut(Axis(0), height))
            .enumerate();
        for_each_parallel(blocks, |(i, ((buffer, d_next), d_prev))| {
            let pass = BackwardRows {
                gate: &self.gate,
                cell: &self.cell,
                reset_after: self.variant == GruVariant::ResetAfter,
                first: i * height,
                gates: cache.gates.view(),
                pre: cache.pre.as_ref().map(Array2::view),
                u: cache.recurrent.view(),
                prev: step.prev.reborrow(),
                d_next,
                buffer,
                d_prev,
            };
            run_wide(Isa::detect(), pass);
        });
        let (mut da, mut du) = buffer.view_mut().split_at(Axis(1), 3 * h);
        match self.variant {
            GruVariant::ResetAfter => {
                self.packed.with(p, Weight::RecurrentT, |w_hh_t| {
                    Ok(gemm_packed(
                        F::one(),
                        du.view(),
                        w_hh_t,
                        F::one(),
                        d_prev.view_mut(),
                    )?)
                })?;
            }
            GruVariant::ResetBefore => {
                // δ(r ⊙ h) = δn·W_hnᵀ, kept in δu's first block.
                self.packed.with(p, Weight::RecurrentT, |w_hh_t| {
                    let w_hn_t = w_hh_t.rows(2 * h..3 * h)?;
                    let (dn, d_rh) = (da.slice(s![.., 2 * h..]), du.slice_mut(s![.., ..h]));
                    Ok(gemm_packed(F::one(), dn, w_hn_t, F::zero(), d_rh)?)
                })?;
                for r in 0..rows {
                    let b = r % batch;
                    Zip::from(da.row_mut(r).slice_move(s![..h]))
                        .and(d_prev.row_mut(r))
                        .and(du.row(r).slice_move(s![..h]))
                        .and(step.prev.row(b))
                        .and(gate_block(a.row(b), 0, h))
                        .and(gate_block(x.row(b), 0, h))
                        .for_each(|da_r, d_prev, &d_rh, &hp, &g_r, &xr| {
                            *da_r = d_rh * hp * slope(gate, Some(xr), g_r);
                            *d_prev += d_rh * g_r;
                        });
                }
                self.packed.with(p, Weight::RecurrentT, |w_hh_t| {
                    let w_rz_t = w_hh_t.rows(0..2 * h)?;
                    let drz = da.slice(s![.., ..2 * h]);
                    Ok(gemm_packed(
                        F::one(),
                        drz,
                        w_rz_t,
                        F::one(),
                        d_prev.view_mut(),
                    )?)
                })?;
            }
        }
        self.packed.input_delta(p, da.view(), d_x)
    }

    /// [`Cell::forward`] once shapes are checked and the rows of `prev` and `next` are
    /// contiguous.
    fn forward_checked(
        &self,
        x: Input<'_, F>,
        prev: ArrayView2<'_, F>,
        mut next: ArrayViewMut2<'_, F>,
        cache: &mut GruCache<F>,
    ) -> Result<()> {
        let (p, h, batch) = (&self.params, self.hidden_size(), prev.nrows());
        let (a, u) = (&mut cache.gates, &mut cache.recurrent);
        self.packed.input_product(p, x, F::zero(), a.view_mut())?;
        // u = h·W_hh; for the reset-before variant only its r and z blocks now.
        match self.variant {
            GruVariant::ResetAfter => self.packed.with(p, Weight::Recurrent, |w_hh| {
                Ok(gemm_packed(F::one(), prev, w_hh, F::zero(), u.view_mut())?)
            })?,
            GruVariant::ResetBefore => {
                let rz = s![.., ..2 * h];
                gemm(F::one(), prev, p.w_hh.slice(rz), F::zero(), u.slice_mut(rz))?;
                u.slice_mut(s![.., 2 * h..]).fill(F::zero());
            }
        }
        // The element-wise rest, by blocks of rows over the worker pool; the reset-before
        // variant computes `u_n = (r ⊙ h)·W_hn` between its two parts.
        let reset_after = self.variant == GruVariant::ResetAfter;
        let first = if reset_after { Part::Both } else { Part::Gates };
        self.for_row_blocks(batch, cache, prev, next.view_mut(), first);
        if !reset_after {
            gemm(
                F::one(),
                cache.reset_h.view(),
                p.w_hh.slice(s![.., 2 * h..]),
                F::one(),
                cache.recurrent.slice_mut(s![.., 2 * h..]),
            )?;
            self.for_row_blocks(batch, cache, prev, next, Part::Output);
        }
        Ok(())
    }

    /// [`Cell::backward_stacked`] once shapes are checked and the rows of `prev`, `d_next`
    /// and `d_prev` are contiguous.
    fn backward_checked(
        &self,
        step: StepRecord<'_, F, GruCache<F>>,
        deltas: StepDeltas<'_, F>,
        grads: &mut GruParams<F>,
    ) -> Result<()> {
        let (batch, cache) = (step.prev.nrows(), step.cache);
        let h = self.hidden_size();
        let StepDeltas {
            d_next,
            mut d_prev,
            mut d_x,
            tape,
        } = deltas;
        let tape = tape_rows("Gru::backward tape", tape, batch, self.tape_width())?;
        let rows = d_next.nrows();
        let (d_next, d_x) = (d_next.view(), d_x.as_mut());
        match tape {
            // One block (no per-output scheme): the gate gradients go straight onto the tape.
            Some(mut tape) if rows == batch && unit_rows(&tape.view()) => {
                self.backward_rows(step, d_next, d_prev.view_mut(), d_x, tape.view_mut())?;
                let (da, du) = tape.view().split_at(Axis(1), 3 * h);
                grads.add_bias_grads(da, du)
            }
            // Scratch: δa = [δr δz δn] (input side) and δu (recurrent side), 3·hidden each.
            tape => cache.scratch.with(rows, 6 * h, |mut buffer| {
                self.backward_rows(step, d_next, d_prev.view_mut(), d_x, buffer.view_mut())?;
                let (mut da, mut du) = buffer.view_mut().split_at(Axis(1), 3 * h);
                sum_blocks(da.view_mut(), batch);
                let da0 = da.slice(s![..batch, ..]);
                if self.variant == GruVariant::ResetBefore {
                    grads.add_input_grads(step.x, da0)?;
                    add_outer(
                        step.prev,
                        da0.slice(s![.., ..2 * h]),
                        grads.w_hh.slice_mut(s![.., ..2 * h]),
                    )?;
                    add_outer(
                        cache.reset_h.view(),
                        da0.slice(s![.., 2 * h..]),
                        grads.w_hh.slice_mut(s![.., 2 * h..]),
                    )?;
                    add_row_sums(grads.b_hh.as_mut(), da0);
                    return Ok(());
                }
                sum_blocks(du.view_mut(), batch);
                let du0 = du.slice(s![..batch, ..]);
                match tape {
                    Some(mut tape) => {
                        let (mut on_x, mut on_h) = tape.view_mut().split_at(Axis(1), 3 * h);
                        on_x.assign(&da0);
                        on_h.assign(&du0);
                        grads.add_bias_grads(da0, du0)
                    }
                    None => grads.add_grads(step.x, da0, step.prev, du0),
                }
            }),
        }
    }
}

impl<F: Float, G: Activation<F>, C: Activation<F>> Cell<F> for Gru<F, G, C> {
    type Params = GruParams<F>;
    type Cache = GruCache<F>;

    fn input_size(&self) -> usize {
        self.params.w_ih.nrows()
    }

    fn hidden_size(&self) -> usize {
        self.params.hidden()
    }

    fn params(&self) -> &dyn ParamSet<F> {
        &self.params
    }

    fn params_mut(&mut self) -> &mut dyn ParamSet<F> {
        self.packed.invalidate();
        &mut self.params
    }

    fn zero_grads(&self) -> GruParams<F> {
        self.params.zeros_like()
    }

    fn new_cache(&self, batch: usize) -> GruCache<F> {
        let h = self.hidden_size();
        let needs_pre = self.gate.needs_input() || self.cell.needs_input();
        GruCache {
            gates: Array2::zeros((batch, 3 * h)),
            recurrent: Array2::zeros((batch, 3 * h)),
            reset_h: Array2::zeros((batch, h)),
            pre: needs_pre.then(|| Array2::zeros((batch, 3 * h))),
            scratch: Scratch::default(),
        }
    }

    fn forward(
        &self,
        x: Input<'_, F>,
        prev: ArrayView2<'_, F>,
        next: ArrayViewMut2<'_, F>,
        cache: &mut GruCache<F>,
    ) -> Result<()> {
        let batch = check_forward("Gru::forward", self, x, prev, next.view())?;
        self.check_cache("Gru::forward cache", batch, cache)?;
        with_unit_row_states(prev, next, |prev, next| {
            self.forward_checked(x, prev, next, cache)
        })
    }

    fn backward(
        &self,
        step: StepRecord<'_, F, GruCache<F>>,
        deltas: StepDeltas<'_, F>,
        grads: &mut GruParams<F>,
    ) -> Result<()> {
        check_one_block("Gru::backward", step, &deltas)?;
        self.backward_stacked(step, deltas, grads)
    }

    /// All blocks at once: the gate gradients of every block side by side, one product each
    /// for `∂L/∂h_{t−1}` and `∂L/∂x_t`, and the parameter gradients from the blocks' sum
    /// (the step is linear in `d_next` given the cache).
    fn backward_stacked(
        &self,
        step: StepRecord<'_, F, GruCache<F>>,
        deltas: StepDeltas<'_, F>,
        grads: &mut GruParams<F>,
    ) -> Result<()> {
        let batch = check_deltas("Gru::backward", self, step, &deltas)?;
        self.check_cache("Gru::backward cache", batch, step.cache)?;
        with_unit_row_step(step, deltas, |step, deltas| {
            self.backward_checked(step, deltas, grads)
        })
    }

    /// Reset after: `[δa | δu]` of the step (its blocks summed), the gradients of the input
    /// and recurrent pre-activations. Reset before keeps no tape: its recurrent gradient
    /// also needs `r ⊙ h_{t−1}`.
    fn tape_width(&self) -> usize {
        match self.variant {
            GruVariant::ResetAfter => 6 * self.hidden_size(),
            GruVariant::ResetBefore => 0,
        }
    }

    /// `w_ih += Xᵀ·ΔA`, `w_hh += Hᵀ·ΔU` and the bias sums, over all the sweep's steps.
    fn backward_sequence(&self, sweep: SweepRecord<'_, F>, grads: &mut GruParams<F>) -> Result<()> {
        if self.tape_width() == 0 {
            return Ok(());
        }
        let h = self.hidden_size();
        let (da, du) = sweep.tape.split_at(Axis(1), 3 * h);
        grads.add_weight_grads(sweep.x, da, sweep.prev, du)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn bad_shapes_and_tokens_are_errors_not_panics() {
        let cell: Gru<f64> = GruConfig::new(4, 3)
            .init(Sigmoid, Tanh, &mut StdRng::seed_from_u64(0))
            .unwrap();
        assert_eq!(cell.state_size(), 3);
        let prev = Array2::zeros((2, 3));
        let mut next = Array2::zeros((2, 3));
        let mut cache = cell.new_cache(2);
        let bad = cell.forward(
            Input::Tokens(&[0, 4]),
            prev.view(),
            next.view_mut(),
            &mut cache,
        );
        assert!(matches!(bad, Err(Error::TokenOutOfRange { token: 4, .. })));
        let mut small = cell.new_cache(1);
        let bad = cell.forward(
            Input::Tokens(&[0, 1]),
            prev.view(),
            next.view_mut(),
            &mut small,
        );
        assert!(matches!(bad, Err(Error::ShapeMismatch { .. })));
        let four_gates = GatedParams::new(
            4,
            Array2::<f64>::zeros((4, 12)),
            Array2::zeros((3, 12)),
            None,
            None,
        )
        .unwrap();
        assert!(Gru::from_params(four_gates, GruVariant::ResetAfter, Sigmoid, Tanh).is_err());
        assert!(GruConfig::new(4, 0)
            .init::<f64, _, _>(Sigmoid, Tanh, &mut StdRng::seed_from_u64(0))
            .is_err());
    }
}
