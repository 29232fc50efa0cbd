//! Property: every kind of model — Elman with each activation, LSTM, both GRU variants,
//! stacks and pairs, with and without biases, in f32 and f64 — comes back from a
//! checkpoint bit for bit, whatever finite values its weights hold (signed zeros,
//! subnormals, the largest floats included).

use proptest::prelude::*;
use rand::{rngs::StdRng, Rng, SeedableRng};
use recur_bptt::Model;
use recur_cell::{
    Cell, ElmanConfig, GruConfig, GruVariant, Identity, LeakyRelu, LinearConfig, LstmConfig, Pair,
    Relu, Sigmoid, Softsign, Stack, Tanh,
};
use recur_core::{Float, ParamSet};
use recur_io::Checkpoint;

/// What a model is made of: sizes, biases, the seed of its weights.
#[derive(Debug, Clone, Copy)]
struct Spec {
    input: usize,
    hidden: usize,
    bias: bool,
    seed: u64,
}

/// Overwrites every weight with finite values drawn from `seed`, often awkward ones.
fn fill<F: Float>(params: &mut dyn ParamSet<F>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let awkward = [0.0, -0.0, 1e-40, -1e-310, 3.4e38, -1.7e308, 1.0 / 3.0];
    for i in 0..params.slot_count() {
        for v in params.slot_mut(i).value.iter_mut() {
            let x = if rng.random_bool(0.3) {
                awkward[rng.random_range(0..awkward.len())]
            } else {
                rng.random_range(-4.0..4.0)
            };
            // Values beyond F's range become its largest finite value.
            let y = F::from_f64_lossy(x);
            *v = if y.is_finite() {
                y
            } else {
                F::from_f64_lossy(f64::from(f32::MAX))
            };
        }
    }
}

/// Saves a model built by `build` with random weights, restores into another built with
/// other weights, and compares every slot's bits.
fn round_trip<F: Float, C: Cell<F>>(
    spec: Spec,
    build: impl Fn(&Spec, &mut StdRng) -> C,
) -> Result<(), TestCaseError> {
    let make = |seed: u64| {
        let mut rng = StdRng::seed_from_u64(seed);
        let cell = build(&spec, &mut rng);
        let readout = LinearConfig::new(spec.hidden, 3)
            .with_bias(spec.bias)
            .init(&mut rng)
            .unwrap();
        Model::new(cell, readout).unwrap()
    };
    let mut model = make(spec.seed);
    fill(&mut model, spec.seed ^ 0xabcd);
    let path = std::env::temp_dir().join(format!(
        "recur-roundtrip-{}-{}-{}.safetensors",
        std::process::id(),
        F::NAME,
        spec.seed
    ));
    Checkpoint::capture(&model, None, Default::default())
        .save(&path)
        .unwrap();
    let mut other = make(spec.seed.wrapping_add(1));
    Checkpoint::<F>::load(&path)
        .unwrap()
        .restore(&mut other)
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    for i in 0..model.slot_count() {
        let (a, b) = (model.slot(i).value, other.slot(i).value);
        prop_assert_eq!(a.shape(), b.shape());
        let bits = |v: F| v.to_f64_lossless().to_bits();
        prop_assert!(
            a.iter().zip(b.iter()).all(|(&x, &y)| bits(x) == bits(y)),
            "slot {} differs",
            i
        );
    }
    Ok(())
}

/// Every cell kind, by number.
fn check<F: Float>(kind: usize, spec: Spec) -> Result<(), TestCaseError> {
    let elman = |s: &Spec| ElmanConfig::new(s.input, s.hidden).with_bias(s.bias);
    let lstm = |s: &Spec| LstmConfig::new(s.input, s.hidden).with_bias(s.bias);
    let gru = |s: &Spec, v| {
        GruConfig::new(s.input, s.hidden)
            .with_bias(s.bias)
            .with_variant(v)
    };
    let on_top = |s: &Spec| Spec {
        input: s.hidden,
        ..*s
    };
    match kind {
        0 => round_trip::<F, _>(spec, |s, r| elman(s).init(Tanh, r).unwrap()),
        1 => round_trip::<F, _>(spec, |s, r| elman(s).init(Sigmoid, r).unwrap()),
        2 => round_trip::<F, _>(spec, |s, r| elman(s).init(Relu, r).unwrap()),
        3 => round_trip::<F, _>(spec, |s, r| {
            elman(s).init(LeakyRelu { slope: 0.1 }, r).unwrap()
        }),
        4 => round_trip::<F, _>(spec, |s, r| elman(s).init(Identity, r).unwrap()),
        5 => round_trip::<F, _>(spec, |s, r| elman(s).init(Softsign, r).unwrap()),
        6 => round_trip::<F, _>(spec, |s, r| lstm(s).init(Sigmoid, Tanh, r).unwrap()),
        7 => round_trip::<F, _>(spec, |s, r| {
            gru(s, GruVariant::ResetAfter)
                .init(Sigmoid, Tanh, r)
                .unwrap()
        }),
        8 => round_trip::<F, _>(spec, |s, r| {
            gru(s, GruVariant::ResetBefore)
                .init(Sigmoid, Tanh, r)
                .unwrap()
        }),
        9 => round_trip::<F, _>(spec, |s, r| {
            let top = on_top(s);
            let layers = vec![
                lstm(s).init(Sigmoid, Tanh, r).unwrap(),
                lstm(&top).init(Sigmoid, Tanh, r).unwrap(),
            ];
            Stack::new(layers).unwrap()
        }),
        _ => round_trip::<F, _>(spec, |s, r| {
            let lower = elman(s).init(Tanh, r).unwrap();
            let upper = gru(&on_top(s), GruVariant::ResetAfter)
                .init(Sigmoid, Tanh, r)
                .unwrap();
            Pair::new(lower, upper).unwrap()
        }),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_model_kind_round_trips_bit_for_bit(
        kind in 0usize..11,
        input in 1usize..5,
        hidden in 1usize..5,
        bias: bool,
        seed: u64,
        double: bool,
    ) {
        let spec = Spec { input, hidden, bias, seed };
        if double {
            check::<f64>(kind, spec)?;
        } else {
            check::<f32>(kind, spec)?;
        }
    }
}
