//! Training and validation data as the loop sees it: the batches of an epoch.

use ndarray::{s, Array2, ArrayView2};
use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};
use recur_core::{Error, Float, Result};
use recur_loss::IGNORE;

use crate::{SeqBatch, SeqInput, SeqTargets};

/// The data of a [`Trainer::fit`](crate::Trainer::fit) run: `len()` batches per epoch.
pub trait Batches<F: Float> {
    /// Batches per epoch.
    fn len(&self) -> usize;

    /// Whether there are no batches.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Batch `index < len()` of epoch `epoch`. The order may depend on the epoch
    /// (shuffled with a seed derived from it) but must be the same every time it is asked,
    /// so a resumed run sees the batches an uninterrupted one would.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an index past the end; whatever building the batch
    /// reports.
    fn get(&mut self, epoch: usize, index: usize) -> Result<SeqBatch<'_, F>>;

    /// `false` (the default): one update per batch. `true`: each batch is a long stream
    /// trained with an update per backward pass and its state carried through (and, for
    /// validation data, carried from batch to batch).
    fn streamed(&self) -> bool {
        false
    }
}

/// Token-id data: sentences in padded batches, shuffled per epoch, or one long text in
/// streamed pieces.
///
/// ```
/// use recur_bptt::{Batches, TokenBatches};
///
/// let pairs = vec![(vec![0, 1], vec![1, 2]), (vec![0, 2, 3], vec![2, 3, 1]), (vec![0], vec![1])];
/// let mut data = TokenBatches::sentences(pairs)?.batch_size(2)?.shuffled(7);
/// assert_eq!(Batches::<f32>::len(&data), 2);
/// let batch = Batches::<f32>::get(&mut data, 0, 0)?;
/// assert_eq!(batch.batch(), 2); // padded to the longer sentence
/// # Ok::<(), recur_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct TokenBatches {
    kind: Kind,
    /// The sentence order of the epoch it was drawn for, kept so that each batch of an
    /// epoch does not shuffle all sentences again.
    order: Option<(usize, Vec<usize>)>,
    inputs: Array2<usize>,
    targets: Array2<usize>,
}

#[derive(Debug, Clone)]
enum Kind {
    /// (inputs, targets) per sentence; sentences per batch; the shuffling seed.
    Sentences {
        pairs: Vec<(Vec<usize>, Vec<usize>)>,
        batch: usize,
        seed: Option<u64>,
    },
    /// Inputs and targets of one text, cut into `pieces` consecutive streamed batches.
    Stream { ids: Vec<usize>, pieces: usize },
}

impl TokenBatches {
    /// One sentence per batch, in the given order: `(inputs, targets)` pairs of equal
    /// length (the language model's `[START, w₁, …]` and `[w₁, …, END]`).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for a pair of different lengths; [`Error::Empty`] for an
    /// empty sentence.
    pub fn sentences(pairs: Vec<(Vec<usize>, Vec<usize>)>) -> Result<Self> {
        for (x, y) in &pairs {
            SeqBatch::<f64>::sentence(x, y)?;
        }
        Ok(TokenBatches {
            kind: Kind::Sentences {
                pairs,
                batch: 1,
                seed: None,
            },
            order: None,
            inputs: Array2::zeros((0, 0)),
            targets: Array2::zeros((0, 0)),
        })
    }

    /// `batch` sentences per batch, padded at the end to the longest with [`IGNORE`]
    /// targets (which add no loss and no gradient).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for zero, or for stream data.
    pub fn batch_size(mut self, batch: usize) -> Result<Self> {
        match &mut self.kind {
            Kind::Sentences { batch: b, .. } if batch > 0 => *b = batch,
            _ => {
                return Err(Error::config(
                    "batch_size",
                    "takes at least one sentence per batch, and only for sentence data",
                ))
            }
        }
        Ok(self)
    }

    /// Shuffles the sentences at every epoch, with a seed derived from `seed` and the
    /// epoch (the same order every time an epoch is asked for). No effect on streams.
    pub fn shuffled(mut self, seed: u64) -> Self {
        if let Kind::Sentences { seed: s, .. } = &mut self.kind {
            *s = Some(seed);
        }
        self
    }

    /// One text of token ids, predicting each next id, streamed in `pieces` consecutive
    /// batches (more pieces: finer points to stop and resume at).
    ///
    /// # Errors
    /// [`Error::Empty`] for fewer than two ids; [`Error::InvalidConfig`] for zero pieces or
    /// more pieces than predictions.
    pub fn stream(ids: Vec<usize>, pieces: usize) -> Result<Self> {
        if ids.len() < 2 {
            return Err(Error::Empty {
                op: "TokenBatches::stream",
                what: "text (fewer than two tokens)",
            });
        }
        if pieces == 0 || pieces > ids.len() - 1 {
            return Err(Error::config(
                "pieces",
                format!("must be between 1 and {} for this text", ids.len() - 1),
            ));
        }
        Ok(TokenBatches {
            kind: Kind::Stream { ids, pieces },
            order: None,
            inputs: Array2::zeros((0, 0)),
            targets: Array2::zeros((0, 0)),
        })
    }

    /// Predictions (target tokens, padding excluded) per epoch.
    pub fn tokens(&self) -> usize {
        match &self.kind {
            Kind::Sentences { pairs, .. } => pairs.iter().map(|(x, _)| x.len()).sum(),
            Kind::Stream { ids, .. } => ids.len() - 1,
        }
    }
}

impl<F: Float> Batches<F> for TokenBatches {
    fn len(&self) -> usize {
        match &self.kind {
            Kind::Sentences { pairs, batch, .. } => pairs.len().div_ceil(*batch),
            Kind::Stream { pieces, .. } => *pieces,
        }
    }

    fn get(&mut self, epoch: usize, index: usize) -> Result<SeqBatch<'_, F>> {
        if index >= Batches::<F>::len(self) {
            return Err(Error::config(
                "batch index",
                format!(
                    "{index} is past the last of {} batches",
                    Batches::<F>::len(self)
                ),
            ));
        }
        match &self.kind {
            Kind::Sentences { pairs, batch, seed } => {
                if self.order.as_ref().is_none_or(|(e, _)| *e != epoch) {
                    self.order = Some((epoch, epoch_order(pairs.len(), *seed, epoch)));
                }
                let order = self.order.as_ref().map_or(&[][..], |(_, o)| o.as_slice());
                let members = &order[index * batch..((index + 1) * batch).min(order.len())];
                fill_padded(pairs, members, &mut self.inputs, &mut self.targets);
                Ok(SeqBatch {
                    inputs: SeqInput::Tokens(self.inputs.view()),
                    targets: SeqTargets::Classes(self.targets.view()),
                })
            }
            Kind::Stream { ids, pieces } => {
                let n = ids.len() - 1;
                let (from, to) = (index * n / pieces, (index + 1) * n / pieces);
                Ok(SeqBatch {
                    inputs: SeqInput::Tokens(column(&ids[from..to])),
                    targets: SeqTargets::Classes(column(&ids[from + 1..to + 1])),
                })
            }
        }
    }

    fn streamed(&self) -> bool {
        matches!(self.kind, Kind::Stream { .. })
    }
}

/// The steps of `batch` from `offset` on (where a resumed stream continues).
///
/// # Errors
/// [`Error::InvalidConfig`] for an offset past the end of the batch.
pub(crate) fn steps_from<F: Float>(
    batch: SeqBatch<'_, F>,
    offset: usize,
) -> Result<SeqBatch<'_, F>> {
    if offset == 0 {
        return Ok(batch);
    }
    if offset >= batch.seq_len() {
        return Err(Error::config(
            "run state",
            format!(
                "the stream offset {offset} is past the batch's {} steps: the state was saved for other data",
                batch.seq_len()
            ),
        ));
    }
    let inputs = match batch.inputs {
        SeqInput::Tokens(x) => SeqInput::Tokens(x.slice_move(s![offset.., ..])),
        SeqInput::Dense(x) => SeqInput::Dense(x.slice_move(s![offset.., .., ..])),
    };
    let targets = match batch.targets {
        SeqTargets::Classes(y) => SeqTargets::Classes(y.slice_move(s![offset.., ..])),
        SeqTargets::Dense(y) => SeqTargets::Dense(y.slice_move(s![offset.., .., ..])),
    };
    Ok(SeqBatch { inputs, targets })
}

/// Ids as a `[len, 1]` column: one sequence, time-major.
fn column(ids: &[usize]) -> ArrayView2<'_, usize> {
    ArrayView2::from_shape((ids.len(), 1), ids).expect("a slice is one contiguous column")
}

/// The sentence order of `epoch`: as given without a seed, else a seeded shuffle.
fn epoch_order(len: usize, seed: Option<u64>, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    if let Some(seed) = seed {
        let mixed = seed ^ 0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(epoch as u64 + 1);
        order.shuffle(&mut StdRng::seed_from_u64(mixed));
    }
    order
}

/// Writes sentences `members` time-major into `inputs`/`targets`, padded at the end with
/// token 0 and [`IGNORE`].
fn fill_padded(
    pairs: &[(Vec<usize>, Vec<usize>)],
    members: &[usize],
    inputs: &mut Array2<usize>,
    targets: &mut Array2<usize>,
) {
    let seq_len = members.iter().map(|&i| pairs[i].0.len()).max().unwrap_or(0);
    let shape = (seq_len, members.len());
    if inputs.dim() != shape {
        *inputs = Array2::zeros(shape);
        *targets = Array2::zeros(shape);
    }
    inputs.fill(0);
    targets.fill(IGNORE);
    for (b, &i) in members.iter().enumerate() {
        let (x, y) = &pairs[i];
        for (t, (&x, &y)) in x.iter().zip(y).enumerate() {
            inputs[[t, b]] = x;
            targets[[t, b]] = y;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_cover_the_text_once_in_order() {
        let ids: Vec<usize> = (0..11).collect();
        let mut data = TokenBatches::stream(ids, 3).unwrap();
        let mut seen = Vec::new();
        for i in 0..Batches::<f64>::len(&data) {
            let batch = Batches::<f64>::get(&mut data, 0, i).unwrap();
            let SeqInput::Tokens(x) = batch.inputs else {
                unreachable!()
            };
            seen.extend(x.iter().copied());
        }
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        assert!(TokenBatches::stream(vec![1], 1).is_err());
    }

    #[test]
    fn shuffles_depend_on_the_epoch_only() {
        let pairs: Vec<_> = (0..20).map(|i| (vec![i], vec![i])).collect();
        let mut data = TokenBatches::sentences(pairs).unwrap().shuffled(3);
        let first = |data: &mut TokenBatches, epoch| {
            let batch = Batches::<f64>::get(data, epoch, 0).unwrap();
            let SeqInput::Tokens(x) = batch.inputs else {
                unreachable!()
            };
            x[[0, 0]]
        };
        let order: Vec<usize> = (0..4).map(|e| first(&mut data, e)).collect();
        assert_eq!(
            order,
            (0..4).map(|e| first(&mut data, e)).collect::<Vec<_>>()
        );
        assert!(order.windows(2).any(|w| w[0] != w[1]), "{order:?}");
    }
}
