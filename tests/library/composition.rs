//! Cells that compose: stacks and pairs of cells, a user's own readout, path-named
//! parameters, and every truncation scheme over them.

use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use rand::{rngs::StdRng, Rng, SeedableRng};
use recur::core::linalg::gemm;
use recur::core::params;
use recur::io::{export_safetensors, Checkpoint};
use recur::prelude::*;
use recur::{gradient_check, Adam, Error, Gradients, Result};

type Tanh64 = Elman<f64, Tanh>;

/// An Elman cell with random weights and biases (a zero bias would put relu units of an
/// upper layer exactly on their kink, where central differences cannot agree).
fn elman<A: Activation<f64>>(
    input: usize,
    hidden: usize,
    act: A,
    rng: &mut StdRng,
) -> Elman<f64, A> {
    let mut cell = ElmanConfig::new(input, hidden)
        .with_bias(true)
        .init(act, rng)
        .unwrap();
    let bias = ndarray::Array1::from_shape_fn(hidden, |_| rng.random_range(-0.5..0.5));
    cell.weights_mut().b_h = Some(bias);
    cell
}

/// The worst relative error allowed against central differences. With ε = 1e-5 and a
/// summed loss near 20, rounding alone moves a difference quotient by about
/// `20·1e-16/1e-5 = 2e-10`, which is 1e-5 of the smallest gradients deep stacks have; a
/// wrong derivative is off by far more.
const GRADIENT_TOLERANCE: f64 = 1e-4;

fn tokens(len: usize, batch: usize, vocab: usize, seed: u64) -> (Array2<usize>, Array2<usize>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let x = Array2::from_shape_fn((len, batch), |_| rng.random_range(0..vocab));
    let y = Array2::from_shape_fn((len, batch), |_| rng.random_range(0..vocab));
    (x, y)
}

fn batch<'a>(x: &'a Array2<usize>, y: &'a Array2<usize>) -> SeqBatch<'a, f64> {
    SeqBatch {
        inputs: SeqInput::Tokens(x.view()),
        targets: SeqTargets::Classes(y.view()),
    }
}

fn bits(set: &dyn ParamSet<f64>) -> Vec<u64> {
    params::flatten(set).iter().map(|v| v.to_bits()).collect()
}

#[test]
fn a_stack_of_one_layer_is_the_bare_cell_bit_for_bit() {
    let mut rng = StdRng::seed_from_u64(1);
    let cell: Tanh64 = elman(7, 6, Tanh, &mut rng);
    let readout = LinearConfig::new(6, 7)
        .with_bias(true)
        .init(&mut rng)
        .unwrap();
    let mut bare = Model::new(cell.clone(), readout.clone()).unwrap();
    let mut stacked = Model::new(Stack::new(vec![cell]).unwrap(), readout).unwrap();
    let (x, y) = tokens(9, 3, 7, 2);
    for scheme in ["full", "chunked:3", "per-output:2", "bptt:5:2"] {
        let truncation: Truncation = scheme.parse().unwrap();
        let (mut g_bare, mut g_stacked) = (bare.zero_grads(), stacked.zero_grads());
        let mut engine = Bptt::new(truncation, Reduction::Mean);
        engine
            .accumulate(
                &bare,
                &SoftmaxCrossEntropy,
                batch(&x, &y),
                None,
                &mut g_bare,
            )
            .unwrap();
        let mut engine = Bptt::new(truncation, Reduction::Mean);
        engine
            .accumulate(
                &stacked,
                &SoftmaxCrossEntropy,
                batch(&x, &y),
                None,
                &mut g_stacked,
            )
            .unwrap();
        assert_eq!(bits(&g_bare), bits(&g_stacked), "{scheme}");
    }
    let adam = || Box::new(Adam::new(0.01, 0.9, 0.999, 1e-8).unwrap());
    let mut t_bare = Trainer::new(
        &bare,
        Truncation::chunked(4).unwrap(),
        Reduction::Mean,
        adam(),
    );
    let mut t_stacked = Trainer::new(
        &stacked,
        Truncation::chunked(4).unwrap(),
        Reduction::Mean,
        adam(),
    );
    for _ in 0..5 {
        t_bare
            .train_batch(&mut bare, &SoftmaxCrossEntropy, batch(&x, &y), None)
            .unwrap();
        t_stacked
            .train_batch(&mut stacked, &SoftmaxCrossEntropy, batch(&x, &y), None)
            .unwrap();
    }
    assert_eq!(bits(&bare), bits(&stacked));
    assert_eq!(params::paths(&stacked)[0], "cell.layers.0.w_xh");
}

/// Stacks of 2 and 3 layers pass the finite-difference check under full BPTT, and every
/// scheme whose window covers the sequence gives the same gradient.
fn check_stack<A: Activation<f64> + Clone>(act: A, depth: usize) {
    let (vocab, hidden, len) = (6, 5, 7);
    let mut rng = StdRng::seed_from_u64(depth as u64 + 10);
    let mut layers = vec![elman(vocab, hidden, act.clone(), &mut rng)];
    for _ in 1..depth {
        layers.push(elman(hidden, hidden, act.clone(), &mut rng));
    }
    let readout = LinearConfig::new(hidden, vocab)
        .with_bias(true)
        .init(&mut rng)
        .unwrap();
    let mut model = Model::new(Stack::new(layers).unwrap(), readout).unwrap();
    let (x, y) = tokens(len, 2, vocab, 3);
    let report = gradient_check(
        &mut model,
        &SoftmaxCrossEntropy,
        batch(&x, &y),
        Reduction::Sum,
        1e-5,
        1,
    )
    .unwrap();
    let error = report.max_relative_error();
    assert!(
        error < GRADIENT_TOLERANCE,
        "{} × {depth}: {report:#?}",
        act.name()
    );
    let gradient = |scheme: &str| -> Gradients<f64, Stack<Elman<f64, A>>> {
        let mut g = model.zero_grads();
        Bptt::new(scheme.parse().unwrap(), Reduction::Sum)
            .accumulate(&model, &SoftmaxCrossEntropy, batch(&x, &y), None, &mut g)
            .unwrap();
        g
    };
    let full = gradient("full");
    // (A short last segment keeps the stride grid, so `bptt:H:3` covers 7 steps from H = 9.)
    for scheme in [
        "chunked:7",
        "chunked:9",
        "per-output:6",
        "bptt:7:1",
        "bptt:9:3",
    ] {
        let diff = params::max_abs_diff(&full, &gradient(scheme)).unwrap();
        assert!(diff < 1e-12, "{scheme}: {diff}");
    }
    // A shorter window truncates: the maths says it must differ.
    assert!(params::max_abs_diff(&full, &gradient("chunked:2")).unwrap() > 1e-6);
}

#[test]
fn stacks_of_two_and_three_layers_pass_the_gradient_check_under_every_scheme() {
    for depth in [2, 3] {
        check_stack(Tanh, depth);
        check_stack(Relu, depth);
        check_stack(Sigmoid, depth);
    }
}

recur::param_set! {
    /// The weights of [`TwoLayer`].
    struct TwoLayerParams<F> {
        w_hz: Array2<F>,
        w_zy: Array2<F>,
    }
}

/// A user's readout: `logits = tanh(h·W_hz)·W_zy`.
#[derive(Debug, Clone)]
struct TwoLayer {
    params: TwoLayerParams<f64>,
}

impl Readout<f64> for TwoLayer {
    type Params = TwoLayerParams<f64>;
    /// The hidden layer's output for the rows of the last forward pass.
    type Cache = Array2<f64>;

    fn input_size(&self) -> usize {
        self.params.w_hz.nrows()
    }
    fn output_size(&self) -> usize {
        self.params.w_zy.ncols()
    }
    fn params(&self) -> &dyn ParamSet<f64> {
        &self.params
    }
    fn params_mut(&mut self) -> &mut dyn ParamSet<f64> {
        &mut self.params
    }
    fn zero_grads(&self) -> Self::Params {
        params::zeroed(&self.params)
    }
    fn forward(
        &self,
        h: ArrayView2<'_, f64>,
        logits: ArrayViewMut2<'_, f64>,
        z: &mut Array2<f64>,
    ) -> Result<()> {
        if z.nrows() != h.nrows() {
            *z = Array2::zeros((h.nrows(), self.params.w_hz.ncols()));
        }
        gemm(1.0, h, self.params.w_hz.view(), 0.0, z.view_mut())?;
        z.mapv_inplace(f64::tanh);
        gemm(1.0, z.view(), self.params.w_zy.view(), 0.0, logits)?;
        Ok(())
    }
    fn backward(
        &self,
        h: ArrayView2<'_, f64>,
        z: &Array2<f64>,
        d_logits: ArrayView2<'_, f64>,
        d_h: ArrayViewMut2<'_, f64>,
        grads: &mut Self::Params,
    ) -> Result<()> {
        gemm(1.0, z.t(), d_logits, 1.0, grads.w_zy.view_mut())?;
        let mut d_z = d_logits.dot(&self.params.w_zy.t());
        d_z.zip_mut_with(z, |d, &z| *d *= 1.0 - z * z);
        gemm(1.0, h.t(), d_z.view(), 1.0, grads.w_hz.view_mut())?;
        gemm(1.0, d_z.view(), self.params.w_hz.t(), 0.0, d_h)?;
        Ok(())
    }
}

fn two_layer(hidden: usize, inner: usize, outputs: usize, rng: &mut StdRng) -> TwoLayer {
    TwoLayer {
        params: TwoLayerParams {
            w_hz: Init::UniformFanIn.matrix(hidden, inner, rng).unwrap(),
            w_zy: Init::UniformFanIn.matrix(inner, outputs, rng).unwrap(),
        },
    }
}

type Mixed = Pair<Elman<f64, Tanh>, Stack<Elman<f64, Sigmoid>>>;

fn mixed_model(seed: u64) -> Model<f64, Mixed, TwoLayer> {
    let mut rng = StdRng::seed_from_u64(seed);
    let lower = elman(8, 6, Tanh, &mut rng);
    let upper = Stack::new(vec![
        elman(6, 5, Sigmoid, &mut rng),
        elman(5, 5, Sigmoid, &mut rng),
    ])
    .unwrap();
    let readout = two_layer(5, 7, 8, &mut rng);
    Model::new(Pair::new(lower, upper).unwrap(), readout).unwrap()
}

#[test]
fn two_different_cells_and_a_custom_readout_train_save_load_and_export() {
    let mut model = mixed_model(5);
    assert_eq!(
        params::paths(&model),
        [
            "cell.layers.0.w_xh",
            "cell.layers.0.w_hh",
            "cell.layers.0.b_h",
            "cell.layers.1.layers.0.w_xh",
            "cell.layers.1.layers.0.w_hh",
            "cell.layers.1.layers.0.b_h",
            "cell.layers.1.layers.1.w_xh",
            "cell.layers.1.layers.1.w_hh",
            "cell.layers.1.layers.1.b_h",
            "readout.w_hz",
            "readout.w_zy",
        ]
    );
    let (x, y) = tokens(10, 4, 8, 6);
    let report = gradient_check(
        &mut model,
        &SoftmaxCrossEntropy,
        batch(&x, &y),
        Reduction::Sum,
        1e-5,
        1,
    )
    .unwrap();
    assert!(
        report.max_relative_error() < GRADIENT_TOLERANCE,
        "{report:#?}"
    );

    let adam = Box::new(Adam::new(0.05, 0.9, 0.999, 1e-8).unwrap());
    let mut trainer = Trainer::new(
        &model,
        Truncation::per_output(3).unwrap(),
        Reduction::Mean,
        adam,
    );
    let first = trainer
        .evaluate(&model, &SoftmaxCrossEntropy, batch(&x, &y))
        .unwrap()
        .mean();
    for _ in 0..60 {
        trainer
            .train_batch(&mut model, &SoftmaxCrossEntropy, batch(&x, &y), None)
            .unwrap();
    }
    let last = trainer
        .evaluate(&model, &SoftmaxCrossEntropy, batch(&x, &y))
        .unwrap()
        .mean();
    assert!(last < 0.7 * first, "{first} → {last}");

    let dir = std::env::temp_dir().join(format!("recur-composition-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let state = trainer.optimizer().state();
    Checkpoint::capture(&model, Some(state), Default::default())
        .save(dir.join("mixed.ckpt"))
        .unwrap();
    let mut loaded = mixed_model(99);
    assert_ne!(bits(&loaded), bits(&model));
    let checkpoint = Checkpoint::<f64>::load(dir.join("mixed.ckpt")).unwrap();
    checkpoint.restore(&mut loaded).unwrap();
    assert_eq!(bits(&loaded), bits(&model));
    let logits = |m: &Model<f64, Mixed, TwoLayer>| {
        let mut engine = Bptt::new(Truncation::full(), Reduction::Mean);
        engine
            .evaluate(m, &SoftmaxCrossEntropy, batch(&x, &y), None)
            .unwrap();
        engine
            .logits()
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<_>>()
    };
    assert_eq!(logits(&loaded), logits(&model));

    let export = dir.join("mixed.safetensors");
    export_safetensors(&model, &export).unwrap();
    let bytes = std::fs::read(&export).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = file.names().into_iter().cloned().collect();
    let mut paths = params::paths(&model);
    names.sort();
    paths.sort();
    assert_eq!(names, paths, "one tensor per slot, under its unique path");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A hand-written parameter set that names both of its slots `w`.
#[derive(Debug, Clone)]
struct ClashingParams(recur::cell::LinearParams<f64>);

impl ParamSet<f64> for ClashingParams {
    fn slot_count(&self) -> usize {
        self.0.slot_count()
    }
    fn slot(&self, index: usize) -> recur::core::Slot<'_, f64> {
        let mut slot = self.0.slot(index);
        slot.name = "w";
        slot
    }
    fn slot_mut(&mut self, index: usize) -> recur::core::SlotMut<'_, f64> {
        let mut slot = self.0.slot_mut(index);
        slot.name = "w";
        slot
    }
}

/// A linear readout over [`ClashingParams`].
#[derive(Debug, Clone)]
struct Clashing(ClashingParams);

impl Clashing {
    fn linear(&self) -> Linear<f64> {
        Linear::from_params(self.0 .0.clone()).unwrap()
    }
}

impl Readout<f64> for Clashing {
    type Params = ClashingParams;
    type Cache = ();
    fn input_size(&self) -> usize {
        self.0 .0.w_hy.nrows()
    }
    fn output_size(&self) -> usize {
        self.0 .0.w_hy.ncols()
    }
    fn params(&self) -> &dyn ParamSet<f64> {
        &self.0
    }
    fn params_mut(&mut self) -> &mut dyn ParamSet<f64> {
        &mut self.0
    }
    fn zero_grads(&self) -> ClashingParams {
        params::zeroed(&self.0)
    }
    fn forward(
        &self,
        h: ArrayView2<'_, f64>,
        logits: ArrayViewMut2<'_, f64>,
        cache: &mut (),
    ) -> Result<()> {
        self.linear().forward(h, logits, cache)
    }
    fn backward(
        &self,
        h: ArrayView2<'_, f64>,
        cache: &(),
        d_logits: ArrayView2<'_, f64>,
        d_h: ArrayViewMut2<'_, f64>,
        grads: &mut ClashingParams,
    ) -> Result<()> {
        self.linear()
            .backward(h, cache, d_logits, d_h, &mut grads.0)
    }
}

#[test]
fn a_duplicate_parameter_name_is_refused_when_the_model_is_built() {
    let mut rng = StdRng::seed_from_u64(8);
    let cell: Tanh64 = elman(4, 3, Tanh, &mut rng);
    let linear = LinearConfig::new(3, 4)
        .with_bias(true)
        .init(&mut rng)
        .unwrap();
    let clashing = ClashingParams(linear.weights().clone());
    let err = params::check_unique_paths(&clashing).unwrap_err();
    assert!(
        matches!(
            err,
            Error::DuplicateName {
                first: 0,
                second: 1,
                ..
            }
        ),
        "{err}"
    );
    match Model::new(cell, Clashing(clashing)) {
        Err(Error::DuplicateName { path, .. }) => assert_eq!(path, "readout.w"),
        other => panic!("expected a duplicate-name error, got {other:?}"),
    }
}

/// A two-layer tanh stack over `vocab` tokens, with dropout `p` between the layers.
fn dropout_model(p: f64) -> Model<f64, Stack<Tanh64>> {
    let mut rng = StdRng::seed_from_u64(21);
    let layers = vec![elman(7, 6, Tanh, &mut rng), elman(6, 6, Tanh, &mut rng)];
    let readout = LinearConfig::new(6, 7)
        .with_bias(true)
        .init(&mut rng)
        .unwrap();
    let stack = Stack::new(layers).unwrap().with_dropout(p, 3).unwrap();
    Model::new(stack, readout).unwrap()
}

fn logits_and_grads(model: &Model<f64, Stack<Tanh64>>, train: bool) -> (Vec<u64>, Vec<f64>) {
    let (x, y) = tokens(8, 3, 7, 4);
    let mut engine = Bptt::new(Truncation::full(), Reduction::Mean);
    let mut g = model.zero_grads();
    if train {
        engine
            .accumulate(model, &SoftmaxCrossEntropy, batch(&x, &y), None, &mut g)
            .unwrap();
    } else {
        engine
            .evaluate(model, &SoftmaxCrossEntropy, batch(&x, &y), None)
            .unwrap();
    }
    let logits = engine.logits().iter().map(|v| v.to_bits()).collect();
    (logits, params::flatten(&g))
}

#[test]
fn dropout_acts_only_while_training_and_its_gradient_follows_the_mask() {
    let (plain, dropped) = (dropout_model(0.0), dropout_model(0.5));
    // Evaluation and generation never drop.
    assert_eq!(
        logits_and_grads(&plain, false).0,
        logits_and_grads(&dropped, false).0
    );
    let mut a = Predictor::new(&plain, 1);
    let mut b = Predictor::new(&dropped, 1);
    for token in [1, 4, 2] {
        let (la, lb) = (
            a.step(&plain, Input::Tokens(&[token])).unwrap().to_owned(),
            b.step(&dropped, Input::Tokens(&[token]))
                .unwrap()
                .to_owned(),
        );
        assert_eq!(la, lb);
    }
    // Training does, and differently at every pass.
    let (train_plain, _) = logits_and_grads(&plain, true);
    let (first, _) = logits_and_grads(&dropped, true);
    let (second, _) = logits_and_grads(&dropped, true);
    assert_ne!(first, train_plain);
    assert_ne!(first, second);
    // With almost every unit kept, the masked path (mask, scaled input, input gradient
    // through the mask) gives the plain gradient.
    let (_, g_plain) = logits_and_grads(&plain, true);
    let (_, g_kept) = logits_and_grads(&dropout_model(1e-12), true);
    let diff = g_plain
        .iter()
        .zip(&g_kept)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(diff < 1e-10, "{diff}");
    assert!(
        Stack::new(vec![elman(2, 2, Tanh, &mut StdRng::seed_from_u64(0))])
            .unwrap()
            .with_dropout(1.0, 0)
            .is_err()
    );
}

#[test]
fn dropout_masks_follow_the_seed() {
    let train = |seed_model: Model<f64, Stack<Tanh64>>| {
        let mut model = seed_model;
        let (x, y) = tokens(8, 3, 7, 4);
        let sgd = Box::new(recur::Sgd::new(0.5).unwrap());
        let mut trainer = Trainer::new(
            &model,
            Truncation::chunked(3).unwrap(),
            Reduction::Mean,
            sgd,
        );
        for _ in 0..5 {
            trainer
                .train_batch(&mut model, &SoftmaxCrossEntropy, batch(&x, &y), None)
                .unwrap();
        }
        bits(&model)
    };
    assert_eq!(train(dropout_model(0.3)), train(dropout_model(0.3)));
    assert_ne!(train(dropout_model(0.3)), train(dropout_model(0.0)));
}

/// A run with dropout resumed from its parameters, optimizer state and the stack's draw
/// count finishes bit for bit as the uninterrupted run; without the count it does not.
#[test]
fn a_resumed_run_with_dropout_draws_the_masks_the_whole_run_would() {
    let (x, y) = tokens(8, 3, 7, 4);
    let trainer = |model: &Model<f64, Stack<Tanh64>>, optimizer: Box<dyn recur::Optimizer<f64>>| {
        Trainer::new(
            model,
            Truncation::chunked(3).unwrap(),
            Reduction::Mean,
            optimizer,
        )
    };
    let steps =
        |model: &mut Model<f64, Stack<Tanh64>>, trainer: &mut Trainer<f64, Stack<Tanh64>>, n| {
            for _ in 0..n {
                trainer
                    .train_batch(model, &SoftmaxCrossEntropy, batch(&x, &y), None)
                    .unwrap();
            }
        };
    let adam = || {
        Box::new(recur::Adam::new(0.05, 0.9, 0.999, 1e-8).unwrap())
            as Box<dyn recur::Optimizer<f64>>
    };
    let mut whole = dropout_model(0.3);
    let mut t = trainer(&whole, adam());
    steps(&mut whole, &mut t, 6);

    let mut first = dropout_model(0.3);
    let mut t1 = trainer(&first, adam());
    steps(&mut first, &mut t1, 2);
    let (saved, draws) = (params::flatten(&first), first.cell().dropout_draws());
    assert!(draws.unwrap() > 0);
    let resume = |draws: Option<u64>| {
        let mut model = dropout_model(0.3);
        params::assign_flat(&mut model, &saved).unwrap();
        if let Some(n) = draws {
            model.cell_mut().set_dropout_draws(n).unwrap();
        }
        let optimizer = t1.optimizer().state().into_optimizer().unwrap();
        let mut t2 = trainer(&model, optimizer);
        steps(&mut model, &mut t2, 4);
        bits(&model)
    };
    assert_eq!(resume(draws), bits(&whole));
    assert_ne!(resume(None), bits(&whole));
    let mut plain = dropout_model(0.0);
    assert_eq!(plain.cell().dropout_draws(), None);
    assert!(plain.cell_mut().set_dropout_draws(1).is_err());
}

/// The gradient with dropout against central differences. Masks depend on the seed and on
/// how many passes drew one, and a clone carries that count, so every loss below sees the
/// masks the analytic gradient saw.
#[test]
fn the_gradient_with_dropout_matches_finite_differences_under_the_same_masks() {
    let model = dropout_model(0.4);
    let (x, y) = tokens(6, 2, 7, 9);
    let loss_and_grads = |m: &Model<f64, Stack<Tanh64>>| {
        let mut g = m.zero_grads();
        let report = Bptt::new(Truncation::full(), Reduction::Sum)
            .accumulate(m, &SoftmaxCrossEntropy, batch(&x, &y), None, &mut g)
            .unwrap();
        (report.total, params::flatten(&g))
    };
    let (_, analytic) = loss_and_grads(&model.clone());
    let base = params::flatten(&model);
    let eps = 1e-6;
    let mut worst = 0.0_f64;
    for index in (0..base.len()).step_by(3) {
        let at = |delta: f64| {
            let mut m = model.clone();
            let mut values = base.clone();
            values[index] += delta;
            params::assign_flat(&mut m, &values).unwrap();
            loss_and_grads(&m).0
        };
        let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
        let scale = analytic[index].abs() + numeric.abs();
        if scale > 1e-8 {
            worst = worst.max((analytic[index] - numeric).abs() / scale);
        }
    }
    assert!(worst < 1e-5, "worst relative error {worst}");
}
