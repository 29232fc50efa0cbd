//! What most cells share, as public helpers: the shape checks of a step, and the input
//! product with its two gradients (dense rows or token ids).
//!
//! A token input is never expanded to a one-hot row: `x·W` is row `id` of `W` (a gather),
//! the weight gradient `xᵀ·dz` adds `dz`'s rows into the tokens' rows (a scatter-add), and a
//! token has no input gradient.

use ndarray::{ArrayView2, ArrayViewMut2, Axis};
use recur_core::linalg::{for_each_parallel, gemm};
use recur_core::{Error, Float, Input, Result, RowSet};

use crate::{Cell, StepDeltas, StepRecord};

/// Checks a forward step against `cell`: `x` has one row (or id) per sequence and
/// [`Cell::input_size`] features (ids below it), `prev` and `next` are
/// `[batch, state_size]`. Returns the batch size.
///
/// # Errors
/// [`Error::ShapeMismatch`] naming `op`; [`Error::TokenOutOfRange`] for an id
/// `≥ input_size`.
pub fn check_forward<F: Float, C: Cell<F> + ?Sized>(
    op: &'static str,
    cell: &C,
    x: Input<'_, F>,
    prev: ArrayView2<'_, F>,
    next: ArrayView2<'_, F>,
) -> Result<usize> {
    let (input_size, state_size) = (cell.input_size(), cell.state_size());
    let batch = x.batch();
    x.check(op, batch, input_size)?;
    for dim in [prev.dim(), next.dim()] {
        if dim != (batch, state_size) {
            return Err(Error::shape(op, &[batch, state_size], &[dim.0, dim.1]));
        }
    }
    Ok(batch)
}

/// Checks a backward step against `cell`: the record as [`check_forward`], `d_next` and
/// `d_prev` of one shape made of `n ≥ 1` blocks of `batch` rows, and `d_x`, when given, of
/// `[n·batch, input_size]` for a dense input. Returns the batch size.
///
/// # Errors
/// [`Error::ShapeMismatch`] naming `op`; [`Error::InvalidConfig`] when `d_x` is asked for a
/// token input (a token id has no gradient).
pub fn check_deltas<F: Float, C: Cell<F> + ?Sized>(
    op: &'static str,
    cell: &C,
    step: StepRecord<'_, F, C::Cache>,
    deltas: &StepDeltas<'_, F>,
) -> Result<usize> {
    let (input_size, state_size) = (cell.input_size(), cell.state_size());
    let batch = check_forward(op, cell, step.x, step.prev, step.next)?;
    let rows = deltas.d_next.nrows();
    let blocks_ok = rows > 0 && rows.is_multiple_of(batch.max(1));
    if !blocks_ok || deltas.d_next.ncols() != state_size {
        let expected = [batch * (rows / batch.max(1)).max(1), state_size];
        return Err(Error::shape(op, &expected, deltas.d_next.shape()));
    }
    if deltas.d_prev.dim() != deltas.d_next.dim() {
        return Err(Error::shape(
            op,
            deltas.d_next.shape(),
            deltas.d_prev.shape(),
        ));
    }
    if let Some(d_x) = &deltas.d_x {
        if matches!(step.x, Input::Tokens(_)) {
            return Err(Error::config(
                "d_x",
                "token inputs have no input gradient; pass None",
            ));
        }
        if d_x.dim() != (rows, input_size) {
            return Err(Error::shape(op, &[rows, input_size], d_x.shape()));
        }
    }
    Ok(batch)
}

/// Checks that `deltas` hold exactly one block of the step's batch: what a cell whose
/// [`Cell::backward`] forwards to its own [`Cell::backward_stacked`] checks first, since the
/// stacked pass alone would accept several blocks.
///
/// # Errors
/// [`Error::ShapeMismatch`] naming `op` when `d_next` has another row count.
pub fn check_one_block<F: Float, K>(
    op: &'static str,
    step: StepRecord<'_, F, K>,
    deltas: &StepDeltas<'_, F>,
) -> Result<()> {
    if deltas.d_next.nrows() != step.x.batch() {
        return Err(Error::shape(op, step.next.shape(), deltas.d_next.shape()));
    }
    Ok(())
}

/// `out = beta·out + x·w` for `w` of shape `[input_size, cols]`: a matrix product for dense
/// rows, a row gather for token ids.
///
/// # Errors
/// [`Error::ShapeMismatch`] on inconsistent shapes (ids are checked by [`check_forward`]).
pub fn input_product<F: Float>(
    x: Input<'_, F>,
    w: ArrayView2<'_, F>,
    beta: F,
    mut out: ArrayViewMut2<'_, F>,
) -> Result<()> {
    match x {
        Input::Dense(x) => gemm(F::one(), x, w, beta, out)?,
        Input::Tokens(ids) => {
            if ids.len() != out.nrows() || w.ncols() != out.ncols() {
                return Err(Error::shape(
                    "input_product",
                    &[ids.len(), w.ncols()],
                    out.shape(),
                ));
            }
            // By blocks of rows over the worker pool; each row is computed the same way.
            let height = row_block(ids.len(), out.ncols());
            let blocks = ids
                .chunks(height)
                .zip(out.axis_chunks_iter_mut(Axis(0), height));
            for_each_parallel(blocks, |(ids, mut out)| {
                for (&id, mut row) in ids.iter().zip(out.rows_mut()) {
                    if beta == F::zero() {
                        row.assign(&w.row(id));
                    } else {
                        row.zip_mut_with(&w.row(id), |o, &v| *o = beta * *o + v);
                    }
                }
            });
        }
    }
    Ok(())
}

/// Adds the gradient of [`input_product`]'s weights, `xᵀ·dz`, into `grad_w`: a matrix
/// product for dense rows; for token ids a scatter-add of `dz`'s rows into the tokens' rows,
/// recorded in `touched` so optimizers and zeroing can skip the others. A dense input
/// touches every row, so it sets `touched` to `None` (dense).
///
/// # Errors
/// [`Error::ShapeMismatch`] on inconsistent shapes.
pub fn input_weight_grad<F: Float>(
    x: Input<'_, F>,
    dz: ArrayView2<'_, F>,
    mut grad_w: ArrayViewMut2<'_, F>,
    touched: &mut Option<RowSet>,
) -> Result<()> {
    match x {
        Input::Dense(x) => {
            gemm(F::one(), x.t(), dz, F::one(), grad_w)?;
            *touched = None;
        }
        Input::Tokens(ids) => {
            if ids.len() != dz.nrows() || dz.ncols() != grad_w.ncols() {
                return Err(Error::shape(
                    "input_weight_grad",
                    &[ids.len(), grad_w.ncols()],
                    dz.shape(),
                ));
            }
            // By blocks of columns over the worker pool: every entry still adds its terms in
            // the order of the ids, whatever the thread count.
            let width = row_block(dz.ncols(), ids.len());
            let blocks = grad_w
                .axis_chunks_iter_mut(Axis(1), width)
                .zip(dz.axis_chunks_iter(Axis(1), width));
            for_each_parallel(blocks, |(mut grad_w, dz)| {
                for (&id, dz_row) in ids.iter().zip(dz.rows()) {
                    let mut row = grad_w.row_mut(id);
                    row += &dz_row;
                }
            });
            if let Some(t) = touched {
                for &id in ids {
                    t.insert(id);
                }
            }
        }
    }
    Ok(())
}

/// Adds the input gradient of [`input_product`], `dz·wᵀ`, into `d_x` when it is given.
///
/// # Errors
/// [`Error::ShapeMismatch`] on inconsistent shapes.
pub fn input_delta<F: Float>(
    dz: ArrayView2<'_, F>,
    w: ArrayView2<'_, F>,
    d_x: Option<&mut ArrayViewMut2<'_, F>>,
) -> Result<()> {
    if let Some(d_x) = d_x {
        gemm(F::one(), dz, w.t(), F::one(), d_x.view_mut())?;
    }
    Ok(())
}

/// Values of a step's element-wise pass below which it stays on the calling thread: handing
/// blocks to the pool costs a few microseconds, about what a pass over 16k values takes.
const PARALLEL_MIN_VALUES: usize = 16 * 1024;

/// The height of the row blocks an element-wise pass over `rows × width` values is split
/// into for [`for_each_parallel`] (or, with the roles swapped, the width of column blocks):
/// two blocks per thread when the pass is large enough to share, else all rows in one block
/// (on the calling thread). Each row is computed the same way whatever the blocks, so
/// results do not depend on the thread count.
pub(crate) fn row_block(rows: usize, width: usize) -> usize {
    let threads = recur_core::linalg::threads();
    if threads <= 1 || rows * width < PARALLEL_MIN_VALUES {
        rows.max(1)
    } else {
        rows.div_ceil(2 * threads).max(1)
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{array, Array2};

    use super::*;

    #[test]
    fn token_gather_and_scatter_equal_one_hot_products() {
        let w = array![[1.0_f64, 2.0], [3.0, 4.0], [5.0, 6.0]];
        let one_hot = array![[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]];
        let (mut gathered, mut product) = (Array2::ones((2, 2)), Array2::ones((2, 2)));
        input_product(Input::Tokens(&[2, 0]), w.view(), 0.5, gathered.view_mut()).unwrap();
        input_product(
            Input::Dense(one_hot.view()),
            w.view(),
            0.5,
            product.view_mut(),
        )
        .unwrap();
        assert_eq!(gathered, product);
        let dz = array![[1.0, -1.0], [0.5, 2.0]];
        let (mut scattered, mut dense) = (Array2::zeros((3, 2)), Array2::zeros((3, 2)));
        let mut touched = Some(RowSet::default());
        input_weight_grad(
            Input::Tokens(&[2, 0]),
            dz.view(),
            scattered.view_mut(),
            &mut touched,
        )
        .unwrap();
        assert_eq!(touched.as_ref().unwrap().rows(), &[2, 0]);
        input_weight_grad(
            Input::Dense(one_hot.view()),
            dz.view(),
            dense.view_mut(),
            &mut touched,
        )
        .unwrap();
        assert_eq!(scattered, dense);
        assert!(touched.is_none(), "a dense input touches every row");
    }

    #[test]
    fn input_gradient_is_refused_for_tokens() {
        let cell = crate::ElmanConfig::new(3, 2)
            .init::<f64, _>(
                crate::Tanh,
                &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0),
            )
            .unwrap();
        let state = Array2::<f64>::zeros((1, 2));
        let cache = cell.new_cache(1);
        let step = StepRecord {
            x: Input::Tokens(&[0]),
            prev: state.view(),
            next: state.view(),
            cache: &cache,
        };
        let (mut d_next, mut d_prev, mut d_x) = (
            Array2::zeros((1, 2)),
            Array2::zeros((1, 2)),
            Array2::zeros((1, 3)),
        );
        let deltas = StepDeltas {
            d_next: d_next.view_mut(),
            d_prev: d_prev.view_mut(),
            d_x: Some(d_x.view_mut()),
            tape: None,
        };
        assert!(matches!(
            check_deltas("t", &cell, step, &deltas),
            Err(Error::InvalidConfig { .. })
        ));
    }
}
