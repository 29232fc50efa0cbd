//! What a loss compares the logits with.

use ndarray::{ArrayView1, ArrayView2};
use recur_core::{Error, Float, Result};

/// Class id that marks a padded row: its loss and gradient are zero and it is not counted
/// by [`Reduction::Mean`](crate::Reduction::Mean).
pub const IGNORE: usize = usize::MAX;

/// The targets of `N` rows of logits (rows are time steps × batch, flattened).
///
/// ```
/// use ndarray::array;
/// use recur_loss::{Targets, IGNORE};
///
/// let ids = [2, IGNORE, 0];
/// let t = Targets::<f32>::Classes(&ids);
/// assert_eq!((t.rows(), t.counted_rows()), (3, 2));
///
/// let dense = array![[0.0_f32, 1.0], [1.0, 0.0]];
/// assert_eq!(Targets::Dense(dense.view()).counted_rows(), 2);
/// ```
#[derive(Debug, Clone, Copy)]
pub enum Targets<'a, F> {
    /// One class id per row, each `< O` (the number of outputs), or [`IGNORE`] for a padded
    /// row. Losses with dense outputs read a class id as a one-hot row.
    Classes(&'a [usize]),
    /// Dense targets, shape `[N, O]`.
    Dense(ArrayView2<'a, F>),
}

impl<F: Float> Targets<'_, F> {
    /// Number of rows `N` the targets describe.
    pub fn rows(&self) -> usize {
        match self {
            Targets::Classes(ids) => ids.len(),
            Targets::Dense(y) => y.nrows(),
        }
    }

    /// Rows that count towards a loss: all rows, less those marked [`IGNORE`].
    /// This is the `counted_rows` to pass to [`Reduction::scale`](crate::Reduction::scale).
    pub fn counted_rows(&self) -> usize {
        match self {
            Targets::Classes(ids) => ids.iter().filter(|&&id| id != IGNORE).count(),
            Targets::Dense(y) => y.nrows(),
        }
    }

    /// Checks the targets against logits of shape `[rows, outputs]`.
    pub(crate) fn check(&self, op: &'static str, rows: usize, outputs: usize) -> Result<()> {
        match self {
            Targets::Classes(ids) => {
                if ids.len() != rows {
                    return Err(Error::shape(op, &[rows], &[ids.len()]));
                }
                if let Some(&token) = ids.iter().find(|&&id| id != IGNORE && id >= outputs) {
                    return Err(Error::TokenOutOfRange {
                        token,
                        vocab_size: outputs,
                    });
                }
            }
            Targets::Dense(y) => {
                if y.dim() != (rows, outputs) {
                    return Err(Error::shape(op, &[rows, outputs], y.shape()));
                }
            }
        }
        Ok(())
    }

    /// The target of row `n` (after [`Targets::check`]).
    pub(crate) fn row(&self, n: usize) -> RowTarget<'_, F> {
        match self {
            Targets::Classes(ids) if ids[n] == IGNORE => RowTarget::Ignored,
            Targets::Classes(ids) => RowTarget::Class(ids[n]),
            Targets::Dense(y) => RowTarget::Dense(y.row(n)),
        }
    }
}

/// The target of one row.
pub(crate) enum RowTarget<'a, F> {
    Ignored,
    Class(usize),
    Dense(ArrayView1<'a, F>),
}

impl<F: Float> RowTarget<'_, F> {
    /// Target value of output `o`: a class id reads as a one-hot row, an ignored row as 0.
    #[inline]
    pub(crate) fn value(&self, o: usize) -> F {
        match self {
            RowTarget::Ignored => F::zero(),
            RowTarget::Class(c) if *c == o => F::one(),
            RowTarget::Class(_) => F::zero(),
            RowTarget::Dense(y) => y[o],
        }
    }
}

/// Checks the output buffers of `Loss::evaluate` against logits of shape `[rows, outputs]`.
pub(crate) fn check_outputs(
    op: &'static str,
    rows: usize,
    outputs: usize,
    row_loss_len: usize,
    d_logits: Option<(usize, usize)>,
) -> Result<()> {
    if row_loss_len != rows {
        return Err(Error::shape(op, &[rows], &[row_loss_len]));
    }
    if let Some((r, c)) = d_logits {
        if (r, c) != (rows, outputs) {
            return Err(Error::shape(op, &[rows, outputs], &[r, c]));
        }
    }
    Ok(())
}

/// Checks that every dense target lies in `[lo, hi]` (NaN fails).
pub(crate) fn check_dense_range<F: Float>(
    targets: &Targets<'_, F>,
    lo: F,
    hi: F,
    what: &'static str,
) -> Result<()> {
    if let Targets::Dense(y) = targets {
        if let Some(bad) = y.iter().find(|&&v| !(v >= lo && v <= hi)) {
            return Err(Error::config("targets", format!("{what}; found {bad}")));
        }
    }
    Ok(())
}
