//! Every truncation scheme against a deliberately naive reference written from the
//! definition of BPTT(h; h′), and against full BPTT when its window covers the sequence.

// The references index arrays loop for loop, as the algorithms are written on paper.
#![allow(clippy::needless_range_loop)]

use ndarray::{Array2, Array3};
use rand::{rngs::StdRng, Rng, SeedableRng};
use recur_bptt::{
    gradient_check, Bptt, Gradients, Model, SeqBatch, SeqInput, SeqTargets, Truncation,
};
use recur_cell::{Activation, Elman, ElmanConfig, Init, LinearConfig, Sigmoid, Tanh};
use recur_core::params;
use recur_loss::{Reduction, SoftmaxCrossEntropy};

const VOCAB: usize = 7;
const HIDDEN: usize = 4;

fn model<A: Activation<f64>>(act: A, seed: u64) -> Model<f64, Elman<f64, A>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let init = Init::Uniform {
        low: -0.8,
        high: 0.8,
    };
    let mut cell = ElmanConfig::new(VOCAB, HIDDEN)
        .with_bias(true)
        .with_init(init)
        .init(act, &mut rng)
        .unwrap();
    // Non-zero biases, so their gradients are exercised.
    if let Some(b) = &mut cell.weights_mut().b_h {
        b.mapv_inplace(|_| rng.random_range(-0.5..0.5));
    }
    let readout = LinearConfig::new(HIDDEN, VOCAB)
        .with_bias(true)
        .with_init(init)
        .init(&mut rng)
        .unwrap();
    Model::new(cell, readout).unwrap()
}

fn tokens(seq_len: usize, batch: usize, seed: u64) -> (Array2<usize>, Array2<usize>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let x = Array2::from_shape_fn((seq_len, batch), |_| rng.random_range(0..VOCAB));
    let y = Array2::from_shape_fn((seq_len, batch), |_| rng.random_range(0..VOCAB));
    (x, y)
}

/// The backward passes of BPTT(h; h′) straight from the definition: at every h′-th step
/// (and at the last step), each output seen since the previous pass and inside the window
/// is pushed back to the window's first step.
fn passes(seq_len: usize, window: usize, stride: usize) -> Vec<(usize, usize, usize)> {
    // Passes happen at steps stride − 1, 2·stride − 1, …; when the length is not a
    // multiple of the stride, the last one happens at the final step but reaches back only
    // as far as a pass at the next multiple would.
    let mut out = Vec::new();
    let mut first_output = 0;
    let mut grid_end = stride - 1;
    while first_output < seq_len {
        let end = grid_end.min(seq_len - 1);
        let start = (grid_end + 1).saturating_sub(window);
        out.push((start, first_output.max(start), end));
        first_output = end + 1;
        grid_end += stride;
    }
    out
}

/// Naive gradient of the summed softmax cross-entropy of an Elman model under
/// BPTT(window; stride), one output and one sequence at a time, with nested loops.
fn naive<A: Activation<f64>>(
    m: &Model<f64, Elman<f64, A>>,
    x: &Array2<usize>,
    y: &Array2<usize>,
    window: usize,
    stride: usize,
) -> Gradients<f64, Elman<f64, A>> {
    let (seq_len, batch) = x.dim();
    let p = m.cell().weights();
    let r = m.readout().weights();
    let act = m.cell().activation();
    let mut g = m.zero_grads();
    for b in 0..batch {
        // h[t + 1] is the state after step t; h[0] = 0.
        let mut h = vec![vec![0.0; HIDDEN]; seq_len + 1];
        for t in 0..seq_len {
            for k in 0..HIDDEN {
                let mut z = p.w_xh[[x[[t, b]], k]] + p.b_h.as_ref().unwrap()[k];
                for i in 0..HIDDEN {
                    z += h[t][i] * p.w_hh[[i, k]];
                }
                h[t + 1][k] = act.apply(z);
            }
        }
        for (start, first_output, end) in passes(seq_len, window, stride) {
            for s in first_output..=end {
                let logits: Vec<f64> = (0..VOCAB)
                    .map(|o| {
                        r.b_y.as_ref().unwrap()[o]
                            + (0..HIDDEN)
                                .map(|i| h[s + 1][i] * r.w_hy[[i, o]])
                                .sum::<f64>()
                    })
                    .collect();
                let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = logits.iter().map(|l| (l - max).exp()).sum();
                let d_o: Vec<f64> = (0..VOCAB)
                    .map(|o| (logits[o] - max).exp() / sum - if o == y[[s, b]] { 1.0 } else { 0.0 })
                    .collect();
                let mut delta = vec![0.0; HIDDEN];
                for o in 0..VOCAB {
                    g.readout.b_y.as_mut().unwrap()[o] += d_o[o];
                    for i in 0..HIDDEN {
                        g.readout.w_hy[[i, o]] += h[s + 1][i] * d_o[o];
                        delta[i] += r.w_hy[[i, o]] * d_o[o];
                    }
                }
                for j in (start..=s).rev() {
                    let dz: Vec<f64> = (0..HIDDEN)
                        .map(|k| delta[k] * act.derivative(h[j + 1][k], h[j + 1][k]))
                        .collect();
                    for k in 0..HIDDEN {
                        g.cell.w_xh[[x[[j, b]], k]] += dz[k];
                        g.cell.b_h.as_mut().unwrap()[k] += dz[k];
                        for i in 0..HIDDEN {
                            g.cell.w_hh[[i, k]] += h[j][i] * dz[k];
                        }
                    }
                    delta = (0..HIDDEN)
                        .map(|i| (0..HIDDEN).map(|k| p.w_hh[[i, k]] * dz[k]).sum())
                        .collect();
                }
            }
        }
    }
    g
}

fn engine_grads<A: Activation<f64>>(
    m: &Model<f64, Elman<f64, A>>,
    truncation: Truncation,
    x: &Array2<usize>,
    y: &Array2<usize>,
) -> Gradients<f64, Elman<f64, A>> {
    let mut engine = Bptt::new(truncation, Reduction::Sum);
    let mut g = m.zero_grads();
    let batch = SeqBatch {
        inputs: SeqInput::Tokens(x.view()),
        targets: SeqTargets::Classes(y.view()),
    };
    engine
        .accumulate(m, &SoftmaxCrossEntropy, batch, None, &mut g)
        .unwrap();
    g
}

fn check_against_naive<A: Activation<f64> + Copy>(act: A) {
    let mut seed = 0;
    for (seq_len, batch) in [(1, 1), (5, 1), (9, 3), (16, 2)] {
        for (window, stride) in [
            (1, 1),
            (3, 1),
            (5, 1),
            (2, 2),
            (4, 4),
            (3, 2),
            (7, 3),
            (100, 100),
            (100, 1),
        ] {
            seed += 1;
            let m = model(act, seed);
            let (x, y) = tokens(seq_len, batch, seed);
            let truncation = Truncation::new(window, stride).unwrap();
            let fast = engine_grads(&m, truncation, &x, &y);
            let slow = naive(&m, &x, &y, window, stride);
            let diff = params::max_abs_diff(&fast, &slow).unwrap();
            assert!(diff < 1e-12, "{truncation} T={seq_len} B={batch}: {diff:e}");
        }
    }
}

#[test]
fn general_schemes_equal_the_naive_reference_tanh() {
    check_against_naive(Tanh);
}

#[test]
fn general_schemes_equal_the_naive_reference_sigmoid() {
    check_against_naive(Sigmoid);
}

#[test]
fn last_k_keeps_only_the_last_outputs_and_steps() {
    let m = model(Tanh, 42);
    let (x, y) = tokens(8, 2, 42);
    for k in [1, 3, 8] {
        let fast = engine_grads(&m, Truncation::last(k).unwrap(), &x, &y);
        // last(k) is one pass at the final step over the last k steps, injecting only the
        // outputs inside them: the reference with window k and stride T.
        let slow = naive(&m, &x, &y, k, x.nrows());
        let diff = params::max_abs_diff(&fast, &slow).unwrap();
        assert!(diff < 1e-12, "last({k}): {diff:e}");
    }
}

#[test]
fn every_scheme_equals_full_bptt_when_its_window_covers_the_sequence() {
    let m = model(Tanh, 7);
    let (x, y) = tokens(6, 3, 7);
    let full = engine_grads(&m, Truncation::full(), &x, &y);
    for t in [
        Truncation::chunked(6).unwrap(),
        Truncation::chunked(10).unwrap(),
        Truncation::per_output(5).unwrap(),
        Truncation::per_output(30).unwrap(),
        Truncation::last(6).unwrap(),
        Truncation::new(8, 6).unwrap(),
    ] {
        let g = engine_grads(&m, t, &x, &y);
        let diff = params::max_abs_diff(&g, &full).unwrap();
        assert!(diff < 1e-12, "{t}: {diff:e}");
    }
    // And a shorter window really does change the gradient.
    let short = engine_grads(&m, Truncation::per_output(1).unwrap(), &x, &y);
    assert!(params::max_abs_diff(&short, &full).unwrap() > 1e-6);
}

#[test]
fn full_bptt_equals_finite_differences_with_dense_inputs() {
    let mut rng = StdRng::seed_from_u64(11);
    let cell = ElmanConfig::new(3, 5)
        .with_bias(true)
        .init(Sigmoid, &mut rng)
        .unwrap();
    let readout = LinearConfig::new(5, 4)
        .with_bias(true)
        .init(&mut rng)
        .unwrap();
    let mut m = Model::new(cell, readout).unwrap();
    let x = Array3::from_shape_fn((6, 2, 3), |_| rng.random_range(-1.0..1.0));
    let y = Array2::from_shape_fn((6, 2), |_| rng.random_range(0..4));
    let batch = SeqBatch {
        inputs: SeqInput::Dense(x.view()),
        targets: SeqTargets::Classes(y.view()),
    };
    for reduction in [Reduction::Sum, Reduction::Mean] {
        let report =
            gradient_check(&mut m, &SoftmaxCrossEntropy, batch, reduction, 1e-5, 1).unwrap();
        assert!(report.max_relative_error() < 1e-6, "{report:#?}");
    }
}
