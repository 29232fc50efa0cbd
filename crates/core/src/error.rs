//! The error type shared by every recur crate.

use std::path::PathBuf;

/// `Result` with recur's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a caller of recur can get wrong, and the failures recur reports instead of
/// panicking. Each message names the operation and what to change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An array had the wrong shape for an operation.
    #[error("{op}: expected shape {expected:?}, found {found:?}")]
    ShapeMismatch {
        /// The operation that checked the shape.
        op: &'static str,
        /// The shape it needed.
        expected: Vec<usize>,
        /// The shape it was given.
        found: Vec<usize>,
    },
    /// A token id was not below the vocabulary (input or output) size.
    #[error("token id {token} is out of range for a vocabulary of {vocab_size}")]
    TokenOutOfRange {
        /// The offending id.
        token: usize,
        /// The size of the vocabulary it should index.
        vocab_size: usize,
    },
    /// An operation was given no data: a sequence of length zero, an empty batch or corpus.
    #[error("{op}: nothing to work on (empty {what})")]
    Empty {
        /// The operation.
        op: &'static str,
        /// What was empty.
        what: &'static str,
    },
    /// A configuration value is out of its valid range.
    #[error("invalid {name}: {reason}")]
    InvalidConfig {
        /// The setting, as named in the API.
        name: &'static str,
        /// Why the value is invalid and what is allowed.
        reason: String,
    },
    /// A loss, gradient or parameter became NaN or infinite; nothing was updated.
    #[error("non-finite {what} at update {update}; parameters were left unchanged")]
    NonFinite {
        /// What was non-finite (`"loss"`, `"gradient"`).
        what: &'static str,
        /// The update (optimizer step) counter at which it happened.
        update: u64,
    },
    /// Two parameter sets (e.g. parameters and gradients, or an optimizer's state) do not
    /// have the same layout.
    #[error("parameter layout mismatch at slot {slot} ({name}): {reason}")]
    LayoutMismatch {
        /// Slot index.
        slot: usize,
        /// Slot name.
        name: String,
        /// What differs.
        reason: String,
    },
    /// Two parameter slots of one model have the same full path name, so checkpoints,
    /// exports and optimizer state could not tell them apart.
    #[error(
        "two parameter slots ({first} and {second}) are both named {path:?}; \
         give the slots of each parameter set distinct names"
    )]
    DuplicateName {
        /// The repeated path.
        path: String,
        /// Index of the first slot with that path.
        first: usize,
        /// Index of the second.
        second: usize,
    },
    /// A checkpoint could not be used.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl From<recur_linalg::LinalgError> for Error {
    fn from(e: recur_linalg::LinalgError) -> Self {
        match e {
            recur_linalg::LinalgError::ShapeMismatch {
                a_rows,
                a_cols,
                b_rows,
                b_cols,
                c_rows,
                c_cols,
            } => Error::ShapeMismatch {
                op: "matrix product",
                expected: vec![a_rows, a_cols, a_cols, b_cols, a_rows, b_cols],
                found: vec![a_rows, a_cols, b_rows, b_cols, c_rows, c_cols],
            },
            other => Error::InvalidConfig {
                name: "linalg",
                reason: other.to_string(),
            },
        }
    }
}

impl Error {
    /// Builds a [`Error::ShapeMismatch`].
    pub fn shape(op: &'static str, expected: &[usize], found: &[usize]) -> Self {
        Error::ShapeMismatch {
            op,
            expected: expected.to_vec(),
            found: found.to_vec(),
        }
    }

    /// Builds an [`Error::InvalidConfig`].
    pub fn config(name: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            name,
            reason: reason.into(),
        }
    }

    /// Builds an [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
