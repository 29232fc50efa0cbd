//! Every cell × activation combination passes the finite-difference gradient check through
//! a multi-step sequence, with token and dense inputs, without bias, with one and with two
//! (`b_h` and the recurrent `b_hh`).

use ndarray::{Array2, Array3};
use rand::{rngs::StdRng, Rng, SeedableRng};
use recur::prelude::*;
use recur::{gradient_check, SeqInput, SeqTargets};

fn check<A: Activation<f64> + Copy>(activation: A) {
    let mut rng = StdRng::seed_from_u64(17);
    for (bias, recurrent_bias) in [(false, false), (true, false), (true, true)] {
        let cell = ElmanConfig::new(4, 5)
            .with_bias(bias)
            .with_recurrent_bias(recurrent_bias)
            .init::<f64, _>(activation, &mut rng)
            .unwrap();
        let readout = LinearConfig::new(5, 3)
            .with_bias(bias)
            .init(&mut rng)
            .unwrap();
        let mut model = Model::new(cell, readout).unwrap();
        let tokens = Array2::from_shape_fn((7, 2), |_| rng.random_range(0..4));
        let dense = Array3::from_shape_fn((7, 2, 4), |_| rng.random_range(-1.0..1.0));
        let targets = Array2::from_shape_fn((7, 2), |_| rng.random_range(0..3));
        for inputs in [
            SeqInput::Tokens(tokens.view()),
            SeqInput::Dense(dense.view()),
        ] {
            let batch = SeqBatch {
                inputs,
                targets: SeqTargets::Classes(targets.view()),
            };
            let report = gradient_check(
                &mut model,
                &SoftmaxCrossEntropy,
                batch,
                Reduction::Sum,
                1e-5,
                1,
            )
            .unwrap();
            assert!(
                report.max_relative_error() < 1e-6,
                "{} (bias {bias}, recurrent bias {recurrent_bias}): {report:#?}",
                Activation::<f64>::name(&activation)
            );
        }
    }
}

#[test]
fn elman_tanh() {
    check(Tanh);
}

#[test]
fn elman_sigmoid() {
    check(Sigmoid);
}

#[test]
fn elman_relu() {
    check(Relu);
}

#[test]
fn elman_leaky_relu() {
    check(LeakyRelu { slope: 0.1 });
}

#[test]
fn elman_identity() {
    check(Identity);
}

#[test]
fn elman_softsign() {
    check(Softsign);
}
