//! The engine: forward passes over sequences and truncated backpropagation through time
//! for any [`recur_cell::Cell`].
//!
//! - [`Model`]: a cell and a readout ([`recur_cell::Linear`] by default); its parameters are
//!   one [`recur_core::ParamSet`] named by paths (`cell.w_xh`, `readout.w_hy`).
//! - [`Truncation`]: which gradient paths are kept — Williams & Peng's BPTT(h; h′), with
//!   [`Truncation::full`], [`Truncation::chunked`], [`Truncation::per_output`] (the
//!   language-model tutorial's) and [`Truncation::last`].
//! - [`Bptt`]: forward and backward over a batch of sequences (`[T, B, ·]`, time-major),
//!   adding the gradient into a [`Gradients`]. Reuses its buffers: no allocation per step.
//! - [`Trainer`]: gradient, non-finite check, clipping, optimizer step; per batch
//!   ([`Trainer::train_batch`]) or streaming over a long text with the hidden state carried
//!   on ([`Trainer::train_stream`], memory bounded by the window).
//! - [`Trainer::fit`]: the training loop every program shares — epochs of [`Batches`],
//!   evaluation on held-out data, the learning-rate schedule, and [`Observer`]s (early
//!   stopping, logs, checkpoints, progress) that default to doing nothing.
//! - [`Predictor`]: one step at a time, for generation.
//! - [`gradient_check`]: central differences against the engine, for any model.
//!
//! Variable-length batches: pad the inputs with any valid token and the class targets with
//! [`recur_loss::IGNORE`]; padded steps then add no loss and no gradient. (Right-padding
//! only: a padded step in the middle would still feed the state forward.) Dense targets
//! have no ignore marker: bucket sequences of equal length instead
//! (`recur_data::bucket_by_length`).
//!
//! ```
//! use rand::{rngs::StdRng, SeedableRng};
//! use recur_bptt::{Bptt, Model, SeqBatch, Truncation};
//! use recur_cell::{ElmanConfig, LinearConfig, Tanh};
//! use recur_loss::{Reduction, SoftmaxCrossEntropy};
//!
//! let mut rng = StdRng::seed_from_u64(0);
//! let cell = ElmanConfig::new(6, 8).init::<f64, _>(Tanh, &mut rng)?;
//! let model = Model::new(cell, LinearConfig::new(8, 6).init(&mut rng)?)?;
//! let (x, y) = ([0, 4, 2, 5, 1], [4, 2, 5, 1, 3]);
//! let batch = SeqBatch::sentence(&x, &y)?;
//!
//! // The same batch under full BPTT and under the tutorial's per-output truncation.
//! let mut full = model.zero_grads();
//! Bptt::new(Truncation::full(), Reduction::Sum).accumulate(&model, &SoftmaxCrossEntropy, batch, None, &mut full)?;
//! let mut truncated = model.zero_grads();
//! Bptt::new(Truncation::per_output(1)?, Reduction::Sum).accumulate(&model, &SoftmaxCrossEntropy, batch, None, &mut truncated)?;
//! // The readout's gradient needs only each step's own state, so truncation leaves it alone.
//! assert_eq!(full.readout.w_hy, truncated.readout.w_hy);
//! assert_ne!(full.cell.w_hh, truncated.cell.w_hh);
//! # Ok::<(), recur_core::Error>(())
//! ```
//!
//! ## The workspace
//!
//! | crate | job |
//! |---|---|
//! | `recur-linalg` | allocation-free matrix products (AVX-512/AVX2 chosen at run time) |
//! | `recur-core` | float bound, parameter sets, inputs, errors, activations |
//! | `recur-cell` | the `Cell` trait, `Elman`, the `Linear` readout, initialisation |
//! | `recur-loss` | losses that own their output function |
//! | `recur-optim` | optimizers, clipping, schedules over any parameter set |
//! | `recur-bptt` | the engine: forward, truncated backward, training, gradient checks |
//! | `recur-io` | checkpoints and safetensors export |
//! | `recur-data` | corpora, vocabularies, binary-addition samples |
//! | `recur` | the facade: re-exports, examples, benchmarks |
//!
//! Dependencies flow one way: linalg ← core ← cell, loss, optim ← bptt; io builds on
//! core and optim; data stands alone.

mod engine;
mod fit;
mod fused;
mod gradcheck;
mod model;
mod sequence;
mod trainer;
mod truncation;

pub use engine::{Bptt, LossReport};
pub use fit::{
    mean_loss, Batches, Control, Deadline, Diverged, Divergence, DivergenceCause, EarlyStop,
    EvaluateEvery, Evaluation, Every, Fit, Interrupt, LossLog, Observer, RunState, RunView,
    StopAfter, StreamPoint, TokenBatches,
};
pub use gradcheck::{gradient_check, GradCheckReport, SlotCheck};
pub use model::{Gradients, Model, Predictor};
pub use sequence::{SeqBatch, SeqInput, SeqTargets};
pub use trainer::{Trainer, UpdateReport};
pub use truncation::Truncation;
