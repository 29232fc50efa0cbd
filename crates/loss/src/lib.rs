//! Per-step losses for recurrent models.
//!
//! The readout of a recur model is affine: it produces *logits* `z = h·W_hy + b_y`, one row
//! per time step and sequence (`[N, O]`). A [`Loss`] owns the output function that turns
//! logits into outputs and returns the gradient with respect to the logits, so links and
//! losses that belong together are fused, exact and stable:
//!
//! | loss | outputs ([`Loss::predict`]) | row loss `ℓ_n` | `∂ℓ_n/∂z_n` |
//! |---|---|---|---|
//! | [`SoftmaxCrossEntropy`] | `softmax(z)` | `logsumexp(z) − z_y` | `softmax(z) − onehot(y)` |
//! | [`MeanSquaredError<A>`] | `A(z)` | `½ Σ (A(z) − y)²` | `(A(z) − y) · A'(z)` |
//! | [`SigmoidBinaryCrossEntropy`] | `σ(z)` | `Σ softplus(z) − y·z` | `σ(z) − y` |
//!
//! Losses report per-row values; the caller combines them with a [`Reduction`] (sum, or mean
//! over the rows not marked [`IGNORE`]) and passes the same factor as `grad_scale`, so the
//! gradient is that of the reduced loss. [`fast_exp`] is the vectorisable exponential the
//! softmax runs on, public for other crates' hot loops.
//!
//! ```
//! use ndarray::{array, Array1, Array2};
//! use recur_loss::{Loss, Reduction, SoftmaxCrossEntropy, Targets, IGNORE};
//!
//! // Three steps of a 4-word vocabulary; the last step is padding.
//! let logits = array![[2.0_f32, 0.5, -1.0, 0.0], [0.1, 0.2, 3.0, -0.3], [0.0, 0.0, 0.0, 0.0]];
//! let next_words = [0, 2, IGNORE];
//! let targets = Targets::Classes(&next_words);
//!
//! let mut row_loss = Array1::zeros(3);
//! let mut d_logits = Array2::zeros((3, 4));
//! let scale = Reduction::Mean.scale(targets.counted_rows()); // 1/2
//! SoftmaxCrossEntropy.evaluate(
//!     logits.view(), targets, row_loss.view_mut(), Some(d_logits.view_mut()), scale,
//! )?;
//! let mean_loss = row_loss.sum() * scale;
//! assert!(mean_loss > 0.0 && mean_loss < 0.5);
//! assert_eq!(row_loss[2], 0.0);
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

mod kernels;
mod loss;
mod reduction;
mod sigmoid_bce;
mod softmax_xent;
mod squared_error;
mod targets;
#[cfg(test)]
mod test_util;

pub use loss::Loss;
/// The vectorisable exponential, defined in `recur-core` (where the activations use it) and
/// re-exported here for the softmax and for other crates' hot loops.
pub use recur_core::fast_exp;
pub use reduction::Reduction;
pub use sigmoid_bce::SigmoidBinaryCrossEntropy;
pub use softmax_xent::SoftmaxCrossEntropy;
pub use squared_error::MeanSquaredError;
pub use targets::{Targets, IGNORE};
