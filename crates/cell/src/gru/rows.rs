//! The element-wise parts of a GRU step, one pass per row.
//!
//! As for the LSTM (`lstm/rows.rs`), every pass works through a row at a time while it is
//! in L1, compiled for the widest vectors the CPU has ([`run_wide`](recur_core::linalg::run_wide)),
//! with the operations of the formulas in [`Gru`](super::Gru) in their order, so results
//! do not depend on the instruction set or on how rows are split into blocks.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut2};
use recur_core::activation::Activation;
use recur_core::linalg::WideLoop;
use recur_core::Float;

use crate::gated::{add_bias, row_of, row_of_mut, slope};

/// One block of rows of a [`Gru`](super::Gru) forward step: the step's matrices cut to
/// the same rows, all with contiguous rows.
pub(super) struct GruRows<'a, F> {
    /// `x·W_ih` on entry, then the activated gates `[r z n]`.
    pub a: ArrayViewMut2<'a, F>,
    /// `h·W_hh` (its `n` block only once the second part starts, for reset before), plus
    /// `b_hh`.
    pub u: ArrayViewMut2<'a, F>,
    pub reset_h: ArrayViewMut2<'a, F>,
    pub pre: Option<ArrayViewMut2<'a, F>>,
    pub prev: ArrayView2<'a, F>,
    pub next: ArrayViewMut2<'a, F>,
}

/// Which part of the forward step a [`ForwardRows`] pass computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    /// The biases, `r`, `z`, and for reset before `r ⊙ h_{t−1}`.
    Gates,
    /// The candidate `n` and the output `h_t`.
    Output,
    /// Both, row by row (reset after: nothing has to happen in between).
    Both,
}

/// A forward pass over a block of rows.
pub(super) struct ForwardRows<'a, F, G, C> {
    pub gate: &'a G,
    pub cell: &'a C,
    pub b_ih: Option<ArrayView1<'a, F>>,
    pub b_hh: Option<ArrayView1<'a, F>>,
    pub reset_after: bool,
    pub part: Part,
    pub rows: GruRows<'a, F>,
}

impl<F: Float, G: Activation<F>, C: Activation<F>> WideLoop for ForwardRows<'_, F, G, C> {
    type Output = ();

    #[inline(always)]
    fn run(mut self) {
        for r in 0..self.rows.a.nrows() {
            if self.part != Part::Output {
                self.gates(r);
            }
            if self.part != Part::Gates {
                self.output(r);
            }
        }
    }
}

impl<F: Float, G: Activation<F>, C: Activation<F>> ForwardRows<'_, F, G, C> {
    /// Row `r`: `a += b_ih`, `u += b_hh`, `[r z] = G(a_rz + u_rz)`, and `r ⊙ h_{t−1}` for
    /// reset before.
    #[inline(always)]
    fn gates(&mut self, r: usize) {
        let rows = &mut self.rows;
        let (a, u) = (row_of_mut(&mut rows.a, r), row_of_mut(&mut rows.u, r));
        let h = a.len() / 3;
        add_bias(a, self.b_ih.as_ref());
        add_bias(u, self.b_hh.as_ref());
        let rz = &mut a[..2 * h];
        for (a, &u) in rz.iter_mut().zip(&u[..2 * h]) {
            *a += u;
        }
        if let Some(pre) = &mut rows.pre {
            row_of_mut(pre, r)[..2 * h].copy_from_slice(rz);
        }
        for v in rz.iter_mut() {
            *v = self.gate.apply(*v);
        }
        if !self.reset_after {
            let reset_h = row_of_mut(&mut rows.reset_h, r);
            for ((rh, &g_r), &hp) in reset_h.iter_mut().zip(&rz[..h]).zip(row_of(&rows.prev, r)) {
                *rh = g_r * hp;
            }
        }
    }

    /// Row `r`: `n = C(a_n + r ⊙ u_n)` (reset after) or `C(a_n + u_n)` (reset before),
    /// and `h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}`.
    #[inline(always)]
    fn output(&mut self, r: usize) {
        let rows = &mut self.rows;
        let a = row_of_mut(&mut rows.a, r);
        let h = a.len() / 3;
        let (rz, n) = a.split_at_mut(2 * h);
        let u = rows.u.view();
        let u_n = &row_of(&u, r)[2 * h..];
        if self.reset_after {
            for ((n, &g_r), &un) in n.iter_mut().zip(&rz[..h]).zip(u_n) {
                *n += g_r * un;
            }
        } else {
            for (n, &un) in n.iter_mut().zip(u_n) {
                *n += un;
            }
        }
        if let Some(pre) = &mut rows.pre {
            row_of_mut(pre, r)[2 * h..].copy_from_slice(n);
        }
        for v in n.iter_mut() {
            *v = self.cell.apply(*v);
        }
        let (z, prev) = (&rz[h..], row_of(&rows.prev, r));
        let next = row_of_mut(&mut rows.next, r);
        for (((out, &z), &n), &hp) in next.iter_mut().zip(z).zip(&*n).zip(prev) {
            *out = (F::one() - z) * n + z * hp;
        }
    }
}

/// The backward pass over a block of rows (rows `first..` of all blocks of a stacked
/// step, whose cache rows repeat every `batch` rows): `δz`, `δn` and
/// `∂L/∂h_{t−1} = δh ⊙ z` so far, and for reset after `δr` and the recurrent side
/// `δu = [δr, δz, r ⊙ δn]`; reset before's `δr` needs a product first.
pub(super) struct BackwardRows<'a, F, G, C> {
    pub gate: &'a G,
    pub cell: &'a C,
    pub reset_after: bool,
    pub first: usize,
    /// The activated gates `[r z n]` of the step's `batch` rows.
    pub gates: ArrayView2<'a, F>,
    /// Their pre-activations when kept, else `None` (derivatives then read the outputs).
    pub pre: Option<ArrayView2<'a, F>>,
    /// The recurrent product `u` of the step.
    pub u: ArrayView2<'a, F>,
    pub prev: ArrayView2<'a, F>,
    pub d_next: ArrayView2<'a, F>,
    /// `[δa | δu]`, `6·hidden` columns.
    pub buffer: ArrayViewMut2<'a, F>,
    pub d_prev: ArrayViewMut2<'a, F>,
}

impl<F: Float, G: Activation<F>, C: Activation<F>> WideLoop for BackwardRows<'_, F, G, C> {
    type Output = ();

    #[inline(always)]
    fn run(mut self) {
        let batch = self.prev.nrows();
        for r in 0..self.buffer.nrows() {
            let b = (self.first + r) % batch;
            let a = row_of(&self.gates, b);
            let x = self.pre.as_ref().map_or(a, |pre| row_of(pre, b));
            let h = a.len() / 3;
            let inputs = BackwardInputs {
                a: [&a[..h], &a[h..2 * h], &a[2 * h..3 * h]],
                x: [&x[..h], &x[h..2 * h], &x[2 * h..3 * h]],
                u_n: &row_of(&self.u, b)[2 * h..],
                prev: row_of(&self.prev, b),
                dh: row_of(&self.d_next, r),
            };
            let (da, du) = row_of_mut(&mut self.buffer, r).split_at_mut(3 * h);
            let (da_r, da_zn) = da.split_at_mut(h);
            let (da_z, da_n) = da_zn.split_at_mut(h);
            let (du_r, du_zn) = du.split_at_mut(h);
            let (du_z, du_n) = du_zn.split_at_mut(h);
            let d_prev = row_of_mut(&mut self.d_prev, r);
            let acts = (self.gate, self.cell);
            if self.reset_after {
                backward_units::<_, _, _, true>(
                    acts, inputs, da_r, da_z, da_n, du_r, du_z, du_n, d_prev,
                );
            } else {
                backward_units::<_, _, _, false>(
                    acts, inputs, da_r, da_z, da_n, du_r, du_z, du_n, d_prev,
                );
            }
        }
    }
}

/// What one row of [`BackwardRows`] reads.
struct BackwardInputs<'r, F> {
    /// The gates `[r z n]`.
    a: [&'r [F]; 3],
    /// What the gates' derivatives read: their pre-activations, or the gates again.
    x: [&'r [F]; 3],
    u_n: &'r [F],
    prev: &'r [F],
    dh: &'r [F],
}

/// One row of [`BackwardRows`]. A function of its own, with each output a parameter of its
/// own, so that the compiler knows the outputs overlap nothing else and vectorises the loop
/// without run-time checks. `RESET_AFTER` also writes `δr` and `δu`; without it they are
/// left for after the product that reset before needs.
#[inline(always)]
#[allow(clippy::too_many_arguments)] // one per output, for the reason above
fn backward_units<F: Float, G: Activation<F>, C: Activation<F>, const RESET_AFTER: bool>(
    (gate, cell): (&G, &C),
    inputs: BackwardInputs<'_, F>,
    da_r: &mut [F],
    da_z: &mut [F],
    da_n: &mut [F],
    du_r: &mut [F],
    du_z: &mut [F],
    du_n: &mut [F],
    d_prev: &mut [F],
) {
    let h = inputs.prev.len();
    let [r, z, n] = inputs.a.map(|v| &v[..h]);
    let [x_r, x_z, x_n] = inputs.x.map(|v| &v[..h]);
    let (u_n, prev, dh) = (&inputs.u_n[..h], inputs.prev, &inputs.dh[..h]);
    let (da_r, da_z, da_n) = (&mut da_r[..h], &mut da_z[..h], &mut da_n[..h]);
    let (du_r, du_z, du_n) = (&mut du_r[..h], &mut du_z[..h], &mut du_n[..h]);
    let d_prev = &mut d_prev[..h];
    for j in 0..h {
        let dz = dh[j] * (prev[j] - n[j]) * slope(gate, Some(x_z[j]), z[j]);
        let dn = dh[j] * (F::one() - z[j]) * slope(cell, Some(x_n[j]), n[j]);
        (da_z[j], da_n[j], d_prev[j]) = (dz, dn, dh[j] * z[j]);
        if RESET_AFTER {
            let dr = dn * u_n[j] * slope(gate, Some(x_r[j]), r[j]);
            (da_r[j], du_r[j], du_z[j], du_n[j]) = (dr, dr, dz, dn * r[j]);
        }
    }
}
