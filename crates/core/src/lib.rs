//! The small vocabulary every recur crate shares.
//!
//! - [`Activation`]: element-wise functions with derivatives written from their output
//!   ([`Tanh`], [`Sigmoid`], [`Relu`], [`LeakyRelu`], [`Identity`], [`Softsign`]).
//! - [`Float`]: the scalar bound (`f32` or `f64`) all numeric code is generic over.
//! - [`ParamSet`]: a model's parameters (and, with the same type, its gradients) as an
//!   ordered list of named tensors, so optimizers, clipping, gradient checks and
//!   checkpoints all walk one structure; slots are named by paths (`cell.layers.0.w_xh`).
//!   [`param_set!`] declares one from a struct of arrays.
//! - [`Input`]: one time step of input, either dense rows or token ids.
//! - [`Error`] and [`Result`]: the one error type of the workspace.
//!
//! Sibling crates: `recur-cell` (activations, cells, the linear readout), `recur-loss`,
//! `recur-optim`, `recur-bptt` (the engine) and `recur-data` (corpora for the examples).
//!
//! ```
//! use ndarray::array;
//! use recur_core::{ParamSet, params};
//!
//! // A pair of parameter sets is itself a parameter set: slots are concatenated in order.
//! let mut pair = (array![[1.0_f64, 2.0]], array![3.0_f64]);
//! assert_eq!(pair.slot_count(), 2);
//! assert_eq!(params::flatten(&pair), vec![1.0, 2.0, 3.0]);
//! params::scale(&mut pair, 2.0);
//! assert!((params::global_norm(&pair) - (4.0_f64 + 16.0 + 36.0).sqrt()).abs() < 1e-12);
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

pub mod activation;
mod declare;
mod error;
pub mod fast_exp;
pub mod fast_tanh;
mod float;
mod input;
pub mod params;

/// Dense matrix products: the allocation-free, CPU-dispatched kernels of `recur-linalg`.
pub use recur_linalg as linalg;

pub use activation::{Activation, Identity, LeakyRelu, Relu, Sigmoid, Softsign, Tanh};
pub use error::{Error, Result};
pub use float::Float;
pub use input::Input;
pub use params::{ParamSet, RowSet, Slot, SlotMut};
