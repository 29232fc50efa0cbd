//! Every equation of `docs/bptt.md`, checked numerically against the engine.
//!
//! The hand computations below are written in the column-vector notation of the guide
//! (`z_t = U x_t + W s_{t−1}`, `s_t = f(z_t)`, `a_t = V s_t`), with `U = W_xhᵀ`, `W = W_hhᵀ`
//! and `V = W_hyᵀ` read from recur's input-major parameters. Steps are numbered from 0, and
//! `s_{−1} = 0`. All comparisons are in `f64` to 1e-12.

use std::sync::atomic::{AtomicUsize, Ordering};

use ndarray::{Array1, Array2, Array3, ArrayView2, ArrayViewMut2};
use rand::{rngs::StdRng, Rng, SeedableRng};
use recur::cell::{ElmanCache, ElmanParams, LinearParams};
use recur::core::params;
use recur::loss::IGNORE;
use recur::prelude::*;
use recur::{Gradients, Result};

const TOL: f64 = 1e-12;

fn max_diff(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    (a - b).iter().fold(0.0, |m, d| m.max(d.abs()))
}

fn max_diff1(a: &Array1<f64>, b: &Array1<f64>) -> f64 {
    assert_eq!(a.len(), b.len());
    (a - b).iter().fold(0.0, |m, d| m.max(d.abs()))
}

fn outer(a: &Array1<f64>, b: &Array1<f64>) -> Array2<f64> {
    Array2::from_shape_fn((a.len(), b.len()), |(i, j)| a[i] * b[j])
}

fn diag(d: &Array1<f64>) -> Array2<f64> {
    Array2::from_diag(d)
}

// ---------------------------------------------------------------------------------------
// The tutorial's model, by hand
// ---------------------------------------------------------------------------------------

/// A token-input Elman model with a softmax readout, no biases (the tutorial's model).
fn token_model<A: Activation<f64>>(
    act: A,
    vocab: usize,
    hidden: usize,
    scale: f64,
    seed: u64,
) -> Model<f64, Elman<f64, A>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let init = Init::Uniform {
        low: -scale,
        high: scale,
    };
    let cell = ElmanConfig::new(vocab, hidden)
        .with_init(init)
        .init(act, &mut rng)
        .unwrap();
    let readout = LinearConfig::new(hidden, vocab)
        .with_init(init)
        .init(&mut rng)
        .unwrap();
    Model::new(cell, readout).unwrap()
}

/// `U`, `W`, `V` in the guide's (column-vector) layout.
struct Weights {
    u: Array2<f64>,
    w: Array2<f64>,
    v: Array2<f64>,
}

fn weights<A: Activation<f64>>(m: &Model<f64, Elman<f64, A>>) -> Weights {
    Weights {
        u: m.cell().weights().w_xh.t().to_owned(),
        w: m.cell().weights().w_hh.t().to_owned(),
        v: m.readout().weights().w_hy.t().to_owned(),
    }
}

/// The forward pass of one token sequence: `s[t + 1] = s_t` (`s[0] = s_{−1} = 0`),
/// `fp[t] = f′(z_t)`, `d_o[t] = δo_t = softmax(V s_t) − e_{y_t}`.
struct Forward {
    s: Vec<Array1<f64>>,
    fp: Vec<Array1<f64>>,
    d_o: Vec<Array1<f64>>,
}

fn forward<A: Activation<f64>>(wt: &Weights, act: &A, x: &[usize], y: &[usize]) -> Forward {
    let hidden = wt.w.nrows();
    let mut s = vec![Array1::zeros(hidden)];
    let (mut fp, mut d_o) = (Vec::new(), Vec::new());
    for (t, &token) in x.iter().enumerate() {
        let z = wt.u.column(token).to_owned() + wt.w.dot(&s[t]);
        let s_t = z.mapv(|v| act.apply(v));
        fp.push(s_t.mapv(|v| act.derivative(v, v)));
        let a = wt.v.dot(&s_t);
        let max = a.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        let e = a.mapv(|v| (v - max).exp());
        let mut d = &e / e.sum();
        d[y[t]] -= 1.0;
        d_o.push(d);
        s.push(s_t);
    }
    Forward { s, fp, d_o }
}

/// `δ_t^{(k)} = ∂L_t/∂z_k` for `k = 0..=t` (index `k`), by the recursion of the guide:
/// `δ_t^{(t)} = (Vᵀ δo_t) ⊙ f′(z_t)` and `δ_t^{(k−1)} = J_kᵀ δ_t^{(k)}` with the Jacobian
/// `J_k = ∂z_k/∂z_{k−1} = W · diag(f′(z_{k−1}))` formed as a matrix.
fn deltas(wt: &Weights, f: &Forward, t: usize) -> Vec<Array1<f64>> {
    let mut out = vec![Array1::zeros(0); t + 1];
    out[t] = wt.v.t().dot(&f.d_o[t]) * &f.fp[t];
    for k in (1..=t).rev() {
        let jacobian = wt.w.dot(&diag(&f.fp[k - 1]));
        out[k - 1] = jacobian.t().dot(&out[k]);
    }
    out
}

/// Hand gradients `(dU, dW, dV)` for a list of `(output t, lowest step b)`: each output's
/// error reaches steps `b..=t`.
fn truncated_grads(
    wt: &Weights,
    f: &Forward,
    x: &[usize],
    terms: &[(usize, usize)],
) -> (Array2<f64>, Array2<f64>, Array2<f64>) {
    let mut d_u = Array2::zeros(wt.u.raw_dim());
    let mut d_w = Array2::zeros(wt.w.raw_dim());
    let mut d_v = Array2::zeros(wt.v.raw_dim());
    for &(t, lowest) in terms {
        d_v += &outer(&f.d_o[t], &f.s[t + 1]);
        let delta = deltas(wt, f, t);
        for k in lowest..=t {
            d_w += &outer(&delta[k], &f.s[k]); // f.s[k] = s_{k−1}
            let mut column = d_u.column_mut(x[k]);
            column += &delta[k];
        }
    }
    (d_u, d_w, d_v)
}

/// The engine's gradient for one token sequence, as `(dU, dW, dV)` in the guide's layout.
fn engine_grads<A: Activation<f64>>(
    m: &Model<f64, Elman<f64, A>>,
    truncation: Truncation,
    reduction: Reduction,
    x: &[usize],
    y: &[usize],
) -> (Array2<f64>, Array2<f64>, Array2<f64>) {
    let g = engine_raw(m, truncation, reduction, x, y);
    (
        g.cell.w_xh.t().to_owned(),
        g.cell.w_hh.t().to_owned(),
        g.readout.w_hy.t().to_owned(),
    )
}

fn engine_raw<A: Activation<f64>>(
    m: &Model<f64, Elman<f64, A>>,
    truncation: Truncation,
    reduction: Reduction,
    x: &[usize],
    y: &[usize],
) -> Gradients<f64, Elman<f64, A>> {
    let mut engine = Bptt::new(truncation, reduction);
    let mut g = m.zero_grads();
    let batch = SeqBatch::sentence(x, y).unwrap();
    engine
        .accumulate(m, &SoftmaxCrossEntropy, batch, None, &mut g)
        .unwrap();
    g
}

fn assert_grads_eq(
    label: &str,
    engine: &(Array2<f64>, Array2<f64>, Array2<f64>),
    hand: &(Array2<f64>, Array2<f64>, Array2<f64>),
) {
    let (du, dw, dv) = (
        max_diff(&engine.0, &hand.0),
        max_diff(&engine.1, &hand.1),
        max_diff(&engine.2, &hand.2),
    );
    assert!(
        du < TOL && dw < TOL && dv < TOL,
        "{label}: dU {du:e}, dW {dw:e}, dV {dv:e}"
    );
}

fn random_sentence(len: usize, vocab: usize, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let x = (0..len).map(|_| rng.random_range(0..vocab)).collect();
    let y = (0..len).map(|_| rng.random_range(0..vocab)).collect();
    (x, y)
}

// ---------------------------------------------------------------------------------------
// dL/dV
// ---------------------------------------------------------------------------------------

/// `∂L/∂V = Σ_{t=0}^{T−1} δo_t s_tᵀ`: each term needs step t only, and no truncation scheme
/// that keeps every output changes it.
#[test]
fn dl_dv_is_a_sum_of_per_step_outer_products() {
    let (vocab, hidden) = (9, 5);
    let m = token_model(Tanh, vocab, hidden, 0.7, 1);
    let wt = weights(&m);
    let (x, y) = random_sentence(11, vocab, 2);
    let f = forward(&wt, &Tanh, &x, &y);
    let mut d_v = Array2::zeros(wt.v.raw_dim());
    for t in 0..x.len() {
        d_v += &outer(&f.d_o[t], &f.s[t + 1]);
    }
    for truncation in [
        Truncation::full(),
        Truncation::per_output(0).unwrap(),
        Truncation::chunked(3).unwrap(),
        Truncation::new(4, 2).unwrap(),
    ] {
        let (_, _, engine_dv) = engine_grads(&m, truncation, Reduction::Sum, &x, &y);
        let diff = max_diff(&engine_dv, &d_v);
        assert!(diff < TOL, "{truncation}: {diff:e}");
    }
}

// ---------------------------------------------------------------------------------------
// delta_t and the Jacobian step
// ---------------------------------------------------------------------------------------

/// `δ_t^{(k)} = ∂L_t/∂z_k`, read straight from the engine: with only output t counted and a
/// different token at every step, row `x_k` of `∂L/∂W_xh` (column `x_k` of `∂L/∂U`) is
/// `δ_t^{(k)}` alone. The hand recursion uses `J_k = W·diag(f′(z_{k−1}))` and `J_kᵀ`; the
/// transposed-wrong variant `diag(f′)·W` is checked to differ, so the test discriminates.
#[test]
fn delta_t_is_dl_t_dz_k_and_steps_back_with_the_transposed_jacobian() {
    let (vocab, hidden, len) = (12, 4, 8);
    let m = token_model(Tanh, vocab, hidden, 0.9, 3);
    let wt = weights(&m);
    let x: Vec<usize> = (0..len).map(|t| (5 * t + 1) % vocab).collect();
    let y: Vec<usize> = (0..len).map(|t| (5 * t + 2) % vocab).collect();
    let f = forward(&wt, &Tanh, &x, &y);
    for t in 0..len {
        let only_t: Vec<usize> = (0..len)
            .map(|s| if s == t { y[s] } else { IGNORE })
            .collect();
        let (d_u, _, _) = engine_grads(&m, Truncation::full(), Reduction::Sum, &x, &only_t);
        let delta = deltas(&wt, &f, t);
        for k in 0..=t {
            let read = d_u.column(x[k]).to_owned();
            let diff = max_diff1(&read, &delta[k]);
            assert!(diff < TOL, "δ_{t}^({k}): {diff:e}");
        }
        for (k, &token) in x.iter().enumerate().skip(t + 1) {
            assert!(
                d_u.column(token).iter().all(|v| *v == 0.0),
                "δ_{t}^({k}) must be 0"
            );
        }
        if t >= 1 {
            let wrong = diag(&f.fp[t - 1]).dot(&wt.w).t().dot(&delta[t]);
            assert!(max_diff1(&wrong, &delta[t - 1]) > 1e-6);
        }
    }
}

// ---------------------------------------------------------------------------------------
// dL/dW and dL/dU: sums over earlier steps, and the one-sweep recursion
// ---------------------------------------------------------------------------------------

/// `∂L/∂W = Σ_t Σ_{k=0}^{t} δ_t^{(k)} s_{k−1}ᵀ` and `∂L/∂U = Σ_t Σ_{k=0}^{t} δ_t^{(k)} x_kᵀ`,
/// the latter as the column scatter `dU[:, x_k] += δ_t^{(k)}` (tokens repeat here).
#[test]
fn dl_dw_and_dl_du_are_double_sums_over_outputs_and_earlier_steps() {
    let (vocab, hidden) = (6, 5);
    let m = token_model(Tanh, vocab, hidden, 0.8, 4);
    let wt = weights(&m);
    let (x, y) = random_sentence(10, vocab, 5);
    let f = forward(&wt, &Tanh, &x, &y);
    let terms: Vec<(usize, usize)> = (0..x.len()).map(|t| (t, 0)).collect();
    let hand = truncated_grads(&wt, &f, &x, &terms);
    let engine = engine_grads(&m, Truncation::full(), Reduction::Sum, &x, &y);
    assert_grads_eq("full", &engine, &hand);

    // Row scatter in recur's layout: only the rows of tokens that occur are touched.
    let g = engine_raw(&m, Truncation::full(), Reduction::Sum, &x, &y);
    let mut seen: Vec<usize> = x.clone();
    seen.sort_unstable();
    seen.dedup();
    let mut rows = g
        .cell
        .slot(0)
        .rows
        .expect("token inputs report rows")
        .to_vec();
    rows.sort_unstable();
    assert_eq!(rows, seen);
    for token in (0..vocab).filter(|v| !seen.contains(v)) {
        assert!(g.cell.w_xh.row(token).iter().all(|v| *v == 0.0));
    }
}

/// Without truncation one backward sweep suffices: `δ_k = ∂L/∂z_k = Σ_{t≥k} δ_t^{(k)}`
/// obeys `δ_k = (Vᵀ δo_k + Wᵀ δ_{k+1}) ⊙ f′(z_k)` with `δ_T = 0`, and
/// `∂L/∂W = Σ_k δ_k s_{k−1}ᵀ`, `∂L/∂U = Σ_k δ_k x_kᵀ`, `∂L/∂b_h = Σ_k δ_k`.
#[test]
fn one_sweep_with_summed_deltas_gives_the_full_gradient() {
    let (vocab, hidden, len) = (7, 4, 9);
    let mut m = token_model(Tanh, vocab, hidden, 0.8, 6);
    let wt = weights(&m);
    let (x, y) = random_sentence(len, vocab, 7);
    let f = forward(&wt, &Tanh, &x, &y);

    // Linearity: the sum of the per-output deltas is the one-sweep delta.
    let mut sweep = vec![Array1::<f64>::zeros(hidden); len + 1];
    for k in (0..len).rev() {
        sweep[k] = (wt.v.t().dot(&f.d_o[k]) + wt.w.t().dot(&sweep[k + 1])) * &f.fp[k];
    }
    let per_output: Vec<Vec<Array1<f64>>> = (0..len).map(|t| deltas(&wt, &f, t)).collect();
    for k in 0..len {
        let mut summed = Array1::zeros(hidden);
        for delta in &per_output[k..] {
            summed += &delta[k];
        }
        assert!(max_diff1(&summed, &sweep[k]) < TOL, "δ_{k}");
    }
    let mut d_u = Array2::zeros(wt.u.raw_dim());
    let mut d_w = Array2::zeros(wt.w.raw_dim());
    let mut d_b = Array1::zeros(hidden);
    for k in 0..len {
        d_w += &outer(&sweep[k], &f.s[k]);
        let mut column = d_u.column_mut(x[k]);
        column += &sweep[k];
        d_b += &sweep[k];
    }
    let engine = engine_grads(&m, Truncation::full(), Reduction::Sum, &x, &y);
    assert!(max_diff(&engine.0, &d_u) < TOL);
    assert!(max_diff(&engine.1, &d_w) < TOL);

    // A bias is a column of U fed by a constant 1. A zero bias leaves the forward pass
    // (and so every δ_k) unchanged.
    let p = m.cell().weights().clone();
    let with_bias = ElmanParams::new(p.w_xh, p.w_hh, Some(Array1::zeros(hidden))).unwrap();
    *m.cell_mut() = Elman::from_params(with_bias, Tanh).unwrap();
    let g = engine_raw(&m, Truncation::full(), Reduction::Sum, &x, &y);
    assert!(max_diff1(g.cell.b_h.as_ref().unwrap(), &d_b) < TOL);
}

// ---------------------------------------------------------------------------------------
// The binary-addition line
// ---------------------------------------------------------------------------------------

fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

/// `layer_1_delta = (future_layer_1_delta·W_hᵀ + layer_2_delta·W_1ᵀ) ⊙ σ′(layer_1)`, written
/// as the classic binary-addition program writes it (row vectors, `synapse_0 = W_xh`,
/// `synapse_h = W_hh`, `synapse_1 = W_hy`, deltas with the sign of `y − ŷ`), equals minus
/// the engine's `∂L/∂z_t` for `L = Σ_t ½(ŷ_t − y_t)²`, step by step and in every weight.
///
/// Each step's delta is read from the engine through a probe: an extra input feature that
/// is 1 at step k only and whose weight row is zero. It leaves the forward pass unchanged,
/// and its weight gradient is `1·∂L/∂z_k`.
#[test]
fn binary_addition_line_is_the_engines_hidden_delta() {
    let (bits, hidden) = (8usize, 6usize);
    let inputs = 2 + bits;
    let mut rng = StdRng::seed_from_u64(8);
    let syn0_real = Array2::from_shape_fn((2, hidden), |_| rng.random_range(-1.0..1.0));
    let syn_h = Array2::from_shape_fn((hidden, hidden), |_| rng.random_range(-1.0..1.0));
    let syn1 = Array2::from_shape_fn((hidden, 1), |_| rng.random_range(-1.0..1.0));
    let mut syn0 = Array2::zeros((inputs, hidden));
    syn0.slice_mut(ndarray::s![..2, ..]).assign(&syn0_real);

    // 83 + 46 = 129, bits least significant first.
    let (a, b) = (83u32, 46u32);
    let c = a + b;
    let bit = |n: u32, i: usize| f64::from((n >> i) & 1);
    let mut x = Array3::zeros((bits, 1, inputs));
    let mut y = Array3::zeros((bits, 1, 1));
    for i in 0..bits {
        x[[i, 0, 0]] = bit(a, i);
        x[[i, 0, 1]] = bit(b, i);
        x[[i, 0, 2 + i]] = 1.0; // the probe of step i
        y[[i, 0, 0]] = bit(c, i);
    }

    // The program's forward loop.
    let row = |v: &[f64]| Array2::from_shape_vec((1, v.len()), v.to_vec()).unwrap();
    let mut layer_1_values = vec![Array2::<f64>::zeros((1, hidden))];
    let mut layer_2_deltas = Vec::new();
    for i in 0..bits {
        let xi = row(x.slice(ndarray::s![i, 0, ..]).as_slice().unwrap());
        let layer_1 = (xi.dot(&syn0) + layer_1_values[i].dot(&syn_h)).mapv(sigmoid);
        let layer_2 = layer_1.dot(&syn1).mapv(sigmoid);
        let layer_2_error = -(&layer_2 - y[[i, 0, 0]]);
        layer_2_deltas.push(&layer_2_error * &layer_2.mapv(|o| o * (1.0 - o)));
        layer_1_values.push(layer_1);
    }
    // The program's backward loop, with the line under study.
    let mut future_layer_1_delta = Array2::<f64>::zeros((1, hidden));
    let mut layer_1_deltas = vec![Array2::zeros((1, hidden)); bits];
    let (mut syn0_update, mut syn_h_update, mut syn1_update) = (
        Array2::<f64>::zeros(syn0.raw_dim()),
        Array2::<f64>::zeros(syn_h.raw_dim()),
        Array2::<f64>::zeros(syn1.raw_dim()),
    );
    for i in (0..bits).rev() {
        let xi = row(x.slice(ndarray::s![i, 0, ..]).as_slice().unwrap());
        let layer_1 = &layer_1_values[i + 1];
        let prev_layer_1 = &layer_1_values[i];
        let layer_2_delta = &layer_2_deltas[i];
        let future_source = future_layer_1_delta.dot(&syn_h.t());
        let output_source = layer_2_delta.dot(&syn1.t());
        let derivative = layer_1.mapv(|h| h * (1.0 - h));
        let layer_1_delta = (future_source + output_source) * derivative;
        syn1_update += &layer_1.t().dot(layer_2_delta);
        syn_h_update += &prev_layer_1.t().dot(&layer_1_delta);
        syn0_update += &xi.t().dot(&layer_1_delta);
        layer_1_deltas[i] = layer_1_delta.clone();
        future_layer_1_delta = layer_1_delta;
    }

    let cell = Elman::from_params(
        ElmanParams::new(syn0.clone(), syn_h.clone(), None).unwrap(),
        Sigmoid,
    )
    .unwrap();
    let readout = Linear::from_params(LinearParams {
        w_hy: syn1.clone(),
        b_y: None,
    })
    .unwrap();
    let model = Model::new(cell, readout).unwrap();
    let mut engine = Bptt::new(Truncation::full(), Reduction::Sum);
    let mut g = model.zero_grads();
    let batch = SeqBatch {
        inputs: SeqInput::Dense(x.view()),
        targets: SeqTargets::Dense(y.view()),
    };
    engine
        .accumulate(&model, &MeanSquaredError::new(Sigmoid), batch, None, &mut g)
        .unwrap();

    for (i, delta) in layer_1_deltas.iter().enumerate() {
        let dz = g.cell.w_xh.row(2 + i).to_owned();
        let diff = max_diff1(&dz, &-delta.row(0).to_owned());
        assert!(diff < TOL, "step {i}: {diff:e}");
    }
    assert!(max_diff(&g.cell.w_xh, &-&syn0_update) < TOL);
    assert!(max_diff(&g.cell.w_hh, &-&syn_h_update) < TOL);
    assert!(max_diff(&g.readout.w_hy, &-&syn1_update) < TOL);
    assert!(layer_1_deltas[0].iter().any(|v| v.abs() > 1e-4));
}

// ---------------------------------------------------------------------------------------
// Truncation schemes as sums with explicit limits
// ---------------------------------------------------------------------------------------

/// `per_output(K)`: `Σ_{t=0}^{T−1} Σ_{k=max(0, t−K)}^{t}`.
#[test]
fn per_output_truncation_has_the_stated_limits() {
    let (vocab, hidden, len) = (8, 5, 12);
    let m = token_model(Tanh, vocab, hidden, 0.9, 9);
    let wt = weights(&m);
    let (x, y) = random_sentence(len, vocab, 10);
    let f = forward(&wt, &Tanh, &x, &y);
    for k_max in [0, 1, 2, 4, 11, 30] {
        let terms: Vec<(usize, usize)> = (0..len).map(|t| (t, t.saturating_sub(k_max))).collect();
        let hand = truncated_grads(&wt, &f, &x, &terms);
        let engine = engine_grads(
            &m,
            Truncation::per_output(k_max).unwrap(),
            Reduction::Sum,
            &x,
            &y,
        );
        assert_grads_eq(&format!("per_output({k_max})"), &engine, &hand);
    }
}

/// `chunked(c)`: chunk `j` covers steps `jc .. min((j+1)c, T) − 1`, and each output of a
/// chunk reaches back to the chunk's first step: `Σ_t Σ_{k=c·⌊t/c⌋}^{t}`. The forward pass
/// is not cut: the state flows across chunk boundaries.
#[test]
fn chunked_truncation_has_the_stated_limits() {
    let (vocab, hidden, len) = (8, 5, 13);
    let m = token_model(Tanh, vocab, hidden, 0.9, 11);
    let wt = weights(&m);
    let (x, y) = random_sentence(len, vocab, 12);
    let f = forward(&wt, &Tanh, &x, &y);
    for c in [1, 2, 3, 5, 13, 20] {
        let terms: Vec<(usize, usize)> = (0..len).map(|t| (t, c * (t / c))).collect();
        let hand = truncated_grads(&wt, &f, &x, &terms);
        let engine = engine_grads(&m, Truncation::chunked(c).unwrap(), Reduction::Sum, &x, &y);
        assert_grads_eq(&format!("chunked({c})"), &engine, &hand);
    }
}

/// `last(K)`: only outputs `t ≥ T − K`, each reaching back to `T − K`:
/// `Σ_{t=T−K}^{T−1} Σ_{k=T−K}^{t}` (and `∂L/∂V` over those outputs only).
#[test]
fn last_truncation_has_the_stated_limits() {
    let (vocab, hidden, len) = (8, 5, 10);
    let m = token_model(Tanh, vocab, hidden, 0.9, 13);
    let wt = weights(&m);
    let (x, y) = random_sentence(len, vocab, 14);
    let f = forward(&wt, &Tanh, &x, &y);
    for k_last in [1, 3, 10, 15] {
        let lowest = len.saturating_sub(k_last);
        let terms: Vec<(usize, usize)> = (lowest..len).map(|t| (t, lowest)).collect();
        let hand = truncated_grads(&wt, &f, &x, &terms);
        let engine = engine_grads(
            &m,
            Truncation::last(k_last).unwrap(),
            Reduction::Sum,
            &x,
            &y,
        );
        assert_grads_eq(&format!("last({k_last})"), &engine, &hand);
    }
}

/// BPTT(h; h′): passes `j = 1..=⌈T/h′⌉` end at `e_j = min(j·h′, T) − 1` and reach back to
/// `b_j = max(0, j·h′ − h)` (for a last, partial pass too); pass j injects outputs
/// `t = max(e_{j−1} + 1, b_j) ..= e_j`, each reaching steps `b_j..=t`.
#[test]
fn general_bptt_h_h_prime_has_the_stated_limits() {
    let (vocab, hidden, len) = (8, 4, 11);
    let m = token_model(Sigmoid, vocab, hidden, 1.5, 15);
    let wt = weights(&m);
    let (x, y) = random_sentence(len, vocab, 16);
    let f = forward(&wt, &Sigmoid, &x, &y);
    for (h, hp) in [
        (1, 1),
        (3, 1),
        (2, 2),
        (3, 2),
        (5, 2),
        (7, 3),
        (4, 4),
        (6, 4),
        (20, 5),
    ] {
        let mut terms = Vec::new();
        let mut previous_end: Option<usize> = None;
        for j in 1..=len.div_ceil(hp) {
            let end = (j * hp).min(len) - 1;
            let start = (j * hp).saturating_sub(h);
            let first = previous_end.map_or(0, |e| e + 1).max(start);
            for t in first..=end {
                terms.push((t, start));
            }
            previous_end = Some(end);
        }
        let hand = truncated_grads(&wt, &f, &x, &terms);
        let engine = engine_grads(&m, Truncation::new(h, hp).unwrap(), Reduction::Sum, &x, &y);
        assert_grads_eq(&format!("bptt({h}; {hp})"), &engine, &hand);
    }
}

/// The special cases are instances of BPTT(h; h′): full = (T; T), chunked(c) = (c; c),
/// per_output(K) = (K + 1; 1).
#[test]
fn named_schemes_are_instances_of_the_general_one() {
    let (vocab, hidden, len) = (6, 4, 10);
    let m = token_model(Tanh, vocab, hidden, 0.9, 17);
    let (x, y) = random_sentence(len, vocab, 18);
    let pairs = [
        (Truncation::full(), Truncation::new(len, len).unwrap()),
        (
            Truncation::chunked(3).unwrap(),
            Truncation::new(3, 3).unwrap(),
        ),
        (
            Truncation::per_output(2).unwrap(),
            Truncation::new(3, 1).unwrap(),
        ),
    ];
    for (named, general) in pairs {
        let a = engine_raw(&m, named, Reduction::Sum, &x, &y);
        let b = engine_raw(&m, general, Reduction::Sum, &x, &y);
        let diff = params::max_abs_diff(&a, &b).unwrap();
        assert!(diff < TOL, "{named} vs {general}: {diff:e}");
    }
}

// ---------------------------------------------------------------------------------------
// Reduction
// ---------------------------------------------------------------------------------------

/// `Reduction::Mean` divides the summed gradient by the number of outputs that receive
/// gradient (T for every scheme but `last(K)`, where it is K).
#[test]
fn mean_reduction_divides_by_the_outputs_that_receive_gradient() {
    let (vocab, hidden, len) = (6, 4, 9);
    let m = token_model(Tanh, vocab, hidden, 0.9, 19);
    let (x, y) = random_sentence(len, vocab, 20);
    assert_eq!(Reduction::default(), Reduction::Mean);
    for (truncation, counted) in [
        (Truncation::full(), len),
        (Truncation::per_output(3).unwrap(), len),
        (Truncation::chunked(4).unwrap(), len),
        (Truncation::last(4).unwrap(), 4),
    ] {
        let mut mean = engine_raw(&m, truncation, Reduction::Mean, &x, &y);
        let sum = engine_raw(&m, truncation, Reduction::Sum, &x, &y);
        params::scale(&mut mean, counted as f64);
        let diff = params::max_abs_diff(&mean, &sum).unwrap();
        assert!(diff < TOL, "{truncation}: {diff:e}");
    }
}

// ---------------------------------------------------------------------------------------
// What is stored, and the cost of the stacked sweep
// ---------------------------------------------------------------------------------------

/// The engine keeps the states `s_{−1}, s_0, …, s_{T−1}` (`(T + 1)·B` rows): these, the
/// inputs and `∂L/∂s_t` from the outputs are all the sweep reads.
#[test]
fn the_engine_stores_the_hidden_states_it_computed() {
    let (vocab, hidden, len) = (7, 5, 6);
    let m = token_model(Tanh, vocab, hidden, 0.9, 21);
    let wt = weights(&m);
    let (x, y) = random_sentence(len, vocab, 22);
    let f = forward(&wt, &Tanh, &x, &y);
    let mut engine = Bptt::<f64, _>::new(Truncation::full(), Reduction::Sum);
    let batch = SeqBatch::sentence(&x, &y).unwrap();
    engine.forward(&m, batch.inputs, None).unwrap();
    let states = engine.states();
    assert_eq!(states.dim(), (len + 1, hidden));
    for (t, s) in f.s.iter().enumerate() {
        assert!(max_diff1(&states.row(t).to_owned(), s) < TOL);
    }
}

/// While streaming, the workspace holds the window, not the text: its size is the same for
/// a text ten times longer. A whole-sequence backward pass, by contrast, keeps every step.
#[test]
fn streaming_memory_is_bounded_by_the_window() {
    let (vocab, hidden) = (6, 4);
    let bytes = |len: usize, truncation: Truncation, stream: bool| {
        let mut m = token_model(Tanh, vocab, hidden, 0.5, 23);
        let (x, y) = random_sentence(len, vocab, 24);
        let (x, y) = (
            Array2::from_shape_vec((len, 1), x).unwrap(),
            Array2::from_shape_vec((len, 1), y).unwrap(),
        );
        let batch = SeqBatch {
            inputs: SeqInput::Tokens(x.view()),
            targets: SeqTargets::Classes(y.view()),
        };
        let optimizer = Box::new(Sgd::new(0.01).unwrap());
        let mut trainer = Trainer::new(&m, truncation, Reduction::Mean, optimizer);
        if stream {
            trainer
                .train_stream(&mut m, &SoftmaxCrossEntropy, batch, None, &mut |_| {})
                .unwrap();
        } else {
            trainer
                .train_batch(&mut m, &SoftmaxCrossEntropy, batch, None)
                .unwrap();
        }
        trainer.engine_mut().workspace_bytes()
    };
    for truncation in [
        Truncation::chunked(5).unwrap(),
        Truncation::per_output(3).unwrap(),
        Truncation::new(6, 2).unwrap(),
    ] {
        assert_eq!(
            bytes(40, truncation, true),
            bytes(400, truncation, true),
            "{truncation}"
        );
        assert!(bytes(400, truncation, false) > 5 * bytes(40, truncation, false));
    }
}

/// An Elman cell that counts the engine's calls to its stacked backward step.
#[derive(Debug)]
struct Counting {
    inner: Elman<f64, Tanh>,
    calls: AtomicUsize,
    blocks: AtomicUsize,
    max_blocks: AtomicUsize,
}

impl Counting {
    fn new(inner: Elman<f64, Tanh>) -> Self {
        Counting {
            inner,
            calls: AtomicUsize::new(0),
            blocks: AtomicUsize::new(0),
            max_blocks: AtomicUsize::new(0),
        }
    }

    fn reset(&self) {
        for counter in [&self.calls, &self.blocks, &self.max_blocks] {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

impl Cell<f64> for Counting {
    type Params = ElmanParams<f64>;
    type Cache = ElmanCache<f64>;
    fn input_size(&self) -> usize {
        self.inner.input_size()
    }
    fn hidden_size(&self) -> usize {
        self.inner.hidden_size()
    }
    fn params(&self) -> &dyn ParamSet<f64> {
        self.inner.params()
    }
    fn params_mut(&mut self) -> &mut dyn ParamSet<f64> {
        self.inner.params_mut()
    }
    fn zero_grads(&self) -> ElmanParams<f64> {
        self.inner.zero_grads()
    }
    fn new_cache(&self, batch: usize) -> ElmanCache<f64> {
        self.inner.new_cache(batch)
    }
    fn forward(
        &self,
        x: Input<'_, f64>,
        prev: ArrayView2<'_, f64>,
        next: ArrayViewMut2<'_, f64>,
        cache: &mut ElmanCache<f64>,
    ) -> Result<()> {
        self.inner.forward(x, prev, next, cache)
    }
    fn backward(
        &self,
        step: StepRecord<'_, f64, ElmanCache<f64>>,
        deltas: StepDeltas<'_, f64>,
        grads: &mut ElmanParams<f64>,
    ) -> Result<()> {
        self.inner.backward(step, deltas, grads)
    }
    fn backward_stacked(
        &self,
        step: StepRecord<'_, f64, ElmanCache<f64>>,
        deltas: StepDeltas<'_, f64>,
        grads: &mut ElmanParams<f64>,
    ) -> Result<()> {
        let blocks = deltas.d_next.nrows() / step.x.batch();
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.blocks.fetch_add(blocks, Ordering::Relaxed);
        self.max_blocks.fetch_max(blocks, Ordering::Relaxed);
        self.inner.backward_stacked(step, deltas, grads)
    }
}

/// `per_output(K)` makes `Σ_{t=0}^{T−1} (min(t, K) + 1) ≤ T·(K + 1)` vector–Jacobian
/// products, done by the engine as T stacked calls (one matrix product each); the stacked
/// step equals the blocks pulled back one by one, with the blocks' parameter gradients
/// summed.
#[test]
fn per_output_sweep_is_one_stacked_call_per_step() {
    let (vocab, hidden, len) = (7, 4, 15);
    let base = token_model(Tanh, vocab, hidden, 0.9, 25);
    let model = Model::new(Counting::new(base.cell().clone()), base.readout().clone()).unwrap();
    let (x, y) = random_sentence(len, vocab, 26);
    let batch = SeqBatch::sentence(&x, &y).unwrap();
    for k_max in [0usize, 1, 4, 20] {
        model.cell().reset();
        let mut engine = Bptt::new(Truncation::per_output(k_max).unwrap(), Reduction::Sum);
        let mut g = model.zero_grads();
        engine
            .accumulate(&model, &SoftmaxCrossEntropy, batch, None, &mut g)
            .unwrap();
        let products: usize = (0..len).map(|t| t.min(k_max) + 1).sum();
        assert_eq!(model.cell().calls.load(Ordering::Relaxed), len);
        assert_eq!(model.cell().blocks.load(Ordering::Relaxed), products);
        assert!(products <= len * (k_max + 1));
        let live = model.cell().max_blocks.load(Ordering::Relaxed);
        assert_eq!(live, (k_max + 1).min(len));
    }

    // BPTT(h; h′): at most ⌈h/h′⌉ live blocks at any step (batch of 2 sequences here).
    let (xs, ys) = (
        Array2::from_shape_fn((len, 2), |(t, b)| (3 * t + b) % vocab),
        Array2::from_shape_fn((len, 2), |(t, b)| (5 * t + 2 * b + 1) % vocab),
    );
    let two = SeqBatch {
        inputs: SeqInput::Tokens(xs.view()),
        targets: SeqTargets::Classes(ys.view()),
    };
    for (h, hp) in [(1, 1), (4, 1), (3, 2), (5, 2), (7, 3), (6, 6), (40, 4)] {
        model.cell().reset();
        let mut engine = Bptt::new(Truncation::new(h, hp).unwrap(), Reduction::Sum);
        let mut g = model.zero_grads();
        engine
            .accumulate(&model, &SoftmaxCrossEntropy, two, None, &mut g)
            .unwrap();
        let live = model.cell().max_blocks.load(Ordering::Relaxed);
        assert!(
            live <= h.div_ceil(hp),
            "bptt({h}; {hp}): {live} live blocks"
        );
        assert_eq!(model.cell().calls.load(Ordering::Relaxed), len);
    }

    // The stacked step against the blocks one by one.
    let cell = base.cell();
    let prev = Array2::from_shape_fn((2, hidden), |(i, j)| 0.1 * (i + 2 * j) as f64 - 0.3);
    let mut next = Array2::zeros((2, hidden));
    let mut cache = cell.new_cache(2);
    let ids = [3usize, 5];
    cell.forward(
        Input::Tokens(&ids),
        prev.view(),
        next.view_mut(),
        &mut cache,
    )
    .unwrap();
    let d = Array2::from_shape_fn((6, hidden), |(i, j)| ((i * 7 + j * 3) as f64).sin());
    let (mut stacked, mut one_by_one) = (cell.zero_grads(), cell.zero_grads());
    let (mut dp_stacked, mut dp_one) = (Array2::zeros((6, hidden)), Array2::zeros((6, hidden)));
    let step = StepRecord {
        x: Input::Tokens(&ids),
        prev: prev.view(),
        next: next.view(),
        cache: &cache,
    };
    let mut scratch = d.clone();
    let deltas = StepDeltas {
        d_next: scratch.view_mut(),
        d_prev: dp_stacked.view_mut(),
        d_x: None,
        tape: None,
    };
    cell.backward_stacked(step, deltas, &mut stacked).unwrap();
    for block in 0..3 {
        let mut dn = d
            .slice(ndarray::s![2 * block..2 * block + 2, ..])
            .to_owned();
        let deltas = StepDeltas {
            d_next: dn.view_mut(),
            d_prev: dp_one.slice_mut(ndarray::s![2 * block..2 * block + 2, ..]),
            d_x: None,
            tape: None,
        };
        cell.backward(step, deltas, &mut one_by_one).unwrap();
    }
    assert!(params::max_abs_diff(&stacked, &one_by_one).unwrap() < TOL);
    assert!(max_diff(&dp_stacked, &dp_one) < TOL);
}

// ---------------------------------------------------------------------------------------
// Vanishing gradients
// ---------------------------------------------------------------------------------------

/// Largest singular value of `m`, by power iteration on `mᵀm`.
fn largest_singular_value(m: &Array2<f64>) -> f64 {
    let gram = m.t().dot(m);
    let mut v = Array1::from_shape_fn(m.ncols(), |i| 1.0 + 0.1 * i as f64);
    let mut lambda = 0.0;
    for _ in 0..2000 {
        let w = gram.dot(&v);
        lambda = w.dot(&w).sqrt() / v.dot(&v).sqrt();
        v = &w / w.dot(&w).sqrt();
    }
    lambda.sqrt()
}

/// `‖δ_t^{(k)}‖ ≤ (γ·σ_max(W))^{t−k} ‖δ_t^{(t)}‖` with `γ = sup|f′|` (1 for tanh, ¼ for the
/// sigmoid): with `γ·σ_max(W) < 1` the contribution of step k decays geometrically in t − k.
#[test]
fn deltas_obey_the_singular_value_bound() {
    let (vocab, hidden, len) = (6, 5, 14);
    for (seed, scale) in [(27u64, 0.3), (28, 0.9), (29, 2.0)] {
        let m = token_model(Tanh, vocab, hidden, scale, seed);
        let wt = weights(&m);
        let (x, y) = random_sentence(len, vocab, seed + 100);
        let f = forward(&wt, &Tanh, &x, &y);
        let sigma = largest_singular_value(&wt.w);
        let gamma = 1.0;
        let t = len - 1;
        let delta = deltas(&wt, &f, t);
        let top = delta[t].dot(&delta[t]).sqrt();
        for (k, d) in delta.iter().enumerate() {
            let bound = (gamma * sigma).powi((t - k) as i32) * top;
            let norm = d.dot(d).sqrt();
            assert!(
                norm <= bound * (1.0 + 1e-9) + TOL,
                "k={k}: {norm} > {bound}"
            );
        }
    }
    // Sigmoid: γ = ¼.
    let m = token_model(Sigmoid, vocab, hidden, 2.0, 30);
    let wt = weights(&m);
    let (x, y) = random_sentence(len, vocab, 31);
    let f = forward(&wt, &Sigmoid, &x, &y);
    let sigma = largest_singular_value(&wt.w);
    let t = len - 1;
    let delta = deltas(&wt, &f, t);
    let top = delta[t].dot(&delta[t]).sqrt();
    for (k, d) in delta.iter().enumerate() {
        let bound = (0.25 * sigma).powi((t - k) as i32) * top;
        assert!(
            d.dot(d).sqrt() <= bound * (1.0 + 1e-9) + TOL,
            "sigmoid k={k}"
        );
    }
}
