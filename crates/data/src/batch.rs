//! Batching variable-length id sequences into padded, time-major arrays.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::error::{DataError, Result};

/// The default pad id: 0, which is [`crate::Vocabulary::UNKNOWN_ID`] and the first
/// character of a [`crate::CharVocabulary`], so a padded position is still a valid id for
/// an embedding lookup. Its value never matters once positions are masked.
pub const PAD_ID: usize = 0;

/// Sequences of ids padded to a common length, time-major.
///
/// # Layout
/// A batch of `batch` sequences padded to `seq_len` steps is one `Vec<usize>` of
/// `seq_len * batch` ids, **time-major**: the id of sequence `b` at step `t` is at index
/// `t * batch + b`, so one time step (`[t * batch, (t + 1) * batch)`) is a contiguous
/// slice. Positions with `t >= lengths[b]` hold the pad id and must be masked out of the
/// loss; they are there only so every step has `batch` entries.
///
/// ```
/// use recur_data::PaddedBatch;
///
/// let batch = PaddedBatch::new(&[vec![5, 6, 7], vec![8]])?;
/// assert_eq!((batch.seq_len(), batch.batch()), (3, 2));
/// //                    t = 0   t = 1   t = 2
/// assert_eq!(batch.ids(), [5, 8,   6, 0,   7, 0]);
/// assert_eq!(batch.lengths(), [3, 1]);
/// assert_eq!(batch.step(1), Some(&[6, 0][..]));
/// assert!(batch.is_valid(0, 1) && !batch.is_valid(1, 1));
/// # Ok::<(), recur_data::DataError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaddedBatch {
    ids: Vec<usize>,
    lengths: Vec<usize>,
    seq_len: usize,
    pad: usize,
}

impl PaddedBatch {
    /// Pads `sequences` with [`PAD_ID`].
    ///
    /// # Errors
    /// As [`PaddedBatch::with_pad`].
    pub fn new<S: AsRef<[usize]>>(sequences: &[S]) -> Result<Self> {
        Self::with_pad(sequences, PAD_ID)
    }

    /// Pads `sequences` with `pad`; `seq_len` is the longest sequence's length (zero-length
    /// sequences are allowed).
    ///
    /// # Errors
    /// [`DataError::Empty`] if there is no sequence.
    pub fn with_pad<S: AsRef<[usize]>>(sequences: &[S], pad: usize) -> Result<Self> {
        if sequences.is_empty() {
            return Err(DataError::Empty {
                what: "list of sequences to batch".to_owned(),
            });
        }
        let batch = sequences.len();
        let lengths: Vec<usize> = sequences.iter().map(|s| s.as_ref().len()).collect();
        let seq_len = lengths.iter().copied().max().unwrap_or(0);
        let mut ids = vec![pad; seq_len * batch];
        for (b, seq) in sequences.iter().enumerate() {
            for (t, &id) in seq.as_ref().iter().enumerate() {
                ids[t * batch + b] = id;
            }
        }
        Ok(Self {
            ids,
            lengths,
            seq_len,
            pad,
        })
    }

    /// All ids, time-major: index `t * batch + b`.
    pub fn ids(&self) -> &[usize] {
        &self.ids
    }

    /// The true length of each sequence, in batch order.
    pub fn lengths(&self) -> &[usize] {
        &self.lengths
    }

    /// Number of time steps (the longest length).
    pub fn seq_len(&self) -> usize {
        self.seq_len
    }

    /// Number of sequences.
    pub fn batch(&self) -> usize {
        self.lengths.len()
    }

    /// The pad id used.
    pub fn pad(&self) -> usize {
        self.pad
    }

    /// The ids of every sequence at step `t` (`batch` entries), or `None` if `t >= seq_len`.
    pub fn step(&self, t: usize) -> Option<&[usize]> {
        let batch = self.batch();
        (t < self.seq_len).then(|| &self.ids[t * batch..(t + 1) * batch])
    }

    /// The id at step `t` of sequence `b` (the pad id past its end), or `None` out of range.
    pub fn get(&self, t: usize, b: usize) -> Option<usize> {
        (b < self.batch())
            .then(|| self.step(t).map(|row| row[b]))
            .flatten()
    }

    /// Whether step `t` of sequence `b` is real data rather than padding.
    pub fn is_valid(&self, t: usize, b: usize) -> bool {
        self.lengths.get(b).is_some_and(|&len| t < len)
    }

    /// The validity of every position, in the same time-major layout as [`Self::ids`].
    pub fn mask(&self) -> Vec<bool> {
        (0..self.seq_len)
            .flat_map(|t| self.lengths.iter().map(move |&len| t < len))
            .collect()
    }

    /// Takes the ids and lengths out.
    pub fn into_parts(self) -> (Vec<usize>, Vec<usize>) {
        (self.ids, self.lengths)
    }
}

/// How [`bucket_by_length`] groups sequences.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Bucketing {
    /// Every batch holds sequences of one length only (no padding at all); the last batch
    /// of each length may be smaller than the batch size.
    EqualLength,
    /// Sequences are sorted by length and cut into full batches, so padding is small; only
    /// the very last batch may be smaller.
    SimilarLength,
}

/// Groups sequence indices into batches of at most `batch_size` with equal or similar
/// lengths, in an order shuffled by `seed`. Every index `0..lengths.len()` appears exactly
/// once. Sequences of the same length are shuffled before grouping, and the batches are
/// shuffled afterwards, so different seeds give different batches and orders while the
/// same seed always gives the same ones.
///
/// ```
/// use recur_data::{bucket_by_length, Bucketing};
///
/// let lengths = [3, 5, 3, 5, 3];
/// let batches = bucket_by_length(&lengths, 2, Bucketing::EqualLength, 1)?;
/// assert_eq!(batches.len(), 3); // {3, 3}, {3}, {5, 5} in some order
/// for batch in &batches {
///     assert!(batch.iter().all(|&i| lengths[i] == lengths[batch[0]]));
/// }
/// # Ok::<(), recur_data::DataError>(())
/// ```
///
/// # Errors
/// [`DataError::InvalidConfig`] if `batch_size` is zero.
pub fn bucket_by_length(
    lengths: &[usize],
    batch_size: usize,
    bucketing: Bucketing,
    seed: u64,
) -> Result<Vec<Vec<usize>>> {
    if batch_size == 0 {
        return Err(DataError::InvalidConfig {
            name: "batch_size",
            reason: "must be at least 1".to_owned(),
        });
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.shuffle(&mut rng);
    // Stable: equal lengths keep their shuffled order.
    order.sort_by_key(|&i| lengths[i]);

    let mut batches: Vec<Vec<usize>> = match bucketing {
        Bucketing::SimilarLength => order.chunks(batch_size).map(<[usize]>::to_vec).collect(),
        Bucketing::EqualLength => order
            .chunk_by(|&i, &j| lengths[i] == lengths[j])
            .flat_map(|run| run.chunks(batch_size))
            .map(<[usize]>::to_vec)
            .collect(),
    };
    batches.shuffle(&mut rng);
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn layout_is_time_major() {
        let seqs = [vec![1, 2], vec![], vec![3, 4, 5]];
        let batch = PaddedBatch::with_pad(&seqs, 9).unwrap();
        assert_eq!(batch.ids(), [1, 9, 3, 2, 9, 4, 9, 9, 5]);
        assert_eq!(batch.get(2, 2), Some(5));
        assert_eq!(batch.get(1, 1), Some(9));
        assert_eq!(batch.get(3, 0), None);
        assert_eq!(batch.get(0, 3), None);
        assert_eq!(batch.step(3), None);
        assert_eq!(
            batch.mask(),
            [true, false, true, true, false, true, false, false, true]
        );
        assert_eq!(batch.pad(), 9);
        let (ids, lengths) = batch.into_parts();
        assert_eq!((ids.len(), lengths), (9, vec![2, 0, 3]));
    }

    #[test]
    fn empty_input_and_zero_batch_size() {
        assert!(matches!(
            PaddedBatch::new::<Vec<usize>>(&[]),
            Err(DataError::Empty { .. })
        ));
        let only_empty = PaddedBatch::new(&[Vec::<usize>::new()]).unwrap();
        assert_eq!((only_empty.seq_len(), only_empty.batch()), (0, 1));
        assert!(bucket_by_length(&[1], 0, Bucketing::SimilarLength, 0).is_err());
        assert!(bucket_by_length(&[], 3, Bucketing::SimilarLength, 0)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn similar_length_batches_are_full_and_sorted_within() {
        let lengths: Vec<usize> = (0..10).map(|i| (i * 7) % 10).collect();
        let batches = bucket_by_length(&lengths, 4, Bucketing::SimilarLength, 5).unwrap();
        let mut sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        sizes.sort_unstable();
        assert_eq!(sizes, [2, 4, 4]);
        // Lengths are all distinct here, so each batch is a run of 4 consecutive lengths.
        for batch in &batches {
            let ls: Vec<usize> = batch.iter().map(|&i| lengths[i]).collect();
            assert!(ls.windows(2).all(|w| w[0] < w[1]));
            assert!(ls.last().unwrap() - ls[0] < batch.len());
        }
    }

    proptest! {
        #[test]
        fn bucketing_is_a_seeded_partition(
            lengths in proptest::collection::vec(0usize..6, 0..60),
            batch_size in 1usize..8,
            exact in any::<bool>(),
            seed in any::<u64>(),
        ) {
            let policy = if exact { Bucketing::EqualLength } else { Bucketing::SimilarLength };
            let batches = bucket_by_length(&lengths, batch_size, policy, seed).unwrap();
            prop_assert_eq!(&batches, &bucket_by_length(&lengths, batch_size, policy, seed).unwrap());
            let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
            seen.sort_unstable();
            prop_assert_eq!(seen, (0..lengths.len()).collect::<Vec<_>>());
            for batch in &batches {
                prop_assert!(!batch.is_empty() && batch.len() <= batch_size);
                if exact {
                    prop_assert!(batch.iter().all(|&i| lengths[i] == lengths[batch[0]]));
                }
            }
            if !exact {
                prop_assert!(batches.iter().filter(|b| b.len() < batch_size).count() <= 1);
            }
        }

        #[test]
        fn padding_puts_every_id_at_t_times_batch_plus_b(
            seqs in proptest::collection::vec(proptest::collection::vec(0usize..100, 0..10), 1..8),
        ) {
            let batch = PaddedBatch::new(&seqs).unwrap();
            let b_count = seqs.len();
            prop_assert_eq!(batch.ids().len(), batch.seq_len() * b_count);
            for (b, seq) in seqs.iter().enumerate() {
                for t in 0..batch.seq_len() {
                    let expected = seq.get(t).copied().unwrap_or(PAD_ID);
                    prop_assert_eq!(batch.ids()[t * b_count + b], expected);
                    prop_assert_eq!(batch.is_valid(t, b), t < seq.len());
                }
            }
        }
    }
}
