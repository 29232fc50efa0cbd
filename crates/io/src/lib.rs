//! Saving and loading recur models: training checkpoints and weight export, in one
//! [safetensors](https://huggingface.co/docs/safetensors) format, written atomically.
//!
//! - [`Checkpoint`]: a model's parameters (any [`ParamSet`](recur_core::ParamSet), in slot
//!   order), the optimizer's [`OptimizerState`](recur_optim::OptimizerState) and caller
//!   metadata (configuration, vocabulary, epoch, RNG position, as strings). A checkpoint
//!   saved and loaded restores bit-identical parameters, and the optimizer rebuilt from it
//!   continues exactly as if training had never stopped.
//! - [`export_safetensors`] / [`import_safetensors`]: weights only, one tensor per slot
//!   under the slot's name, for PyTorch, numpy or any other safetensors reader.
//! - [`export_torch`] / [`import_torch`]: a cell and its readout as a PyTorch `state_dict`
//!   (`weight_ih_l0`, …, `[out, in]` layout), for `nn.RNN`/`nn.LSTM`/`nn.GRU` and
//!   `nn.Linear`, both ways; each cell says how it maps through [`TorchRecurrent`].
//! - [`write_atomic`] / [`write_atomic_with`]: the file replacement both use: a crash while
//!   saving leaves the previous file intact, and the next save removes its temporary file.
//!
//! Both file kinds carry a CRC-32C checksum of their whole content, verified on load, and
//! are written byte-for-byte reproducibly: the same state saved twice gives the same file.
//!
//! Every failure is an [`Error`](recur_core::Error), never a panic: a missing file is
//! [`Error::Io`](recur_core::Error::Io) with its path; a truncated, corrupt (checksum
//! mismatch) or foreign file, an unknown format version, another float type or a NaN or
//! infinite weight is [`Error::Checkpoint`](recur_core::Error::Checkpoint) with a reason;
//! a checkpoint of another model is
//! [`Error::LayoutMismatch`](recur_core::Error::LayoutMismatch), and the model is left as it
//! was.
//!
//! ```
//! use std::collections::BTreeMap;
//! use ndarray::array;
//! use recur_io::Checkpoint;
//!
//! # fn main() -> recur_core::Result<()> {
//! let dir = std::env::temp_dir().join(format!("recur-io-doc-crate-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("run.safetensors");
//!
//! let weights = array![[0.1_f64, 0.2], [0.3, 0.4]];
//! let metadata = BTreeMap::from([("step".to_string(), "1200".to_string())]);
//! Checkpoint::capture(&weights, None, metadata).save(&path)?;
//!
//! let mut restored = ndarray::Array2::<f64>::zeros((2, 2));
//! let checkpoint = Checkpoint::load(&path)?;
//! checkpoint.restore(&mut restored)?;
//! assert_eq!(restored, weights);
//! assert_eq!(checkpoint.metadata["step"], "1200");
//!
//! // A parameter set of another shape is refused and left alone.
//! let mut other = ndarray::Array2::<f64>::zeros((3, 2));
//! assert!(checkpoint.restore(&mut other).is_err());
//! # std::fs::remove_dir_all(&dir).unwrap();
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
//! core, cell and optim; data stands alone.

mod archive;
mod atomic;
mod checkpoint;
mod export;
mod torch;

pub use atomic::{write_atomic, write_atomic_with};
pub use checkpoint::{Checkpoint, CHECKPOINT_FORMAT, FORMAT_VERSION, WEIGHTS_FORMAT};
pub use export::{export_safetensors, import_safetensors};
pub use torch::{
    export_torch, import_torch, TorchLayer, TorchModule, TorchPrefixes, TorchRecurrent,
    TORCH_FORMAT,
};
