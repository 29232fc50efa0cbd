//! Recurrent cells with pluggable activations, and the linear readout.
//!
//! - [`Cell`]: the recurrence `h_t = f(x_t, h_{t−1}; θ)` as one forward and one backward
//!   step. The `recur-bptt` engine drives any `Cell` over a sequence; a cell never sees
//!   more than one step.
//! - [`Elman`]: `h_t = f(x_t·W_xh + h_{t−1}·W_hh + b_h)`, generic over its activation
//!   `f`. The tanh cell of the language model and the sigmoid cell of binary addition are
//!   `Elman<F, Tanh>` and `Elman<F, Sigmoid>`.
//! - [`Linear`]: the per-step readout `z_t = h_t·W_hy + b_y`, applied to all steps at once.
//! - [`Init`]: seeded weight initialisation.
//! - Activations are defined in `recur-core` and re-exported here.
//!
//! ```
//! use ndarray::Array2;
//! use rand::{rngs::StdRng, SeedableRng};
//! use recur_cell::{Cell, ElmanConfig, Input, Tanh};
//!
//! let mut rng = StdRng::seed_from_u64(0);
//! let cell = ElmanConfig::new(8, 4).init::<f64, _>(Tanh, &mut rng).unwrap();
//! let prev = cell.zero_state(2);
//! let mut next = Array2::zeros((2, 4));
//! let mut cache = cell.new_cache(2);
//! // Two sequences whose current tokens are 3 and 7: a row gather, no one-hot vector.
//! cell.forward(Input::Tokens(&[3, 7]), prev.view(), next.view_mut(), &mut cache).unwrap();
//! assert!(next.iter().all(|h| h.abs() < 1.0));
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

mod cell;
mod elman;
mod gated;
mod gru;
mod init;
mod linear;
mod lstm;
mod readout;
mod stack;
pub mod step;

pub use cell::{Cell, StepDeltas, StepRecord, SweepRecord};
pub use elman::{Elman, ElmanCache, ElmanConfig, ElmanParams};
pub use gated::{GatedParams, GruParams, LstmParams};
pub use gru::{Gru, GruCache, GruConfig, GruVariant};
pub use init::Init;
pub use linear::{Linear, LinearConfig, LinearParams};
pub use lstm::{Lstm, LstmCache, LstmConfig};
pub use readout::Readout;
pub use recur_core::activation::{Activation, Identity, LeakyRelu, Relu, Sigmoid, Softsign, Tanh};
pub use recur_core::{Error, Float, Input, ParamSet, Result};
pub use stack::{Dropped, Pair, PairParams, Stack, StackCache, StackParams};
