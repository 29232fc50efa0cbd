//! The crate's error type.

use crate::Isa;

/// What a caller of `recur-linalg` can get wrong. Each message names the operation and what
/// to change; nothing in the crate panics on bad input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinalgError {
    /// The operands of a matrix product do not fit together.
    #[error(
        "gemm: cannot compute c ({c_rows}×{c_cols}) ← a ({a_rows}×{a_cols}) · b ({b_rows}×{b_cols}); \
         need a.ncols == b.nrows, c.nrows == a.nrows and c.ncols == b.ncols"
    )]
    ShapeMismatch {
        /// Rows of `a`.
        a_rows: usize,
        /// Columns of `a`.
        a_cols: usize,
        /// Rows of `b`.
        b_rows: usize,
        /// Columns of `b`.
        b_cols: usize,
        /// Rows of `c`.
        c_rows: usize,
        /// Columns of `c`.
        c_cols: usize,
    },
    /// A range of rows asked of a packed matrix does not lie within it.
    #[error(
        "PackedB::rows: rows {start}..{end} do not lie within the packed matrix's {rows} rows"
    )]
    RowsOutOfRange {
        /// First row asked for.
        start: usize,
        /// One past the last row asked for.
        end: usize,
        /// Rows of the packed matrix.
        rows: usize,
    },
    /// A thread count of zero was requested.
    #[error("set_threads: the thread count must be at least 1 (use 1 to run on the calling thread only)")]
    ZeroThreads,
    /// A kernel was requested that this CPU cannot run.
    #[error("gemm_with_isa: this CPU does not support {isa}; use Isa::detect() or Isa::Portable")]
    UnsupportedIsa {
        /// The instruction set that was asked for.
        isa: Isa,
    },
}
