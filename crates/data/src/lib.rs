//! Data for recur's examples: corpora, tokenising, vocabularies, batching and
//! binary-addition samples.
//!
//! This crate is deliberately free of the numeric crates: it turns files and strings into
//! ids (`usize`) and bits (`u8`), and the examples turn those into arrays.
//!
//! - [`Corpus`] / [`CorpusFormat`]: reddit-comments CSV (a `body` column, RFC 4180 quoting,
//!   multi-line records) or plain text split into paragraphs; from files, strings or readers.
//! - [`tokenize_sentences`]: lower-case word and punctuation tokens per sentence, wrapped in
//!   [`SENTENCE_START`] / [`SENTENCE_END`].
//! - [`Vocabulary`]: the most frequent tokens plus [`UNKNOWN_TOKEN`], fixed ids for the
//!   specials, a [`VocabularyReport`], and [`training_pairs`] (next-token targets).
//! - [`CharVocabulary`]: the sorted distinct characters of a text, for character models.
//! - [`PaddedBatch`] and [`bucket_by_length`]: time-major padded id arrays
//!   (index `t * batch + b`) and length-bucketed, seeded batches.
//! - [`AdditionSampler`]: seeded binary-addition problems, bits least significant first.
//!
//! Every parser returns a [`DataError`] on bad input; none panics, whatever the bytes.
//!
//! ```
//! use recur_data::{tokenize_documents, training_pairs, Corpus, CorpusFormat, Vocabulary};
//!
//! let csv = "body\n\"The cat sat.\n\nThe cat ran!\"\n\"A dog, a cat.\"\n";
//! let corpus = Corpus::from_text(csv, CorpusFormat::RedditCsv)?;
//! let sentences = tokenize_documents(corpus.documents());
//! assert_eq!(sentences.len(), 3);
//!
//! let (vocab, report) = Vocabulary::build(&sentences, 8)?;
//! assert_eq!(report.unique_tokens, 11); // 2 markers + "the", "cat", "sat", ".", "ran", "!", "a", "dog", ","
//! assert_eq!(vocab.len(), 8);
//!
//! let pairs = training_pairs(&vocab.encode_sentences(&sentences));
//! let (input, target) = &pairs[0];
//! assert_eq!(input[1..], target[..target.len() - 1]);
//! # Ok::<(), recur_data::DataError>(())
//! ```
//!
//! ## The workspace
//!
//! | crate | job |
//! |---|---|
//! | `recur-linalg` | allocation-free matrix products (AVX-512/AVX2 chosen at run time) |
//! | `recur-core` | float bound, parameter sets, inputs, errors, activations |
//! | `recur-cell` | the `Cell` trait, `Elman`, the `Linear` readout, initialisation |
//! | `recur-loss` | losses that own their output function |
//! | `recur-optim` | optimizers, clipping, schedules over any parameter set |
//! | `recur-bptt` | the engine: forward, truncated backward, training, gradient checks |
//! | `recur-io` | checkpoints and safetensors export |
//! | `recur-data` | corpora, vocabularies, binary-addition samples |
//! | `recur` | the facade: re-exports, examples, benchmarks |
//!
//! Dependencies flow one way: linalg ← core ← cell, loss, optim ← bptt; io builds on
//! core and optim; data stands alone.

mod batch;
mod binary;
mod chars;
mod corpus;
mod error;
mod tokenize;
mod vocab;

pub use batch::{bucket_by_length, Bucketing, PaddedBatch, PAD_ID};
pub use binary::{from_bits, to_bits, AdditionSample, AdditionSampler, Bit, MAX_SAMPLER_BITS};
pub use chars::CharVocabulary;
pub use corpus::{
    read_reddit_csv, read_reddit_csv_with, read_text, reddit_csv_from_reader,
    reddit_csv_from_reader_with, reddit_csv_from_str, split_paragraphs, Corpus, CorpusFormat,
    CsvQuotes, BODY_COLUMN,
};
pub use error::{DataError, Result};
pub use tokenize::{
    drop_short_sentences, tokenize_documents, tokenize_sentences, tokenize_words, word_count,
    SENTENCE_END, SENTENCE_START, UNKNOWN_TOKEN,
};
pub use vocab::{training_pairs, Vocabulary, VocabularyReport};
