//! PyTorch `state_dict`s both ways: every mapped cell (Elman tanh and relu with no, one and
//! two biases, Lstm, Gru, stacks of two) goes recur → safetensors in PyTorch's names →
//! recur with bit-identical parameters, with and without a readout; the names, layout and
//! metadata are PyTorch's; each refusal is an error that names what is wrong.

mod common;

use std::collections::HashMap;

use common::{bits, scratch};
use ndarray::{array, Array2};
use rand::{rngs::StdRng, Rng, SeedableRng};
use recur_cell::{
    Activation, Cell, Elman, ElmanConfig, ElmanParams, GruConfig, GruVariant, Input, Linear,
    LinearConfig, LstmConfig, Relu, Sigmoid, Stack, Tanh,
};
use recur_core::{Error, Float, ParamSet};
use recur_io::{export_torch, import_torch, TorchPrefixes, TorchRecurrent, TORCH_FORMAT};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

const MODULE: TorchPrefixes<'static> = TorchPrefixes {
    cell: "rnn.",
    readout: "decoder.",
};

/// Every entry of `set` drawn from `seed`, so no bias is left at its zero start.
fn randomise<F: Float>(set: &mut dyn ParamSet<F>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for i in 0..set.slot_count() {
        for v in set.slot_mut(i).value.iter_mut() {
            *v = F::from_f64_lossy(rng.random_range(-1.0..1.0));
        }
    }
}

fn linear<F: Float>(hidden: usize, seed: u64) -> Linear<F> {
    let mut readout = LinearConfig::new(hidden, 4)
        .with_bias(true)
        .init(&mut StdRng::seed_from_u64(seed))
        .unwrap();
    randomise(recur_cell::Readout::params_mut(&mut readout), seed);
    readout
}

/// Exports `make(1)` and imports it into `make(2)`, bare and with a readout under
/// `rnn.`/`decoder.`: the parameters must come back bit for bit.
fn round_trip<F: Float, C: Cell<F> + TorchRecurrent<F>>(what: &str, make: impl Fn(u64) -> C) {
    let dir = scratch(&format!("torch-{what}"));
    for with_readout in [false, true] {
        let path = dir.join(format!("{with_readout}.safetensors"));
        let (mut source, mut target) = (make(1), make(2));
        randomise(source.params_mut(), 11);
        randomise(target.params_mut(), 12);
        let hidden = source.hidden_size();
        let mut readouts = with_readout.then(|| (linear::<F>(hidden, 13), linear(hidden, 14)));
        let prefixes = if with_readout {
            MODULE
        } else {
            TorchPrefixes::default()
        };
        export_torch(&source, readouts.as_ref().map(|r| &r.0), prefixes, &path).unwrap();
        assert_ne!(bits(source.params()), bits(target.params()));
        import_torch(
            &mut target,
            readouts.as_mut().map(|r| &mut r.1),
            prefixes,
            &path,
        )
        .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            bits(source.params()),
            bits(target.params()),
            "{what}, readout {with_readout}"
        );
        if let Some((a, b)) = &readouts {
            let params = recur_cell::Readout::params;
            assert_eq!(bits(params(a)), bits(params(b)), "{what} readout");
        }
    }
}

fn elman<F: Float, A: Activation<F> + Copy>(
    act: A,
    input: usize,
    biases: usize,
    seed: u64,
) -> Elman<F, A> {
    ElmanConfig::new(input, 5)
        .with_bias(biases > 0)
        .with_recurrent_bias(biases > 1)
        .init(act, &mut StdRng::seed_from_u64(seed))
        .unwrap()
}

fn elman_round_trips<A: Activation<f64> + Activation<f32> + Copy>(act: A, name: &str) {
    for biases in 0..=2 {
        let what = format!("elman-{name}-{biases}");
        round_trip::<f64, _>(&what, |s| elman(act, 3, biases, s));
        round_trip::<f32, _>(&format!("{what}-stack"), |s| {
            Stack::new(vec![
                elman(act, 3, biases, s),
                elman(act, 5, biases, s + 10),
            ])
            .unwrap()
        });
    }
}

#[test]
fn elman_tanh_round_trips_bit_for_bit() {
    elman_round_trips(Tanh, "tanh");
}

#[test]
fn elman_relu_round_trips_bit_for_bit() {
    elman_round_trips(Relu, "relu");
}

#[test]
fn lstm_round_trips_bit_for_bit() {
    let lstm = |input, seed| {
        LstmConfig::new(input, 5)
            .init::<f32, _, _>(Sigmoid, Tanh, &mut StdRng::seed_from_u64(seed))
            .unwrap()
    };
    round_trip("lstm", |s| lstm(3, s));
    round_trip("lstm-stack", |s| {
        Stack::new(vec![lstm(3, s), lstm(5, s + 10)]).unwrap()
    });
    round_trip::<f64, _>("lstm-no-bias", |s| {
        LstmConfig::new(3, 5)
            .with_bias(false)
            .init(Sigmoid, Tanh, &mut StdRng::seed_from_u64(s))
            .unwrap()
    });
}

#[test]
fn gru_round_trips_bit_for_bit() {
    let gru = |input, seed| {
        GruConfig::new(input, 5)
            .init::<f64, _, _>(Sigmoid, Tanh, &mut StdRng::seed_from_u64(seed))
            .unwrap()
    };
    round_trip("gru", |s| gru(3, s));
    round_trip("gru-stack", |s| {
        Stack::new(vec![gru(3, s), gru(5, s + 10)]).unwrap()
    });
}

#[test]
fn names_layout_and_metadata_are_pytorchs() {
    let dir = scratch("torch-names");
    let path = dir.join("lstm.safetensors");
    let lstm = |input, seed| {
        LstmConfig::new(input, 2)
            .init::<f64, _, _>(Sigmoid, Tanh, &mut StdRng::seed_from_u64(seed))
            .unwrap()
    };
    let mut stack = Stack::new(vec![lstm(3, 1), lstm(2, 2)]).unwrap();
    randomise(stack.params_mut(), 5);
    let readout = linear::<f64>(2, 6);
    export_torch(&stack, Some(&readout), MODULE, &path).unwrap();

    let bytes = std::fs::read(&path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut names = file.names();
    names.sort();
    let expected = [
        "decoder.bias",
        "decoder.weight",
        "rnn.bias_hh_l0",
        "rnn.bias_hh_l1",
        "rnn.bias_ih_l0",
        "rnn.bias_ih_l1",
        "rnn.weight_hh_l0",
        "rnn.weight_hh_l1",
        "rnn.weight_ih_l0",
        "rnn.weight_ih_l1",
    ];
    assert_eq!(names, expected);
    // PyTorch's [4·hidden, input]: entry [r, c] is recur's w_ih[c, r].
    let w = file.tensor("rnn.weight_ih_l0").unwrap();
    assert_eq!((w.dtype(), w.shape()), (Dtype::F64, &[8, 3][..]));
    let at = |r: usize, c: usize| {
        let k = 8 * (r * 3 + c);
        f64::from_le_bytes(w.data()[k..k + 8].try_into().unwrap())
    };
    let w_ih = &stack.layers()[0].weights().w_ih;
    assert_eq!(at(5, 1).to_bits(), w_ih[[1, 5]].to_bits());
    assert_eq!(at(0, 2).to_bits(), w_ih[[2, 0]].to_bits());
    assert_eq!(file.tensor("decoder.weight").unwrap().shape(), [4, 2]);

    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let meta = header.metadata().clone().unwrap();
    assert_eq!(meta["format"], TORCH_FORMAT);
    assert_eq!(
        meta["module"],
        "nn.LSTM(input_size=3, hidden_size=2, num_layers=2, bias=True)"
    );
    assert_eq!(
        meta["readout"],
        "nn.Linear(in_features=2, out_features=4, bias=True)"
    );
}

/// A two-bias Elman and its one-bias twin (`b_h` of the first) with the same weights.
fn two_and_one(act_seed: u64) -> (Elman<f64, Tanh>, Elman<f64, Tanh>) {
    let mut two = elman(Tanh, 3, 2, act_seed);
    randomise(two.params_mut(), act_seed + 1);
    let one = elman(Tanh, 3, 1, act_seed + 2);
    (two, one)
}

#[test]
fn one_bias_elman_writes_zero_bias_hh_and_two_biases_fold_into_one() {
    let dir = scratch("torch-fold");
    // One bias → PyTorch's bias_ih, and bias_hh all zero, so nn.RNN(bias=True) loads it.
    let path = dir.join("one.safetensors");
    let mut one = elman::<f64, _>(Relu, 3, 1, 1);
    randomise(one.params_mut(), 2);
    export_torch(&one, None, TorchPrefixes::default(), &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    assert!(file
        .tensor("bias_hh_l0")
        .unwrap()
        .data()
        .iter()
        .all(|&b| b == 0));
    assert_eq!(file.names().len(), 4);

    // Two biases into a one-bias cell: their sum, and the same step bit for bit.
    let path = dir.join("two.safetensors");
    let (two, mut one) = two_and_one(3);
    export_torch(&two, None, TorchPrefixes::default(), &path).unwrap();
    import_torch(&mut one, None, TorchPrefixes::default(), &path).unwrap();
    let p = two.weights();
    let sum = p.b_h.as_ref().unwrap() + p.b_hh.as_ref().unwrap();
    assert_eq!(one.weights().b_h.as_ref(), Some(&sum));
    let x = array![[0.3, -0.1, 0.7], [-0.4, 0.9, 0.1]];
    let prev = Array2::from_shape_fn((2, 5), |(b, j)| 0.1 * (b as f64 - j as f64));
    let step = |c: &Elman<f64, Tanh>| {
        let mut next = Array2::zeros((2, 5));
        c.forward(
            Input::Dense(x.view()),
            prev.view(),
            next.view_mut(),
            &mut c.new_cache(2),
        )
        .unwrap();
        next
    };
    assert_eq!(step(&one), step(&two));
}

#[test]
fn a_file_written_by_another_tool_loads() {
    // What `safetensors.torch.save_file(nn.GRU(2, 1).state_dict(), path)` writes: no
    // metadata, PyTorch's names and shapes.
    let dir = scratch("torch-foreign");
    let path = dir.join("gru.safetensors");
    let weight_ih: Vec<f64> = (0..6).map(|k| k as f64 / 8.0).collect();
    let weight_hh: Vec<f64> = vec![0.5, -0.25, 0.125];
    let (bias_ih, bias_hh) = (vec![1.0, 2.0, 3.0], vec![-1.0, -2.0, -3.0]);
    let bytes = |v: &[f64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let data = [
        ("weight_ih_l0", vec![3, 2], bytes(&weight_ih)),
        ("weight_hh_l0", vec![3, 1], bytes(&weight_hh)),
        ("bias_ih_l0", vec![3], bytes(&bias_ih)),
        ("bias_hh_l0", vec![3], bytes(&bias_hh)),
    ];
    let views: HashMap<&str, TensorView<'_>> = data
        .iter()
        .map(|(n, s, b)| (*n, TensorView::new(Dtype::F64, s.clone(), b).unwrap()))
        .collect();
    std::fs::write(&path, safetensors::serialize(views, &None).unwrap()).unwrap();
    let mut gru = GruConfig::new(2, 1)
        .init::<f64, _, _>(Sigmoid, Tanh, &mut StdRng::seed_from_u64(0))
        .unwrap();
    import_torch(&mut gru, None, TorchPrefixes::default(), &path).unwrap();
    let p = gru.weights();
    assert_eq!(p.w_ih, array![[0.0, 0.25, 0.5], [0.125, 0.375, 0.625]]);
    assert_eq!(p.w_hh, array![[0.5, -0.25, 0.125]]);
    assert_eq!(p.b_hh.as_ref().unwrap().to_vec(), bias_hh);
}

/// The message of `result`'s error, which must be `Error::InvalidConfig`.
fn refused<T: std::fmt::Debug>(result: recur_core::Result<T>) -> String {
    match result {
        Err(e @ Error::InvalidConfig { .. }) => e.to_string(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn cells_without_a_pytorch_equivalent_are_refused_both_ways() {
    let dir = scratch("torch-refuse");
    let path = dir.join("never.safetensors");
    let none = TorchPrefixes::default();
    let mut sigmoid = elman::<f64, _>(Sigmoid, 3, 1, 1);
    assert!(refused(export_torch(&sigmoid, None, none, &path)).contains("sigmoid"));
    assert!(refused(import_torch(&mut sigmoid, None, none, &path)).contains("sigmoid"));
    assert!(!path.exists());

    let mut rng = StdRng::seed_from_u64(1);
    let tanh_gates = LstmConfig::new(3, 2)
        .init::<f64, _, _>(Tanh, Tanh, &mut rng)
        .unwrap();
    assert!(refused(export_torch(&tanh_gates, None, none, &path)).contains("tanh gates"));
    let before = GruConfig::new(3, 2)
        .with_variant(GruVariant::ResetBefore)
        .init::<f64, _, _>(Sigmoid, Tanh, &mut rng)
        .unwrap();
    assert!(refused(export_torch(&before, None, none, &path)).contains("ResetBefore"));
    let mut one_bias = GruConfig::new(3, 2)
        .init::<f64, _, _>(Sigmoid, Tanh, &mut rng)
        .unwrap();
    one_bias.weights_mut().b_hh = None;
    assert!(refused(export_torch(&one_bias, None, none, &path)).contains("both or neither"));

    let widths = Stack::new(vec![
        elman::<f64, _>(Tanh, 3, 1, 1),
        ElmanConfig::new(5, 4)
            .with_bias(true)
            .init(Tanh, &mut rng)
            .unwrap(),
    ])
    .unwrap();
    assert!(refused(export_torch(&widths, None, none, &path)).contains("hidden size"));
    let biases = Stack::new(vec![elman::<f64, _>(Tanh, 3, 1, 1), elman(Tanh, 5, 0, 2)]).unwrap();
    assert!(refused(export_torch(&biases, None, none, &path)).contains("bias flag"));
    assert!(!path.exists());
}

/// Exports `source` (with `readout` when given) and tries to import it into `target`:
/// the error, and whether `target` was left as it was.
fn failed_import<F: Float, C: Cell<F> + TorchRecurrent<F>, D: Cell<F> + TorchRecurrent<F>>(
    name: &str,
    source: &C,
    with_readout: bool,
    target: &mut D,
    into_readout: bool,
) -> Error {
    let path = scratch(&format!("torch-bad-{name}")).join("file.safetensors");
    let readout = linear::<F>(source.hidden_size(), 3);
    export_torch(source, with_readout.then_some(&readout), MODULE, &path).unwrap();
    let before = bits(target.params());
    let mut into = linear::<F>(target.hidden_size(), 4);
    let error =
        import_torch(target, into_readout.then_some(&mut into), MODULE, &path).expect_err(name);
    assert_eq!(bits(target.params()), before, "{name}: target changed");
    error
}

fn message(e: Error) -> String {
    match e {
        e @ (Error::Checkpoint { .. } | Error::LayoutMismatch { .. }) => e.to_string(),
        other => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn missing_extra_misshapen_and_mistyped_tensors_are_named() {
    let gru = |hidden, bias: bool| {
        GruConfig::new(3, hidden)
            .with_bias(bias)
            .init::<f64, _, _>(Sigmoid, Tanh, &mut StdRng::seed_from_u64(hidden as u64))
            .unwrap()
    };
    let missing = message(failed_import(
        "missing",
        &gru(2, true),
        false,
        &mut gru(2, true),
        true,
    ));
    assert!(
        missing.contains("\"decoder.bias\", \"decoder.weight\""),
        "{missing}"
    );
    let extra = message(failed_import(
        "extra",
        &gru(2, true),
        true,
        &mut gru(2, true),
        false,
    ));
    assert!(
        extra.contains("\"decoder.bias\", \"decoder.weight\""),
        "{extra}"
    );
    let biases = message(failed_import(
        "bias",
        &gru(2, true),
        false,
        &mut gru(2, false),
        false,
    ));
    assert!(
        biases.contains("\"rnn.bias_hh_l0\", \"rnn.bias_ih_l0\""),
        "{biases}"
    );
    let shape = failed_import("shape", &gru(2, true), false, &mut gru(3, true), false);
    assert!(matches!(&shape, Error::LayoutMismatch { name, .. } if name == "rnn.weight_ih_l0"));
    assert!(message(shape).contains("[6, 3]"));

    let single = elman::<f32, _>(Tanh, 3, 1, 1);
    let mut wider = elman::<f64, _>(Tanh, 3, 1, 1);
    let path = scratch("torch-dtype").join("f32.safetensors");
    export_torch(&single, None, TorchPrefixes::default(), &path).unwrap();
    let dtype =
        message(import_torch(&mut wider, None, TorchPrefixes::default(), &path).unwrap_err());
    assert!(dtype.contains("F32") && dtype.contains("f64"), "{dtype}");

    // nn.RNN(bias=False) has no bias for a biased cell, and the reverse.
    let stack = |biases| {
        Stack::new(vec![
            elman::<f64, _>(Relu, 3, biases, 1),
            elman(Relu, 5, biases, 2),
        ])
        .unwrap()
    };
    let extra = message(failed_import("rnn", &stack(2), false, &mut stack(0), false));
    assert!(
        extra.contains("\"rnn.bias_hh_l0\", \"rnn.bias_hh_l1\""),
        "{extra}"
    );
}

#[test]
fn a_one_bias_import_keeps_negative_zero() {
    let dir = scratch("torch-zero");
    let path = dir.join("z.safetensors");
    let mut params = ElmanParams::new(
        Array2::<f64>::ones((2, 2)),
        Array2::ones((2, 2)),
        Some(array![-0.0, 1.5]),
    )
    .unwrap();
    let source = Elman::from_params(params.clone(), Tanh).unwrap();
    params.b_h = Some(array![7.0, 7.0]);
    let mut target = Elman::from_params(params, Tanh).unwrap();
    export_torch(&source, None, TorchPrefixes::default(), &path).unwrap();
    import_torch(&mut target, None, TorchPrefixes::default(), &path).unwrap();
    assert_eq!(bits(target.params()), bits(source.params()));
}
