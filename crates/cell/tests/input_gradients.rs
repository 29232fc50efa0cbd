//! `∂L/∂x` from `Cell::backward` against central differences, for the Elman cell with every
//! built-in activation and the gated cells with several pairs of gate and candidate
//! activations, alone and stacked; and the stacked backward of each cell against block by
//! block.

use ndarray::{Array2, ArrayView2};
use rand::{rngs::StdRng, Rng, SeedableRng};
use recur_cell::{
    Activation, Cell, ElmanConfig, GatedParams, GruConfig, GruVariant, Identity, Init, Input,
    LeakyRelu, LstmConfig, Relu, Sigmoid, Softsign, Stack, StepDeltas, StepRecord, Tanh,
};

const EPS: f64 = 1e-6;

fn random(shape: (usize, usize), rng: &mut StdRng) -> Array2<f64> {
    Array2::from_shape_fn(shape, |_| rng.random_range(-1.0..1.0))
}

/// `L = Σ w ⊙ next(x)` for one step of `cell` from `prev`.
fn objective<C: Cell<f64>>(
    cell: &C,
    x: ArrayView2<'_, f64>,
    prev: &Array2<f64>,
    w: &Array2<f64>,
) -> f64 {
    let mut next = Array2::zeros(w.raw_dim());
    let mut cache = cell.new_cache(x.nrows());
    cell.forward(Input::Dense(x), prev.view(), next.view_mut(), &mut cache)
        .unwrap();
    (&next * w).sum()
}

/// Worst relative error between the analytic `∂L/∂x` and central differences.
fn input_gradient_error<C: Cell<f64>>(cell: &C, seed: u64) -> f64 {
    let mut rng = StdRng::seed_from_u64(seed);
    let batch = 3;
    // Inputs away from zero so relu-like kinks are not straddled by ±ε.
    let x = random((batch, cell.input_size()), &mut rng).mapv(|v| v + 0.05 * v.signum());
    let prev = random((batch, cell.state_size()), &mut rng);
    let w = random((batch, cell.state_size()), &mut rng);
    let mut next = Array2::zeros(w.raw_dim());
    let mut cache = cell.new_cache(batch);
    cell.forward(
        Input::Dense(x.view()),
        prev.view(),
        next.view_mut(),
        &mut cache,
    )
    .unwrap();
    let (mut d_next, mut d_prev) = (w.clone(), Array2::zeros(w.raw_dim()));
    // d_x adds: start from a known offset and subtract it.
    let mut d_x = Array2::from_elem(x.raw_dim(), 0.5);
    let step = StepRecord {
        x: Input::Dense(x.view()),
        prev: prev.view(),
        next: next.view(),
        cache: &cache,
    };
    let deltas = StepDeltas {
        d_next: d_next.view_mut(),
        d_prev: d_prev.view_mut(),
        d_x: Some(d_x.view_mut()),
        tape: None,
    };
    let mut grads = cell.zero_grads();
    cell.backward(step, deltas, &mut grads).unwrap();
    let mut worst = 0.0_f64;
    for ((i, j), &analytic) in d_x.indexed_iter() {
        let analytic = analytic - 0.5;
        let (mut plus, mut minus) = (x.clone(), x.clone());
        plus[[i, j]] += EPS;
        minus[[i, j]] -= EPS;
        let numeric = (objective(cell, plus.view(), &prev, &w)
            - objective(cell, minus.view(), &prev, &w))
            / (2.0 * EPS);
        let scale = analytic.abs() + numeric.abs();
        let error = if scale < 1e-10 {
            0.0
        } else {
            (analytic - numeric).abs() / scale
        };
        // NaN-safe: a NaN error must fail.
        worst = if error.is_nan() || error > worst {
            error
        } else {
            worst
        };
    }
    worst
}

fn check_activation<A: Activation<f64> + Clone>(activation: A) {
    let mut rng = StdRng::seed_from_u64(9);
    let cell = ElmanConfig::new(4, 5)
        .with_bias(true)
        .init(activation.clone(), &mut rng)
        .unwrap();
    let error = input_gradient_error(&cell, 1);
    assert!(error < 1e-6, "{}: {error}", activation.name());
    let stack = Stack::new(vec![
        cell.clone(),
        ElmanConfig::new(5, 5)
            .init(activation.clone(), &mut rng)
            .unwrap(),
        ElmanConfig::new(5, 5)
            .init(activation.clone(), &mut rng)
            .unwrap(),
    ])
    .unwrap();
    let error = input_gradient_error(&stack, 2);
    assert!(error < 1e-6, "stacked {}: {error}", activation.name());
}

#[test]
fn elman_input_gradients_match_finite_differences_for_every_activation() {
    check_activation(Tanh);
    check_activation(Sigmoid);
    check_activation(Relu);
    check_activation(LeakyRelu { slope: 0.1 });
    check_activation(Identity);
    check_activation(Softsign);
}

/// Random nonzero biases, so no unit sits on a kink or a symmetric point.
fn randomise_biases(p: &mut GatedParams<f64>, rng: &mut StdRng) {
    let width = p.w_hh.ncols();
    p.b_ih = Some(ndarray::Array1::from_shape_fn(width, |_| {
        rng.random_range(-0.5..0.5)
    }));
    p.b_hh = Some(ndarray::Array1::from_shape_fn(width, |_| {
        rng.random_range(-0.5..0.5)
    }));
}

const GATED_INIT: Init = Init::Uniform {
    low: -1.0,
    high: 1.0,
};

fn check_gated<G: Activation<f64> + Clone, C: Activation<f64> + Clone>(gate: G, cell: C) {
    let name = format!("{}/{}", gate.name(), cell.name());
    let mut rng = StdRng::seed_from_u64(21);
    let lstm = |input, rng: &mut StdRng| {
        let mut c = LstmConfig::new(input, 5)
            .with_init(GATED_INIT)
            .init(gate.clone(), cell.clone(), rng)
            .unwrap();
        randomise_biases(c.weights_mut(), rng);
        c
    };
    let first = lstm(4, &mut rng);
    let error = input_gradient_error(&first, 3);
    assert!(error < 1e-6, "lstm {name}: {error}");
    let stack = Stack::new(vec![first, lstm(5, &mut rng), lstm(5, &mut rng)]).unwrap();
    let error = input_gradient_error(&stack, 4);
    assert!(error < 1e-6, "stacked lstm {name}: {error}");
    for variant in [GruVariant::ResetAfter, GruVariant::ResetBefore] {
        let gru = |input, rng: &mut StdRng| {
            let mut c = GruConfig::new(input, 5)
                .with_variant(variant)
                .with_init(GATED_INIT)
                .init(gate.clone(), cell.clone(), rng)
                .unwrap();
            randomise_biases(c.weights_mut(), rng);
            c
        };
        let first = gru(4, &mut rng);
        let error = input_gradient_error(&first, 5);
        assert!(error < 1e-6, "gru {variant:?} {name}: {error}");
        let stack = Stack::new(vec![first, gru(5, &mut rng), gru(5, &mut rng)]).unwrap();
        let error = input_gradient_error(&stack, 6);
        assert!(error < 1e-6, "stacked gru {variant:?} {name}: {error}");
    }
}

#[test]
fn gated_input_gradients_match_finite_differences() {
    check_gated(Sigmoid, Tanh);
    check_gated(Sigmoid, Softsign);
    check_gated(Sigmoid, Identity);
    check_gated(Tanh, Tanh);
    check_gated(Softsign, Tanh);
    check_gated(Sigmoid, LeakyRelu { slope: 0.1 });
}

/// `backward_stacked` over three blocks against `backward` block by block: `d_prev`, `d_x`
/// and the summed parameter gradients.
fn check_stacked_equals_blocks<C: Cell<f64>>(cell: &C, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (batch, input, state) = (2, cell.input_size(), cell.state_size());
    let x = random((batch, input), &mut rng);
    let prev = random((batch, state), &mut rng);
    let mut next = Array2::zeros((batch, state));
    let mut cache = cell.new_cache(batch);
    cell.forward(
        Input::Dense(x.view()),
        prev.view(),
        next.view_mut(),
        &mut cache,
    )
    .unwrap();
    let step = StepRecord {
        x: Input::Dense(x.view()),
        prev: prev.view(),
        next: next.view(),
        cache: &cache,
    };
    let d = random((3 * batch, state), &mut rng);
    let (mut stacked_x, mut stacked_prev) = (
        Array2::zeros((3 * batch, input)),
        Array2::zeros((3 * batch, state)),
    );
    let mut scratch = d.clone();
    let deltas = StepDeltas {
        d_next: scratch.view_mut(),
        d_prev: stacked_prev.view_mut(),
        d_x: Some(stacked_x.view_mut()),
        tape: None,
    };
    let mut stacked_grads = cell.zero_grads();
    cell.backward_stacked(step, deltas, &mut stacked_grads)
        .unwrap();
    let mut block_grads = cell.zero_grads();
    for block in 0..3 {
        let rows = ndarray::s![batch * block..batch * (block + 1), ..];
        let (mut one_x, mut one_prev) =
            (Array2::zeros((batch, input)), Array2::zeros((batch, state)));
        let mut d_next = d.slice(rows).to_owned();
        let deltas = StepDeltas {
            d_next: d_next.view_mut(),
            d_prev: one_prev.view_mut(),
            d_x: Some(one_x.view_mut()),
            tape: None,
        };
        cell.backward(step, deltas, &mut block_grads).unwrap();
        let diff = (&one_x - &stacked_x.slice(rows)).mapv(f64::abs);
        assert!(diff.iter().all(|&v| v < 1e-14), "block {block}: {diff}");
        let diff = (&one_prev - &stacked_prev.slice(rows)).mapv(f64::abs);
        assert!(diff.iter().all(|&v| v < 1e-14), "block {block}: {diff}");
    }
    let diff = recur_core::params::max_abs_diff(&stacked_grads, &block_grads).unwrap();
    assert!(diff < 1e-13, "parameter gradients: {diff}");
}

#[test]
fn stacked_backward_equals_block_by_block() {
    let mut rng = StdRng::seed_from_u64(4);
    let elman = ElmanConfig::new(3, 4)
        .with_bias(true)
        .init(Tanh, &mut rng)
        .unwrap();
    check_stacked_equals_blocks(&elman, 1);
    let mut lstm = LstmConfig::new(3, 4).init(Sigmoid, Tanh, &mut rng).unwrap();
    randomise_biases(lstm.weights_mut(), &mut rng);
    check_stacked_equals_blocks(&lstm, 2);
    for variant in [GruVariant::ResetAfter, GruVariant::ResetBefore] {
        let mut gru = GruConfig::new(3, 4)
            .with_variant(variant)
            .init(Sigmoid, Tanh, &mut rng)
            .unwrap();
        randomise_biases(gru.weights_mut(), &mut rng);
        check_stacked_equals_blocks(&gru, 3);
    }
}
