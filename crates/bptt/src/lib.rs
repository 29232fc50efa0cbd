//! The engine: forward passes over sequences and truncated backpropagation through time
//! for any [`recur_cell::Cell`].

mod engine;
mod gradcheck;
mod model;
mod sequence;
mod trainer;
mod truncation;

pub use engine::{Bptt, LossReport};
pub use gradcheck::{gradient_check, GradCheckReport, SlotCheck};
pub use model::{Gradients, Model, Predictor};
pub use sequence::{SeqBatch, SeqInput, SeqTargets};
pub use trainer::{Trainer, UpdateReport};
pub use truncation::Truncation;
