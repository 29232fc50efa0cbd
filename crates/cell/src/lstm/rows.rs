//! The element-wise part of an LSTM step, one pass per row.
//!
//! Each pass reads and writes every value of a row once, with all four gates of a unit
//! side by side in one loop, and is compiled for the widest vectors the CPU has
//! ([`run_wide`]). A row of gate values (1024 at hidden 256) stays in L1 while it is worked on; the
//! equivalent sequence of whole-matrix passes (biases, one activation per gate block, the
//! cell update, `C(c)`, `h`) walked the step's gates eight times at the baseline width.
//! The operations and their order are those of the formulas in [`Lstm`](super::Lstm), so
//! the results do not depend on the instruction set or on how rows are split into blocks.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut2};
use recur_core::activation::Activation;
use recur_core::linalg::WideLoop;
use recur_core::Float;

use crate::gated::{add_bias, row_of, row_of_mut, slope};

/// The forward pass over a block of rows: biases and activations of the gates, then
/// `c_t`, `C(c_t)` and `h_t`.
pub(super) struct ForwardRows<'a, F, G, C> {
    pub gate: &'a G,
    pub cell: &'a C,
    pub b_ih: Option<ArrayView1<'a, F>>,
    pub b_hh: Option<ArrayView1<'a, F>>,
    /// `x·W_ih + h·W_hh` on entry, the activated gates `[i f g o]` on return.
    pub a: ArrayViewMut2<'a, F>,
    /// The gates' pre-activations, kept when a derivative needs them.
    pub pre: Option<ArrayViewMut2<'a, F>>,
    pub c_act: ArrayViewMut2<'a, F>,
    pub h_next: ArrayViewMut2<'a, F>,
    pub c_next: ArrayViewMut2<'a, F>,
    pub c_prev: ArrayView2<'a, F>,
}

impl<F: Float, G: Activation<F>, C: Activation<F>> WideLoop for ForwardRows<'_, F, G, C> {
    type Output = ();

    #[inline(always)]
    fn run(mut self) {
        let h = self.c_prev.ncols();
        for r in 0..self.a.nrows() {
            let a = row_of_mut(&mut self.a, r);
            add_bias(a, self.b_ih.as_ref());
            add_bias(a, self.b_hh.as_ref());
            if let Some(pre) = &mut self.pre {
                row_of_mut(pre, r).copy_from_slice(a);
            }
            let (a_i, rest) = a.split_at_mut(h);
            let (a_f, rest) = rest.split_at_mut(h);
            let (a_g, a_o) = rest.split_at_mut(h);
            let (c_next, c_act) = (&mut self.c_next, &mut self.c_act);
            forward_units(
                (self.gate, self.cell),
                row_of(&self.c_prev, r),
                a_i,
                a_f,
                a_g,
                a_o,
                row_of_mut(c_next, r),
                row_of_mut(c_act, r),
                row_of_mut(&mut self.h_next, r),
            );
        }
    }
}

/// One row of [`ForwardRows`] after the biases: the gates `[a_i a_f a_g a_o]` activated in
/// place, `c_t`, `C(c_t)` and `h_t`. A function of its own, with each output a parameter
/// of its own, so that the compiler knows the outputs overlap nothing else and vectorises
/// the loop without run-time checks.
#[inline(always)]
#[allow(clippy::too_many_arguments)] // one per output, for the reason above
fn forward_units<F: Float, G: Activation<F>, C: Activation<F>>(
    (gate, cell): (&G, &C),
    c_prev: &[F],
    a_i: &mut [F],
    a_f: &mut [F],
    a_g: &mut [F],
    a_o: &mut [F],
    c_next: &mut [F],
    c_act: &mut [F],
    h_next: &mut [F],
) {
    let h = c_prev.len();
    let (a_i, a_f, a_g, a_o) = (&mut a_i[..h], &mut a_f[..h], &mut a_g[..h], &mut a_o[..h]);
    let (c_next, c_act, h_next) = (&mut c_next[..h], &mut c_act[..h], &mut h_next[..h]);
    for j in 0..h {
        let i = gate.apply(a_i[j]);
        let f = gate.apply(a_f[j]);
        let g = cell.apply(a_g[j]);
        let o = gate.apply(a_o[j]);
        let c = f * c_prev[j] + i * g;
        let cc = cell.apply(c);
        (a_i[j], a_f[j], a_g[j], a_o[j]) = (i, f, g, o);
        (c_next[j], c_act[j], h_next[j]) = (c, cc, o * cc);
    }
}

/// The backward pass over a block of rows (rows `first..` of all blocks of a stacked
/// step, whose cache rows repeat every `batch` rows): the gate gradients
/// `δa = [δa_i δa_f δa_g δa_o]` and `∂L/∂c_{t−1}`.
pub(super) struct BackwardRows<'a, F, G, C> {
    pub gate: &'a G,
    pub cell: &'a C,
    pub first: usize,
    /// The activated gates `[i f g o]` of the step's `batch` rows.
    pub gates: ArrayView2<'a, F>,
    /// Their pre-activations when kept, else `None` (derivatives then read the outputs).
    pub pre: Option<ArrayView2<'a, F>>,
    pub c_act: ArrayView2<'a, F>,
    pub c: ArrayView2<'a, F>,
    pub c_prev: ArrayView2<'a, F>,
    /// `[∂L/∂h_t | ∂L/∂c_t]` of the block.
    pub d_next: ArrayView2<'a, F>,
    pub da: ArrayViewMut2<'a, F>,
    pub d_prev_c: ArrayViewMut2<'a, F>,
}

impl<F: Float, G: Activation<F>, C: Activation<F>> WideLoop for BackwardRows<'_, F, G, C> {
    type Output = ();

    #[inline(always)]
    fn run(mut self) {
        let (gate, cell) = (self.gate, self.cell);
        let (h, batch) = (self.c.ncols(), self.c.nrows());
        for r in 0..self.da.nrows() {
            let b = (self.first + r) % batch;
            let a = row_of(&self.gates, b);
            let x = self.pre.as_ref().map_or(a, |pre| row_of(pre, b));
            let (dh, dc_next) = row_of(&self.d_next, r).split_at(h);
            let inputs = BackwardInputs {
                a: [&a[..h], &a[h..2 * h], &a[2 * h..3 * h], &a[3 * h..4 * h]],
                x: [&x[..h], &x[h..2 * h], &x[2 * h..3 * h], &x[3 * h..4 * h]],
                c: row_of(&self.c, b),
                c_act: row_of(&self.c_act, b),
                c_prev: row_of(&self.c_prev, b),
                dh,
                dc_next,
            };
            let d_prev_c = row_of_mut(&mut self.d_prev_c, r);
            let (da_i, rest) = row_of_mut(&mut self.da, r).split_at_mut(h);
            let (da_f, rest) = rest.split_at_mut(h);
            let (da_g, da_o) = rest.split_at_mut(h);
            backward_units((gate, cell), inputs, da_i, da_f, da_g, da_o, d_prev_c);
        }
    }
}

/// What one row of [`BackwardRows`] reads.
struct BackwardInputs<'r, F> {
    /// The gates `[i f g o]`.
    a: [&'r [F]; 4],
    /// What the gates' derivatives read: their pre-activations, or the gates again.
    x: [&'r [F]; 4],
    c: &'r [F],
    c_act: &'r [F],
    c_prev: &'r [F],
    dh: &'r [F],
    dc_next: &'r [F],
}

/// One row of [`BackwardRows`]: `δc = δc_t + δh ⊙ o ⊙ C'(c_t)`, the four gate gradients
/// and `∂L/∂c_{t−1} = δc ⊙ f`. Each output is a parameter of its own, as in
/// [`forward_units`].
#[inline(always)]
#[allow(clippy::too_many_arguments)] // one per output, as in `forward_units`
fn backward_units<F: Float, G: Activation<F>, C: Activation<F>>(
    (gate, cell): (&G, &C),
    inputs: BackwardInputs<'_, F>,
    da_i: &mut [F],
    da_f: &mut [F],
    da_g: &mut [F],
    da_o: &mut [F],
    d_prev_c: &mut [F],
) {
    let h = inputs.c.len();
    let [i, f, g, o] = inputs.a.map(|v| &v[..h]);
    let [x_i, x_f, x_g, x_o] = inputs.x.map(|v| &v[..h]);
    let (c, cc, c_prev) = (inputs.c, &inputs.c_act[..h], &inputs.c_prev[..h]);
    let (dh, dc_next) = (&inputs.dh[..h], &inputs.dc_next[..h]);
    let (da_i, da_f, da_g, da_o) = (
        &mut da_i[..h],
        &mut da_f[..h],
        &mut da_g[..h],
        &mut da_o[..h],
    );
    let d_prev_c = &mut d_prev_c[..h];
    for j in 0..h {
        let dc = dc_next[j] + dh[j] * o[j] * slope(cell, Some(c[j]), cc[j]);
        da_o[j] = dh[j] * cc[j] * slope(gate, Some(x_o[j]), o[j]);
        da_i[j] = dc * g[j] * slope(gate, Some(x_i[j]), i[j]);
        da_g[j] = dc * i[j] * slope(cell, Some(x_g[j]), g[j]);
        da_f[j] = dc * c_prev[j] * slope(gate, Some(x_f[j]), f[j]);
        d_prev_c[j] = dc * f[j];
    }
}
