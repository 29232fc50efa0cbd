//! The engine's reused buffers, and the row views it cuts from them.

use std::collections::VecDeque;

use ndarray::{s, Array1, Array2, ArrayView2, ArrayViewMut2, Axis};
use recur_cell::{Cell, Readout};
use recur_core::{Float, Input};

use crate::sequence::SeqInput;
use crate::truncation::Pass;

/// Buffers that grow to the largest batch seen and are then reused, so steady-state
/// training allocates nothing. Row `t·batch + b` of a per-step matrix belongs to step `t`,
/// sequence `b`; `states` has one more step in front: the initial state.
#[derive(Debug)]
pub(crate) struct Workspace<F: Float, C: Cell<F>, R: Readout<F>> {
    /// Steps held by the last forward pass (the streaming window's length while streaming).
    pub(crate) seq_len: usize,
    /// Sequences in the last forward pass.
    pub(crate) batch: usize,
    /// Rows of `logits` (and `d_logits`, `d_hidden`) that the last output pass filled…
    pub(crate) output_rows: usize,
    /// …for the steps from this one on.
    pub(crate) output_from: usize,
    /// Every step's state, `[(seq_len + 1)·batch, state_size]`.
    pub(crate) states: Array2<F>,
    /// Every step's cell cache.
    pub(crate) caches: Vec<C::Cache>,
    /// The batch size `caches` were made for.
    pub(crate) cache_batch: usize,
    /// The readout's input when it is not a plain block of `states` (state wider than `h`).
    pub(crate) hidden: Array2<F>,
    /// The readout's cache for the last output pass.
    pub(crate) readout_cache: R::Cache,
    /// The readout's logits, and then `∂L/∂logits`.
    pub(crate) logits: Array2<F>,
    pub(crate) d_logits: Array2<F>,
    /// Per-row losses.
    pub(crate) row_loss: Array1<F>,
    /// `∂L/∂h_t` from the outputs, per step.
    pub(crate) d_hidden: Array2<F>,
    /// The backward sweep's stack of live passes' state gradients, and its next value.
    pub(crate) stack: Array2<F>,
    pub(crate) stack_prev: Array2<F>,
    /// The cell's tape for the sweep, `[seq_len·batch, tape_width]` (see `Cell::tape_width`).
    pub(crate) tape: Array2<F>,
    /// The truncation's backward passes for the current sequence, and the live ones' starts.
    pub(crate) passes: Vec<Pass>,
    pub(crate) live: VecDeque<usize>,
}

impl<F: Float, C: Cell<F>, R: Readout<F>> Default for Workspace<F, C, R> {
    fn default() -> Self {
        let empty = || Array2::zeros((0, 0));
        Workspace {
            seq_len: 0,
            batch: 0,
            output_rows: 0,
            output_from: 0,
            states: empty(),
            caches: Vec::new(),
            cache_batch: 0,
            hidden: empty(),
            readout_cache: R::Cache::default(),
            logits: empty(),
            d_logits: empty(),
            row_loss: Array1::zeros(0),
            d_hidden: empty(),
            stack: empty(),
            stack_prev: empty(),
            tape: empty(),
            passes: Vec::new(),
            live: VecDeque::new(),
        }
    }
}

impl<F: Float, C: Cell<F>, R: Readout<F>> Workspace<F, C, R> {
    /// Bytes held by the numeric buffers.
    pub(crate) fn bytes(&self) -> usize {
        let arrays = [
            &self.states,
            &self.hidden,
            &self.logits,
            &self.d_logits,
            &self.d_hidden,
            &self.stack,
            &self.stack_prev,
            &self.tape,
        ];
        let values: usize = arrays.iter().map(|a| a.len()).sum::<usize>() + self.row_loss.len();
        values * std::mem::size_of::<F>()
            + self.caches.len() * std::mem::size_of::<C::Cache>()
            + self.passes.capacity() * std::mem::size_of::<Pass>()
    }

    /// The readout's input rows (the hidden part of the states) and `∂L/∂Z` of the last
    /// output pass.
    pub(crate) fn readout_rows(&self, cell: &C) -> (ArrayView2<'_, F>, ArrayView2<'_, F>) {
        let rows = self.output_rows;
        let hidden = if hidden_is_state(cell) {
            let first = (self.output_from + 1) * self.batch;
            self::rows(&self.states, first, first + rows)
        } else {
            self::rows(&self.hidden, 0, rows)
        };
        (hidden, self::rows(&self.d_logits, 0, rows))
    }
}

/// Whether a cell's whole state is its output `h`, so the readout can read the stored
/// states in place.
pub(crate) fn hidden_is_state<F: Float>(cell: &impl Cell<F>) -> bool {
    cell.state_size() == cell.hidden_size()
}

/// Makes `a` hold at least `rows` rows of exactly `cols` columns, reallocating only when it
/// is too small. Callers use the first `rows` rows. New arrays start on a cache line, so
/// the products read and write whole lines.
pub(crate) fn ensure<F: Float>(a: &mut Array2<F>, rows: usize, cols: usize) {
    if a.nrows() < rows || a.ncols() != cols {
        *a = recur_core::linalg::zeros_aligned((rows.max(a.nrows()), cols));
    }
}

/// Rows `from..to` of a workspace matrix. Splitting a view at row indices only moves a
/// pointer, where a general slice (or a view rebuilt from a flat slice) re-checks shapes and
/// strides; at one call per time step on small models that check was a tenth of the run.
pub(crate) fn rows<F: Float>(a: &Array2<F>, from: usize, to: usize) -> ArrayView2<'_, F> {
    let (_, tail) = a.view().split_at(Axis(0), from);
    tail.split_at(Axis(0), to - from).0
}

/// Rows `from..to` of a workspace matrix, writable (see [`rows`]).
pub(crate) fn rows_mut<F: Float>(
    a: &mut Array2<F>,
    from: usize,
    to: usize,
) -> ArrayViewMut2<'_, F> {
    let (_, tail) = a.view_mut().split_at(Axis(0), from);
    tail.split_at(Axis(0), to - from).0
}

/// Rows `from..from + len` and `to..to + len` of one workspace matrix, for a step that
/// reads the previous state (the first block, only read) and writes the next
/// (`from + len ≤ to`).
pub(crate) fn rows_pair<F: Float>(
    a: &mut Array2<F>,
    from: usize,
    to: usize,
    len: usize,
) -> (ArrayViewMut2<'_, F>, ArrayViewMut2<'_, F>) {
    let (head, tail) = a.view_mut().split_at(Axis(0), to);
    let read = head.split_at(Axis(0), from).1.split_at(Axis(0), len).0;
    (read, tail.split_at(Axis(0), len).0)
}

/// The inputs of steps `from..to` as one block, step-major (row `(t − from)·batch + b`), or
/// `None` when their layout does not allow a flat view.
pub(crate) fn flat_input<F: Float>(
    inputs: SeqInput<'_, F>,
    from: usize,
    to: usize,
) -> Option<Input<'_, F>> {
    match window_input(inputs, from, to) {
        SeqInput::Tokens(ids) => ids.to_slice().map(Input::Tokens),
        SeqInput::Dense(x) => {
            let (steps, batch, features) = x.dim();
            let flat = x.into_shape_with_order((steps * batch, features)).ok()?;
            Some(Input::Dense(flat))
        }
    }
}

/// Steps `from..to` of `inputs`, as a view.
pub(crate) fn window_input<F: Float>(
    inputs: SeqInput<'_, F>,
    from: usize,
    to: usize,
) -> SeqInput<'_, F> {
    match inputs {
        SeqInput::Tokens(ids) => SeqInput::Tokens(ids.slice_move(s![from..to, ..])),
        SeqInput::Dense(x) => SeqInput::Dense(x.slice_move(s![from..to, .., ..])),
    }
}
