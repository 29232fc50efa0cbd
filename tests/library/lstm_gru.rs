//! The gated cells against finite differences: `Lstm` and `Gru` (both variants) with several
//! pairs of gate and candidate activations, alone and stacked 2 and 3 deep, under full BPTT;
//! and every truncation scheme whose window covers the sequence giving the same gradient.

use ndarray::{Array1, Array2};
use rand::{rngs::StdRng, Rng, SeedableRng};
use recur::core::params;
use recur::prelude::*;
use recur::{gradient_check, GatedParams, Gradients};

/// Step of the central differences.
const EPS: f64 = 1e-5;

/// Gradients below this size are compared absolutely: with a summed loss near 25, rounding
/// moves a difference quotient by about `25·1e-16/ε = 2.5e-10`, which is a relative error of
/// 1e-3 on the gradients of 1e-7 that reach the first layer of a 3-deep stack of
/// saturating gates. Above it the comparison is relative.
const FLOOR: f64 = 1e-4;

/// Worst error allowed, `|a − n| / (|a| + |n| + FLOOR)`; measured errors stay below 6e-6,
/// and a wrong derivative gives errors of order 1e-1.
const GRADIENT_TOLERANCE: f64 = 1e-5;

const VOCAB: usize = 6;
const HIDDEN: usize = 4;
const LEN: usize = 7;
/// Weights in `[−1, 1)`: large enough that a gradient reaching the first layer of a deep
/// stack stays far above the rounding floor of the difference quotients.
const INIT: Init = Init::Uniform {
    low: -1.0,
    high: 1.0,
};

fn random_bias(len: usize, rng: &mut StdRng) -> Option<Array1<f64>> {
    Some(Array1::from_shape_fn(len, |_| rng.random_range(-0.5..0.5)))
}

/// Random nonzero biases, so no unit sits on a kink or a symmetric point.
fn randomise_biases(p: &mut GatedParams<f64>, rng: &mut StdRng) {
    let width = p.w_hh.ncols();
    p.b_ih = random_bias(width, rng);
    p.b_hh = random_bias(width, rng);
}

fn lstm<G: Activation<f64>, C: Activation<f64>>(
    input: usize,
    gate: G,
    cell: C,
    rng: &mut StdRng,
) -> Lstm<f64, G, C> {
    let mut lstm = LstmConfig::new(input, HIDDEN)
        .with_init(INIT)
        .init(gate, cell, rng)
        .unwrap();
    randomise_biases(lstm.weights_mut(), rng);
    lstm
}

fn gru<G: Activation<f64>, C: Activation<f64>>(
    input: usize,
    variant: GruVariant,
    gate: G,
    cell: C,
    rng: &mut StdRng,
) -> Gru<f64, G, C> {
    let mut gru = GruConfig::new(input, HIDDEN)
        .with_variant(variant)
        .with_init(INIT)
        .init(gate, cell, rng)
        .unwrap();
    randomise_biases(gru.weights_mut(), rng);
    gru
}

fn tokens(batch: usize, seed: u64) -> (Array2<usize>, Array2<usize>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let x = Array2::from_shape_fn((LEN, batch), |_| rng.random_range(0..VOCAB));
    let y = Array2::from_shape_fn((LEN, batch), |_| rng.random_range(0..VOCAB));
    (x, y)
}

fn seq<'a>(x: &'a Array2<usize>, y: &'a Array2<usize>) -> SeqBatch<'a, f64> {
    SeqBatch {
        inputs: SeqInput::Tokens(x.view()),
        targets: SeqTargets::Classes(y.view()),
    }
}

/// The model's worst relative error against central differences under full BPTT, after
/// checking that every scheme whose window covers the sequence gives full BPTT's gradient
/// to 1e-12 and that a shorter window does not.
fn check_model<C: Cell<f64>>(cell: C, name: &str) -> f64 {
    let mut rng = StdRng::seed_from_u64(99);
    let readout = LinearConfig::new(HIDDEN, VOCAB)
        .with_bias(true)
        .init(&mut rng)
        .unwrap();
    let mut model = Model::new(cell, readout).unwrap();
    let (x, y) = tokens(2, 5);
    let gradient = |model: &Model<f64, C>, scheme: &str| -> Gradients<f64, C> {
        let mut g = model.zero_grads();
        Bptt::new(scheme.parse().unwrap(), Reduction::Sum)
            .accumulate(model, &SoftmaxCrossEntropy, seq(&x, &y), None, &mut g)
            .unwrap();
        g
    };
    let full = gradient(&model, "full");
    for scheme in ["chunked:7", "per-output:6", "bptt:7:1", "bptt:9:3"] {
        let diff = params::max_abs_diff(&full, &gradient(&model, scheme)).unwrap();
        assert!(diff < 1e-12, "{name}, {scheme}: {diff}");
    }
    let truncated = params::max_abs_diff(&full, &gradient(&model, "chunked:2")).unwrap();
    assert!(truncated > 1e-6, "{name}: a short window must truncate");
    // The engine's own check, relative only: it holds where no gradient is tiny.
    if !name.contains("stack") {
        let report = gradient_check(
            &mut model,
            &SoftmaxCrossEntropy,
            seq(&x, &y),
            Reduction::Sum,
            EPS,
            1,
        )
        .unwrap();
        assert!(report.max_relative_error() < 1e-4, "{name}: {report:#?}");
    }
    // Entry by entry, with the floor for tiny gradients.
    let analytic = params::flatten(&full);
    let theta = params::flatten(&model);
    let loss = |model: &mut Model<f64, C>, k: usize, delta: f64| {
        let mut moved = theta.clone();
        moved[k] += delta;
        params::assign_flat(model, &moved).unwrap();
        Bptt::new(Truncation::full(), Reduction::Sum)
            .evaluate(model, &SoftmaxCrossEntropy, seq(&x, &y), None)
            .unwrap()
            .total
    };
    let mut worst = (0.0_f64, 0, 0.0, 0.0);
    for (k, &a) in analytic.iter().enumerate() {
        let n = (loss(&mut model, k, EPS) - loss(&mut model, k, -EPS)) / (2.0 * EPS);
        let error = (a - n).abs() / (a.abs() + n.abs() + FLOOR);
        if error.is_nan() || error > worst.0 {
            worst = (error, k, a, n);
        }
    }
    params::assign_flat(&mut model, &theta).unwrap();
    let (error, k, a, n) = worst;
    assert!(
        error < GRADIENT_TOLERANCE,
        "{name}: entry {k} of {}, analytic {a}, numeric {n} (error {error})",
        analytic.len()
    );
    error
}

/// One cell, then stacks of 2 and 3, each through [`check_model`].
fn check_depths<C: Cell<f64>>(name: &str, mut layer: impl FnMut(usize, &mut StdRng) -> C) {
    let mut rng = StdRng::seed_from_u64(11);
    for depth in 1..=3 {
        let mut layers = vec![layer(VOCAB, &mut rng)];
        for _ in 1..depth {
            layers.push(layer(HIDDEN, &mut rng));
        }
        let error = if depth == 1 {
            check_model(layers.pop().unwrap(), name)
        } else {
            check_model(
                Stack::new(layers).unwrap(),
                &format!("{name}, stack of {depth}"),
            )
        };
        eprintln!("{name} × {depth}: worst error {error:.1e}");
    }
}

macro_rules! lstm_pairs {
    ($($gate:expr, $cell:expr);* $(;)?) => {$(
        check_depths(
            &format!("lstm {}/{}", Activation::<f64>::name(&$gate), Activation::<f64>::name(&$cell)),
            |input, rng| lstm(input, $gate, $cell, rng),
        );
    )*};
}

macro_rules! gru_pairs {
    ($($gate:expr, $cell:expr);* $(;)?) => {$(
        for variant in [GruVariant::ResetAfter, GruVariant::ResetBefore] {
            check_depths(
                &format!(
                    "gru {variant:?} {}/{}",
                    Activation::<f64>::name(&$gate),
                    Activation::<f64>::name(&$cell)
                ),
                |input, rng| gru(input, variant, $gate, $cell, rng),
            );
        }
    )*};
}

/// `ln(1 + eˣ)`, declared to need its input for its derivative `σ(x)`, so that the cells
/// keep their gates' pre-activations and their backward passes read them.
#[derive(Debug, Clone, Copy)]
struct Softplus;

impl Activation<f64> for Softplus {
    fn name(&self) -> &'static str {
        "softplus"
    }
    fn apply(&self, x: f64) -> f64 {
        x.exp().ln_1p()
    }
    fn derivative(&self, x: f64, _y: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }
    fn needs_input(&self) -> bool {
        true
    }
}

#[test]
fn lstm_passes_the_gradient_check_alone_and_stacked_under_every_scheme() {
    lstm_pairs! {
        Softplus, Tanh;
        Sigmoid, Softplus;
        Sigmoid, Tanh;
        Sigmoid, Softsign;
        Sigmoid, Identity;
        Tanh, Tanh;
        Softsign, Tanh;
        Sigmoid, LeakyRelu { slope: 0.1 };
    }
}

#[test]
fn gru_passes_the_gradient_check_alone_and_stacked_under_every_scheme() {
    gru_pairs! {
        Softplus, Tanh;
        Sigmoid, Softplus;
        Sigmoid, Tanh;
        Sigmoid, Softsign;
        Sigmoid, Identity;
        Tanh, Tanh;
        Softsign, Tanh;
        Sigmoid, LeakyRelu { slope: 0.1 };
    }
}

#[test]
fn token_inputs_give_the_gradients_of_one_hot_rows_with_sparse_rows() {
    let mut rng = StdRng::seed_from_u64(3);
    let model_lstm = Model::new(
        lstm(VOCAB, Sigmoid, Tanh, &mut rng),
        LinearConfig::new(HIDDEN, VOCAB).init(&mut rng).unwrap(),
    )
    .unwrap();
    let model_gru = Model::new(
        gru(VOCAB, GruVariant::ResetBefore, Sigmoid, Tanh, &mut rng),
        LinearConfig::new(HIDDEN, VOCAB).init(&mut rng).unwrap(),
    )
    .unwrap();
    let (x, y) = tokens(3, 8);
    let one_hot = ndarray::Array3::from_shape_fn((LEN, 3, VOCAB), |(t, b, v)| {
        f64::from(u8::from(x[[t, b]] == v))
    });
    fn both<'a, C: Cell<f64>>(
        model: &Model<f64, C>,
        x: &'a Array2<usize>,
        one_hot: &'a ndarray::Array3<f64>,
        y: &'a Array2<usize>,
    ) {
        let run = |inputs: SeqInput<'a, f64>| {
            let mut g = model.zero_grads();
            let batch = SeqBatch {
                inputs,
                targets: SeqTargets::Classes(y.view()),
            };
            Bptt::new(Truncation::full(), Reduction::Sum)
                .accumulate(model, &SoftmaxCrossEntropy, batch, None, &mut g)
                .unwrap();
            g
        };
        let sparse = run(SeqInput::Tokens(x.view()));
        let dense = run(SeqInput::Dense(one_hot.view()));
        assert!(params::max_abs_diff(&sparse, &dense).unwrap() < 1e-13);
        let rows = sparse.slot(0).rows.expect("token inputs track rows");
        let mut seen: Vec<usize> = x.iter().copied().collect();
        seen.sort_unstable();
        seen.dedup();
        let mut rows = rows.to_vec();
        rows.sort_unstable();
        assert_eq!(rows, seen);
    }
    both(&model_lstm, &x, &one_hot, &y);
    both(&model_gru, &x, &one_hot, &y);
}

/// A cell that hides the tape of the cell it wraps, so the engine adds every gradient at its
/// step: the path a cell without a tape takes.
#[derive(Debug, Clone)]
struct WithoutTape<C>(C);

impl<C: Cell<f64>> Cell<f64> for WithoutTape<C> {
    type Params = C::Params;
    type Cache = C::Cache;

    fn input_size(&self) -> usize {
        self.0.input_size()
    }
    fn hidden_size(&self) -> usize {
        self.0.hidden_size()
    }
    fn state_size(&self) -> usize {
        self.0.state_size()
    }
    fn hidden_offset(&self) -> usize {
        self.0.hidden_offset()
    }
    fn params(&self) -> &dyn ParamSet<f64> {
        self.0.params()
    }
    fn params_mut(&mut self) -> &mut dyn ParamSet<f64> {
        self.0.params_mut()
    }
    fn zero_grads(&self) -> C::Params {
        self.0.zero_grads()
    }
    fn new_cache(&self, batch: usize) -> C::Cache {
        self.0.new_cache(batch)
    }
    fn forward(
        &self,
        x: Input<'_, f64>,
        prev: ndarray::ArrayView2<'_, f64>,
        next: ndarray::ArrayViewMut2<'_, f64>,
        cache: &mut C::Cache,
    ) -> recur::Result<()> {
        self.0.forward(x, prev, next, cache)
    }
    fn backward(
        &self,
        step: StepRecord<'_, f64, C::Cache>,
        deltas: StepDeltas<'_, f64>,
        grads: &mut C::Params,
    ) -> recur::Result<()> {
        self.0.backward(step, deltas, grads)
    }
    fn backward_stacked(
        &self,
        step: StepRecord<'_, f64, C::Cache>,
        deltas: StepDeltas<'_, f64>,
        grads: &mut C::Params,
    ) -> recur::Result<()> {
        self.0.backward_stacked(step, deltas, grads)
    }
}

/// The engine's deferred weight gradients (one product over all steps from the tape) equal
/// the gradients added step by step, for stacked LSTM and GRU layers, token and dense
/// inputs, and schemes with one and with several live passes per step.
#[test]
fn gradients_from_the_tape_equal_gradients_added_at_each_step() {
    fn compare<C: Cell<f64> + Clone>(cell: C, name: &str) {
        assert!(cell.tape_width() > 0, "{name} keeps a tape");
        let mut rng = StdRng::seed_from_u64(21);
        let readout = LinearConfig::new(HIDDEN, VOCAB).init(&mut rng).unwrap();
        let taped = Model::new(cell.clone(), readout.clone()).unwrap();
        let stepwise = Model::new(WithoutTape(cell), readout).unwrap();
        let (x, y) = tokens(3, 4);
        let one_hot = ndarray::Array3::from_shape_fn((LEN, 3, VOCAB), |(t, b, v)| {
            f64::from(u8::from(x[[t, b]] == v))
        });
        for scheme in ["full", "chunked:3", "per-output:2", "bptt:4:2"] {
            for inputs in [SeqInput::Tokens(x.view()), SeqInput::Dense(one_hot.view())] {
                let batch = SeqBatch {
                    inputs,
                    targets: SeqTargets::Classes(y.view()),
                };
                let mut engine = Bptt::new(scheme.parse().unwrap(), Reduction::Sum);
                let mut a = taped.zero_grads();
                engine
                    .accumulate(&taped, &SoftmaxCrossEntropy, batch, None, &mut a)
                    .unwrap();
                let mut b = stepwise.zero_grads();
                Bptt::new(scheme.parse().unwrap(), Reduction::Sum)
                    .accumulate(&stepwise, &SoftmaxCrossEntropy, batch, None, &mut b)
                    .unwrap();
                let diff = params::max_abs_diff(&a, &b).unwrap();
                assert!(diff < 1e-13, "{name}, {scheme}: {diff}");
                assert!(params::flatten(&a).iter().any(|&g| g.abs() > 1e-3));
            }
        }
    }
    let mut rng = StdRng::seed_from_u64(8);
    let lstms = vec![
        lstm(VOCAB, Sigmoid, Tanh, &mut rng),
        lstm(HIDDEN, Sigmoid, Tanh, &mut rng),
    ];
    compare(Stack::new(lstms).unwrap(), "lstm stack");
    let grus = vec![
        gru(VOCAB, GruVariant::ResetAfter, Sigmoid, Tanh, &mut rng),
        gru(HIDDEN, GruVariant::ResetAfter, Sigmoid, Tanh, &mut rng),
    ];
    compare(Stack::new(grus).unwrap(), "gru stack");
    let lower = gru(VOCAB, GruVariant::ResetBefore, Sigmoid, Tanh, &mut rng);
    let upper = lstm(HIDDEN, Sigmoid, Tanh, &mut rng);
    compare(
        Pair::new(lower, upper).unwrap(),
        "reset-before gru under an lstm",
    );
}

/// The cells compute their element-wise passes on contiguous rows; states and deltas laid
/// out by columns are copied for them, and must give the same step bit for bit.
#[test]
fn column_major_states_and_deltas_give_the_same_step() {
    use ndarray::ShapeBuilder;

    fn column_major(m: &Array2<f64>) -> Array2<f64> {
        let mut out = Array2::zeros(m.dim().f());
        out.assign(m);
        out
    }

    fn compare<C: Cell<f64, Params = GatedParams<f64>>>(cell: C, name: &str) {
        let (batch, state) = (3, cell.state_size());
        let mut rng = StdRng::seed_from_u64(5);
        let mut random =
            |rows, cols| Array2::from_shape_fn((rows, cols), |_| rng.random_range(-1.0..1.0));
        let (x, prev, d_next) = (
            random(batch, VOCAB),
            random(batch, state),
            random(batch, state),
        );
        let run = |prev: &Array2<f64>,
                   next: &mut Array2<f64>,
                   d_next: &mut Array2<f64>,
                   d_prev: &mut Array2<f64>| {
            let mut cache = cell.new_cache(batch);
            cell.forward(
                Input::Dense(x.view()),
                prev.view(),
                next.view_mut(),
                &mut cache,
            )
            .unwrap();
            let mut grads = cell.zero_grads();
            let mut d_x = Array2::zeros((batch, VOCAB));
            let step = StepRecord {
                x: Input::Dense(x.view()),
                prev: prev.view(),
                next: next.view(),
                cache: &cache,
            };
            let mut deltas = StepDeltas::new(d_next.view_mut(), d_prev.view_mut());
            deltas.d_x = Some(d_x.view_mut());
            cell.backward(step, deltas, &mut grads).unwrap();
            (grads, d_x)
        };
        let (mut next, mut d_prev) = (Array2::zeros((batch, state)), Array2::zeros((batch, state)));
        let (grads, d_x) = run(&prev, &mut next, &mut d_next.clone(), &mut d_prev);
        let mut next_f = column_major(&next.mapv(|_| f64::NAN));
        let mut d_prev_f = column_major(&d_prev.mapv(|_| f64::NAN));
        let (grads_f, d_x_f) = run(
            &column_major(&prev),
            &mut next_f,
            &mut column_major(&d_next),
            &mut d_prev_f,
        );
        assert!(!next_f.is_standard_layout() && !d_prev_f.is_standard_layout());
        assert_eq!(next, next_f, "{name}: next");
        assert_eq!(d_prev, d_prev_f, "{name}: d_prev");
        assert_eq!(d_x, d_x_f, "{name}: d_x");
        assert_eq!(
            params::flatten(&grads),
            params::flatten(&grads_f),
            "{name}: grads"
        );
        assert!(
            d_prev.iter().all(|v| v.is_finite() && *v != 0.0),
            "{name}: d_prev is written"
        );
    }
    let mut rng = StdRng::seed_from_u64(9);
    compare(lstm(VOCAB, Sigmoid, Tanh, &mut rng), "lstm");
    compare(
        lstm(VOCAB, Softplus, Tanh, &mut rng),
        "lstm, softplus gates",
    );
    for variant in [GruVariant::ResetAfter, GruVariant::ResetBefore] {
        compare(
            gru(VOCAB, variant, Sigmoid, Tanh, &mut rng),
            &format!("gru {variant:?}"),
        );
    }
}
