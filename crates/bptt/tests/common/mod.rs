//! Models and token data shared by the integration tests.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use ndarray::Array2;
use rand::{rngs::StdRng, Rng, SeedableRng};
use recur_bptt::{Model, SeqBatch, SeqInput, SeqTargets};
use recur_cell::{Elman, ElmanConfig, LinearConfig, Tanh};
use recur_core::Float;

/// A tanh Elman language model over `vocab` token ids, seeded; biases on both layers if
/// `bias`.
pub fn token_model<F: Float>(
    vocab: usize,
    hidden: usize,
    bias: bool,
    seed: u64,
) -> Model<F, Elman<F, Tanh>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let cell = ElmanConfig::new(vocab, hidden)
        .with_bias(bias)
        .init(Tanh, &mut rng)
        .unwrap();
    let readout = LinearConfig::new(hidden, vocab)
        .with_bias(bias)
        .init(&mut rng)
        .unwrap();
    Model::new(cell, readout).unwrap()
}

/// Seeded uniform token ids, `[len, batch]`: inputs, then targets.
pub fn token_text(
    len: usize,
    batch: usize,
    vocab: usize,
    seed: u64,
) -> (Array2<usize>, Array2<usize>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let x = Array2::from_shape_fn((len, batch), |_| rng.random_range(0..vocab));
    let y = Array2::from_shape_fn((len, batch), |_| rng.random_range(0..vocab));
    (x, y)
}

/// A batch of token inputs `x` with class targets `y`.
pub fn token_batch<'a, F>(x: &'a Array2<usize>, y: &'a Array2<usize>) -> SeqBatch<'a, F> {
    SeqBatch {
        inputs: SeqInput::Tokens(x.view()),
        targets: SeqTargets::Classes(y.view()),
    }
}
