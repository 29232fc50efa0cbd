//! # recur
//!
//! Recurrent neural networks you can read, trust and extend: cells with pluggable
//! activations, separate loss and optimizer crates, and one engine that runs (truncated)
//! backpropagation through time over any cell.
//!
//! This crate re-exports the workspace's crates under short names:
//!
//! | module | crate | what it holds |
//! |---|---|---|
//! | [`core`] | `recur-core` | [`Float`], [`ParamSet`] (slots named by path) and [`param_set!`], [`Input`], [`Error`], activations; `core::linalg` (matrix products) |
//! | [`cell`] | `recur-cell` | the [`Cell`] and [`Readout`] traits, [`Elman`], [`Stack`] and [`Pair`] of cells, the [`Linear`] readout, [`Init`]; `cell::step` helpers for new cells |
//! | [`loss`] | `recur-loss` | [`Loss`], [`SoftmaxCrossEntropy`], [`MeanSquaredError`], [`SigmoidBinaryCrossEntropy`] |
//! | [`optim`] | `recur-optim` | [`Optimizer`], [`Sgd`], [`Momentum`], [`Adagrad`], [`RmsProp`], [`Adam`], clipping, schedules |
//! | [`bptt`] | `recur-bptt` | [`Bptt`], [`Truncation`], [`Trainer`] and its loop [`Trainer::fit`] with [`Observer`]s, [`Model`], [`gradient_check`] |
//! | [`io`] | `recur-io` | checkpoints (atomic, bit-exact) and safetensors weight export |
//! | [`data`] | `recur-data` | corpora, tokenising, vocabularies, binary-addition samples |
//!
//! ## A model in fifteen lines
//!
//! ```
//! use rand::{rngs::StdRng, SeedableRng};
//! use recur::prelude::*;
//!
//! let mut rng = StdRng::seed_from_u64(42);
//! let cell = ElmanConfig::new(10, 16).init::<f32, _>(Tanh, &mut rng)?;
//! let readout = LinearConfig::new(16, 10).init(&mut rng)?;
//! let mut model = Model::new(cell, readout)?;
//! let optimizer = Box::new(Sgd::new(0.1)?);
//! let mut trainer = Trainer::new(&model, Truncation::per_output(4)?, Reduction::Mean, optimizer);
//!
//! // One sentence: predict each next token.
//! let (inputs, targets) = ([0, 3, 5, 7, 2], [3, 5, 7, 2, 1]);
//! let batch = SeqBatch::sentence(&inputs, &targets)?;
//! let first = trainer.train_batch(&mut model, &SoftmaxCrossEntropy, batch, None)?;
//! for _ in 0..50 {
//!     trainer.train_batch(&mut model, &SoftmaxCrossEntropy, batch, None)?;
//! }
//! let last = trainer.evaluate(&model, &SoftmaxCrossEntropy, batch)?;
//! assert!(last.mean() < first.loss.mean());
//! # Ok::<(), recur::Error>(())
//! ```
//!
//! The guides in `docs/` derive the backward pass and map each equation to the code.

pub use recur_bptt as bptt;
pub use recur_cell as cell;
pub use recur_core as core;
pub use recur_data as data;
pub use recur_io as io;
pub use recur_loss as loss;
pub use recur_optim as optim;

pub use recur_bptt::{
    gradient_check, mean_loss, Batches, Bptt, Control, Deadline, Diverged, Divergence,
    DivergenceCause, EarlyStop, EvaluateEvery, Evaluation, Every, Fit, Gradients, Interrupt,
    LossLog, LossReport, Model, Observer, Predictor, RunState, RunView, SeqBatch, SeqInput,
    SeqTargets, StopAfter, StreamPoint, TokenBatches, Trainer, Truncation, UpdateReport,
};
pub use recur_cell::{
    Cell, Elman, ElmanConfig, GatedParams, Gru, GruConfig, GruVariant, Init, Linear, LinearConfig,
    Lstm, LstmConfig, Pair, Readout, Stack, StepDeltas, StepRecord, SweepRecord,
};
pub use recur_core::{param_set, Activation, Error, Float, Input, ParamSet, Result};
pub use recur_loss::{
    Loss, MeanSquaredError, Reduction, SigmoidBinaryCrossEntropy, SoftmaxCrossEntropy,
};
pub use recur_optim::{
    Adagrad, Adam, Clip, Momentum, Optimizer, OptimizerConfig, RmsProp, Schedule, Sgd,
};

/// Everything a training script usually needs, in one import.
pub mod prelude {
    pub use recur_bptt::{
        Batches, Bptt, Control, Fit, Model, Observer, Predictor, RunState, SeqBatch, SeqInput,
        SeqTargets, Trainer, Truncation, UpdateReport,
    };
    pub use recur_cell::{
        Activation, Cell, Elman, ElmanConfig, Gru, GruConfig, GruVariant, Identity, Init, Input,
        LeakyRelu, Linear, LinearConfig, Lstm, LstmConfig, Pair, Readout, Relu, Sigmoid, Softsign,
        Stack, StepDeltas, StepRecord, Tanh,
    };
    pub use recur_core::{Float, ParamSet};
    pub use recur_loss::{
        Loss, MeanSquaredError, Reduction, SigmoidBinaryCrossEntropy, SoftmaxCrossEntropy,
    };
    pub use recur_optim::{Clip, Optimizer, Sgd};
}
pub mod guide;

/// The README's example, compiled and run with the doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
