//! Long-form guides, compiled and tested with the crate's doctests.
//!
//! The same files are readable as plain Markdown in the repository's `docs/` folder.

#[doc = include_str!("../docs/bptt.md")]
pub mod bptt {}

#[doc = include_str!("../docs/architecture.md")]
pub mod architecture {}

#[doc = include_str!("../docs/custom-cells.md")]
#[doc = "\n## `examples/custom_cell.rs`\n\n````text"]
#[doc = include_str!("../examples/custom_cell.rs")]
#[doc = "````"]
pub mod custom_cells {}

#[doc = include_str!("../docs/truncation.md")]
pub mod truncation {}

#[doc = include_str!("../docs/binary-addition.md")]
pub mod binary_addition {}

#[doc = include_str!("../docs/pytorch.md")]
pub mod pytorch {}

#[doc = include_str!("../docs/performance.md")]
pub mod performance {}
