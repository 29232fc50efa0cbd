//! Optimizers for any [`ParamSet`](recur_core::ParamSet): SGD, classic and Nesterov
//! momentum, Adagrad, RMSprop and Adam; gradient clipping; learning-rate schedules.
//!
//! This crate knows nothing about cells or models. An [`Optimizer`] walks the slots of a
//! parameter set and of its gradient (the same type, the same layout) and updates the
//! parameters in place; everything is object safe, so a trainer holds a
//! `Box<dyn Optimizer<F>>` chosen at run time from an [`OptimizerConfig`] (serde, or a
//! command-line string such as `adam:0.001`).
//!
//! - **Update rules**: [`Sgd`], [`Momentum`] (classic and Nesterov), [`Adagrad`],
//!   [`RmsProp`], [`Adam`]; each has a validating constructor. Per-slot buffers are
//!   allocated at the first step and reused, so steady-state steps do not allocate.
//! - **Sparse rows**: a gradient slot may list the only rows of axis 0 that are non-zero
//!   (the input weights of a token-id input). SGD and Adagrad then touch only those rows,
//!   which gives exactly the dense result; momentum, RMSprop and Adam update densely,
//!   because their buffers change rows that had no gradient.
//! - **Decaying buffers** (momentum's velocity, RMSprop's and Adam's moments) are set to
//!   zero when they fall below the smallest normal number instead of lingering in the
//!   subnormal range, where x86 arithmetic is up to two orders of magnitude slower: rows
//!   with no recent gradient used to halve a language model's speed over a run. With the
//!   usual `eps` (1e-8) the change to a step is far below rounding.
//! - **Checkpoints**: [`Optimizer::state`] returns an [`OptimizerState`] (serde) from which
//!   [`Optimizer::load_state`] or [`OptimizerState::into_optimizer`] resume bit-identically.
//! - **Clipping**: [`clip_by_value`], [`clip_by_global_norm`] and the [`Clip`] policy.
//! - **Schedules**: [`Schedule`]: constant, step decay, exponential decay, and the halve-
//!   when-the-loss-rises rule of the classic language-model tutorial.
//! - **Errors**: layout mismatches and non-finite gradients are reported (and leave
//!   everything unchanged), never panics.
//!
//! ```
//! use ndarray::array;
//! use recur_optim::{Clip, Optimizer, OptimizerConfig, Schedule};
//!
//! # fn main() -> recur_core::Result<()> {
//! // Minimise f(w, b) = ½‖w − (1, −2)‖² + ½(b − 3)², whose gradient is (w − w*, b − b*).
//! let mut opt = "nesterov:0.1:0.9".parse::<OptimizerConfig>()?.build::<f64>()?;
//! let clip: Clip = "norm:5".parse()?;
//! let mut schedule = Schedule::halve_on_plateau();
//! let mut params = (array![0.0, 0.0], array![0.0]);
//! for step in 0..300 {
//!     let (w, b) = &params;
//!     let mut grads = (w - &array![1.0, -2.0], b - &array![3.0]);
//!     clip.apply(&mut grads)?;
//!     opt.step(&mut params, &grads)?;
//!     if step % 10 == 0 {
//!         let loss = 0.5 * recur_core::params::global_norm(&grads).powi(2);
//!         schedule.on_evaluation(loss, opt.as_mut())?;
//!     }
//! }
//! assert!((params.0[1] + 2.0).abs() < 1e-6 && (params.1[0] - 3.0).abs() < 1e-6);
//! # Ok(())
//! # }
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

mod adagrad;
mod adam;
mod clip;
pub mod config;
mod kernel;
mod momentum;
mod optimizer;
mod rmsprop;
mod schedule;
mod sgd;
mod state;

pub use adagrad::Adagrad;
pub use adam::Adam;
pub use clip::{clip_by_global_norm, clip_by_value, Clip};
pub use config::OptimizerConfig;
pub use momentum::Momentum;
pub use optimizer::Optimizer;
pub use rmsprop::RmsProp;
pub use schedule::Schedule;
pub use sgd::Sgd;
pub use state::{OptimizerState, SlotState};
