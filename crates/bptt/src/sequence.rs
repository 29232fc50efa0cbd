//! Batches of sequences, time-major.

use ndarray::{ArrayView2, ArrayView3};
use recur_core::{Error, Float, Input, Result};
use recur_loss::Targets;

/// The inputs of a batch of `batch` sequences of `seq_len` steps, time-major so that one
/// step's inputs are a contiguous block.
#[derive(Debug, Clone, Copy)]
pub enum SeqInput<'a, F> {
    /// Token ids, `[seq_len, batch]`.
    Tokens(ArrayView2<'a, usize>),
    /// Dense features, `[seq_len, batch, input_size]`.
    Dense(ArrayView3<'a, F>),
}

impl<'a, F: Float> SeqInput<'a, F> {
    /// Number of time steps.
    pub fn seq_len(&self) -> usize {
        match self {
            SeqInput::Tokens(t) => t.nrows(),
            SeqInput::Dense(x) => x.dim().0,
        }
    }

    /// Number of sequences.
    pub fn batch(&self) -> usize {
        match self {
            SeqInput::Tokens(t) => t.ncols(),
            SeqInput::Dense(x) => x.dim().1,
        }
    }

    /// The input of step `t`. Only valid after [`SeqInput::check`] accepted the layout.
    pub(crate) fn step(&self, t: usize) -> Input<'a, F> {
        match *self {
            SeqInput::Tokens(ids) => Input::Tokens(
                ids.index_axis_move(ndarray::Axis(0), t)
                    .to_slice()
                    .expect("checked: tokens are row-major"),
            ),
            SeqInput::Dense(x) => Input::Dense(x.index_axis_move(ndarray::Axis(0), t)),
        }
    }

    /// Checks sizes and layout against a cell of `input_size` inputs.
    pub(crate) fn check(&self, input_size: usize) -> Result<()> {
        if self.seq_len() == 0 || self.batch() == 0 {
            return Err(Error::Empty {
                op: "bptt",
                what: "sequence batch",
            });
        }
        match self {
            SeqInput::Tokens(ids) => {
                if !ids.is_standard_layout() {
                    return Err(Error::config(
                        "inputs",
                        "token ids must be row-major [T, B]",
                    ));
                }
                if let Some(&token) = ids.iter().find(|&&t| t >= input_size) {
                    return Err(Error::TokenOutOfRange {
                        token,
                        vocab_size: input_size,
                    });
                }
            }
            SeqInput::Dense(x) => {
                let (t, b, d) = x.dim();
                if d != input_size {
                    return Err(Error::shape("bptt inputs", &[t, b, input_size], x.shape()));
                }
            }
        }
        Ok(())
    }
}

/// The targets of a batch, time-major like [`SeqInput`].
#[derive(Debug, Clone, Copy)]
pub enum SeqTargets<'a, F> {
    /// One class id per step and sequence, `[seq_len, batch]`; [`recur_loss::IGNORE`] marks
    /// padding (no loss, no gradient).
    Classes(ArrayView2<'a, usize>),
    /// Dense targets, `[seq_len, batch, output_size]`.
    Dense(ArrayView3<'a, F>),
}

impl<'a, F: Float> SeqTargets<'a, F> {
    /// The targets of steps `from..to` as loss rows (`row = t·batch + b`).
    pub(crate) fn rows(&self, from: usize, to: usize) -> Targets<'a, F> {
        match *self {
            SeqTargets::Classes(c) => {
                let b = c.ncols();
                let all = c.to_slice().expect("checked: targets are row-major");
                Targets::Classes(&all[from * b..to * b])
            }
            SeqTargets::Dense(y) => {
                let (_, b, o) = y.dim();
                let flat = y
                    .into_shape_with_order((y.len() / o.max(1), o))
                    .expect("checked: targets are row-major");
                Targets::Dense(flat.slice_move(ndarray::s![from * b..to * b, ..]))
            }
        }
    }

    /// Rows that count towards the loss among steps `from..to` (non-ignored).
    pub(crate) fn counted(&self, from: usize, to: usize) -> usize {
        match self.rows(from, to) {
            Targets::Classes(c) => c.iter().filter(|&&c| c != recur_loss::IGNORE).count(),
            Targets::Dense(y) => y.nrows(),
        }
    }

    pub(crate) fn check(&self, seq_len: usize, batch: usize, output_size: usize) -> Result<()> {
        // Compared as slices: this runs every update and must not allocate.
        let dense = [seq_len, batch, output_size];
        let (shape, expected, standard) = match self {
            SeqTargets::Classes(c) => (c.shape(), &dense[..2], c.is_standard_layout()),
            SeqTargets::Dense(y) => (y.shape(), &dense[..], y.is_standard_layout()),
        };
        if shape != expected {
            return Err(Error::shape("bptt targets", expected, shape));
        }
        if !standard {
            return Err(Error::config(
                "targets",
                "targets must be row-major (time-major)",
            ));
        }
        Ok(())
    }
}

/// Inputs and targets of a batch of sequences.
///
/// ```
/// use recur_bptt::SeqBatch;
/// // The tutorial's pair for one sentence: inputs [START, w1, w2], targets [w1, w2, END].
/// let (x, y) = ([0usize, 5, 9], [5usize, 9, 1]);
/// let batch = SeqBatch::<f64>::sentence(&x, &y).unwrap();
/// assert_eq!((batch.seq_len(), batch.batch()), (3, 1));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SeqBatch<'a, F> {
    /// Inputs, time-major.
    pub inputs: SeqInput<'a, F>,
    /// Targets, time-major, same steps and batch as the inputs.
    pub targets: SeqTargets<'a, F>,
}

impl<'a, F: Float> SeqBatch<'a, F> {
    /// A batch of one token sequence with one class target per step (no copy).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when the lengths differ, [`Error::Empty`] when both are empty.
    pub fn sentence(inputs: &'a [usize], targets: &'a [usize]) -> Result<Self> {
        if inputs.len() != targets.len() {
            return Err(Error::shape(
                "SeqBatch::sentence",
                &[inputs.len()],
                &[targets.len()],
            ));
        }
        if inputs.is_empty() {
            return Err(Error::Empty {
                op: "SeqBatch::sentence",
                what: "sentence",
            });
        }
        let view =
            |s: &'a [usize]| ArrayView2::from_shape((s.len(), 1), s).expect("length checked");
        Ok(SeqBatch {
            inputs: SeqInput::Tokens(view(inputs)),
            targets: SeqTargets::Classes(view(targets)),
        })
    }

    /// Number of time steps.
    pub fn seq_len(&self) -> usize {
        self.inputs.seq_len()
    }

    /// Number of sequences.
    pub fn batch(&self) -> usize {
        self.inputs.batch()
    }
}
