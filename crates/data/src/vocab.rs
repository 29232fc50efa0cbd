//! Word vocabulary: the most frequent tokens of a corpus, with fixed ids for the specials.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::tokenize::{SENTENCE_END, SENTENCE_START, UNKNOWN_TOKEN};

const SPECIALS: [&str; 3] = [UNKNOWN_TOKEN, SENTENCE_START, SENTENCE_END];

/// A bidirectional map between tokens and ids.
///
/// # Id layout
/// | id | token |
/// | --- | --- |
/// | 0 | [`UNKNOWN_TOKEN`] ([`Vocabulary::UNKNOWN_ID`]) |
/// | 1 | [`SENTENCE_START`] ([`Vocabulary::SENTENCE_START_ID`]) |
/// | 2 | [`SENTENCE_END`] ([`Vocabulary::SENTENCE_END_ID`]) |
/// | 3.. | the other tokens, by frequency descending, ties in lexicographic (byte) order |
///
/// The specials have fixed ids so that code generating text can test for the end marker
/// without a lookup, and so that id 0 is valid in every vocabulary (it is the padding id of
/// [`PaddedBatch`](crate::PaddedBatch)). The requested size counts every id, the specials
/// included, like the tutorial's `vocabulary_size` (the output layer has exactly that many
/// classes).
///
/// Serialises as `{"words": [...]}` (tokens in id order); deserialising checks the layout.
///
/// ```
/// use recur_data::{tokenize_sentences, Vocabulary, UNKNOWN_TOKEN};
///
/// let sentences = tokenize_sentences("The cat sat. The dog sat. A bird flew.");
/// let (vocab, report) = Vocabulary::build(&sentences, 6)?;
/// // 3 specials + the 3 most frequent words: "." (3), "sat" (2), "the" (2).
/// assert_eq!(vocab.words()[3..], [".", "sat", "the"]);
/// assert_eq!(report.least_frequent_kept, ("the".to_owned(), 2));
///
/// let ids = vocab.encode(&sentences[0]);
/// assert_eq!(vocab.decode(&ids)?, ["SENTENCE_START", "the", UNKNOWN_TOKEN, "sat", ".", "SENTENCE_END"]);
/// # Ok::<(), recur_data::DataError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "VocabularyRepr", into = "VocabularyRepr")]
pub struct Vocabulary {
    words: Vec<String>,
    ids: HashMap<String, usize>,
}

#[derive(Serialize, Deserialize)]
struct VocabularyRepr {
    words: Vec<String>,
}

impl From<Vocabulary> for VocabularyRepr {
    fn from(vocab: Vocabulary) -> Self {
        Self { words: vocab.words }
    }
}

impl TryFrom<VocabularyRepr> for Vocabulary {
    type Error = DataError;

    fn try_from(repr: VocabularyRepr) -> Result<Self> {
        Self::from_words(repr.words)
    }
}

/// What [`Vocabulary::build`] saw and kept, in the terms the tutorial prints.
///
/// Counts include the sentence markers, which are tokens like any other.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VocabularyReport {
    /// Number of sentences read.
    pub sentences: usize,
    /// Number of tokens read (all occurrences).
    pub tokens: usize,
    /// Number of distinct tokens read.
    pub unique_tokens: usize,
    /// Number of distinct tokens read that have their own id.
    pub kept: usize,
    /// The kept token with the fewest occurrences (the last one by id) and that count.
    pub least_frequent_kept: (String, usize),
    /// Token occurrences that are not kept and will be encoded as [`UNKNOWN_TOKEN`].
    pub replaced: usize,
    /// Size of the vocabulary built (all ids, specials included).
    pub vocabulary_size: usize,
}

impl fmt::Display for VocabularyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Parsed {} sentences, {} tokens.",
            self.sentences, self.tokens
        )?;
        writeln!(f, "Found {} unique word tokens.", self.unique_tokens)?;
        write!(
            f,
            "Using vocabulary size {}. The least frequent word in our vocabulary is '{}' and \
             appeared {} times.",
            self.vocabulary_size, self.least_frequent_kept.0, self.least_frequent_kept.1
        )
    }
}

impl Vocabulary {
    /// Id of [`UNKNOWN_TOKEN`].
    pub const UNKNOWN_ID: usize = 0;
    /// Id of [`SENTENCE_START`].
    pub const SENTENCE_START_ID: usize = 1;
    /// Id of [`SENTENCE_END`].
    pub const SENTENCE_END_ID: usize = 2;
    /// Number of special tokens at the front of every vocabulary.
    pub const SPECIAL_COUNT: usize = 3;

    /// Builds a vocabulary of at most `size` ids from tokenised sentences: the three
    /// specials plus the `size - 3` most frequent other tokens (frequency descending, ties
    /// in lexicographic order, so the result does not depend on hashing). If the corpus
    /// has fewer distinct tokens, the vocabulary is smaller than `size`.
    ///
    /// # Errors
    /// [`DataError::InvalidConfig`] if `size < 3`; [`DataError::Empty`] if the sentences
    /// hold no token.
    pub fn build<S: AsRef<str>>(
        sentences: &[Vec<S>],
        size: usize,
    ) -> Result<(Self, VocabularyReport)> {
        if size < Self::SPECIAL_COUNT {
            return Err(DataError::InvalidConfig {
                name: "vocabulary size",
                reason: format!(
                    "{size} is less than the {} special tokens; ask for at least {}",
                    Self::SPECIAL_COUNT,
                    Self::SPECIAL_COUNT
                ),
            });
        }
        let mut counts: HashMap<&str, usize> = HashMap::new();
        let mut tokens = 0;
        for token in sentences.iter().flatten() {
            *counts.entry(token.as_ref()).or_default() += 1;
            tokens += 1;
        }
        if tokens == 0 {
            return Err(DataError::Empty {
                what: "token list for the vocabulary".to_owned(),
            });
        }

        let mut ranked: Vec<(&str, usize)> = counts
            .iter()
            .filter(|(word, _)| !SPECIALS.contains(word))
            .map(|(&word, &count)| (word, count))
            .collect();
        ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        ranked.truncate(size - Self::SPECIAL_COUNT);

        let words = SPECIALS
            .iter()
            .copied()
            .chain(ranked.iter().map(|&(w, _)| w))
            .map(str::to_owned)
            .collect();
        let vocab = Self::from_words(words)?;

        // Kept: every distinct token read that has an id (an `UNKNOWN_TOKEN` string in the
        // input maps to id 0 and counts as kept too).
        let count_of = |w: &str| counts.get(w).copied().unwrap_or(0);
        let kept_counts: Vec<(&str, usize)> = vocab
            .words
            .iter()
            .map(|w| (w.as_str(), count_of(w)))
            .filter(|&(_, c)| c > 0)
            .collect();
        let kept = kept_counts.len();
        let kept_occurrences: usize = kept_counts.iter().map(|&(_, c)| c).sum();
        // Ordinary words come last and in descending frequency, so the last one is the least
        // frequent; with no ordinary word, fall back to the rarest special that occurred.
        let least_frequent_kept = ranked
            .last()
            .copied()
            .or_else(|| kept_counts.iter().copied().min_by_key(|&(_, c)| c))
            .map_or((SENTENCE_END.to_owned(), 0), |(w, c)| (w.to_owned(), c));

        let report = VocabularyReport {
            sentences: sentences.len(),
            tokens,
            unique_tokens: counts.len(),
            kept,
            least_frequent_kept,
            replaced: tokens - kept_occurrences,
            vocabulary_size: vocab.len(),
        };
        Ok((vocab, report))
    }

    /// Builds a vocabulary from tokens in id order; the first three must be the specials in
    /// the documented order. This is what deserialisation uses.
    ///
    /// ```
    /// use recur_data::Vocabulary;
    /// let v = Vocabulary::from_words(
    ///     ["UNKNOWN_TOKEN", "SENTENCE_START", "SENTENCE_END", "hi"].map(String::from).to_vec(),
    /// )?;
    /// assert_eq!(v.id_of("hi"), Some(3));
    /// # Ok::<(), recur_data::DataError>(())
    /// ```
    ///
    /// # Errors
    /// [`DataError::InvalidConfig`] if the specials are missing or misplaced, or a token
    /// appears twice.
    pub fn from_words(words: Vec<String>) -> Result<Self> {
        if words.len() < Self::SPECIAL_COUNT || words[..Self::SPECIAL_COUNT] != SPECIALS {
            return Err(DataError::InvalidConfig {
                name: "vocabulary words",
                reason: format!("the first tokens must be {SPECIALS:?}"),
            });
        }
        let mut ids = HashMap::with_capacity(words.len());
        for (id, word) in words.iter().enumerate() {
            if ids.insert(word.clone(), id).is_some() {
                return Err(DataError::InvalidConfig {
                    name: "vocabulary words",
                    reason: format!("token {word:?} appears twice"),
                });
            }
        }
        Ok(Self { words, ids })
    }

    /// Number of ids (specials included).
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Always `false`: a vocabulary holds at least the three specials.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Tokens in id order.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// The id of a token, if it has one.
    pub fn id_of(&self, token: &str) -> Option<usize> {
        self.ids.get(token).copied()
    }

    /// The id of a token, or [`Vocabulary::UNKNOWN_ID`].
    pub fn id_or_unknown(&self, token: &str) -> usize {
        self.id_of(token).unwrap_or(Self::UNKNOWN_ID)
    }

    /// The token with this id, if the id is in range.
    pub fn word_of(&self, id: usize) -> Option<&str> {
        self.words.get(id).map(String::as_str)
    }

    /// Encodes tokens, mapping unknown ones to [`Vocabulary::UNKNOWN_ID`] (as the tutorial
    /// does).
    pub fn encode<S: AsRef<str>>(&self, tokens: &[S]) -> Vec<usize> {
        tokens
            .iter()
            .map(|t| self.id_or_unknown(t.as_ref()))
            .collect()
    }

    /// Encodes tokens, failing on the first unknown one.
    ///
    /// # Errors
    /// [`DataError::UnknownToken`] naming the first token without an id.
    pub fn encode_strict<S: AsRef<str>>(&self, tokens: &[S]) -> Result<Vec<usize>> {
        tokens
            .iter()
            .map(|t| {
                self.id_of(t.as_ref())
                    .ok_or_else(|| DataError::UnknownToken {
                        token: t.as_ref().to_owned(),
                    })
            })
            .collect()
    }

    /// [`Vocabulary::encode`] for every sentence.
    pub fn encode_sentences<S: AsRef<str>>(&self, sentences: &[Vec<S>]) -> Vec<Vec<usize>> {
        sentences.iter().map(|s| self.encode(s)).collect()
    }

    /// Decodes ids to tokens.
    ///
    /// # Errors
    /// [`DataError::UnknownId`] for the first id `>= len()`.
    pub fn decode(&self, ids: &[usize]) -> Result<Vec<&str>> {
        ids.iter()
            .map(|&id| {
                self.word_of(id).ok_or(DataError::UnknownId {
                    id,
                    vocab_size: self.len(),
                })
            })
            .collect()
    }

    /// Decodes ids to text: tokens joined by spaces, sentence markers left out (for
    /// printing generated sentences).
    ///
    /// ```
    /// use recur_data::{tokenize_sentences, Vocabulary};
    /// let sentences = tokenize_sentences("Hi there.");
    /// let (vocab, _) = Vocabulary::build(&sentences, 10)?;
    /// assert_eq!(vocab.decode_text(&vocab.encode(&sentences[0]))?, "hi there .");
    /// # Ok::<(), recur_data::DataError>(())
    /// ```
    ///
    /// # Errors
    /// [`DataError::UnknownId`] for the first id `>= len()`.
    pub fn decode_text(&self, ids: &[usize]) -> Result<String> {
        let words = self.decode(ids)?;
        let kept: Vec<&str> = words
            .into_iter()
            .filter(|w| !matches!(*w, SENTENCE_START | SENTENCE_END))
            .collect();
        Ok(kept.join(" "))
    }
}

/// The tutorial's training pairs: for an encoded sentence `[START, w1, …, wn, END]`, the
/// input is every id but the last and the target every id but the first, so the model
/// predicts the next token at each step. Sentences shorter than two ids give no pair and
/// are skipped.
///
/// ```
/// let pairs = recur_data::training_pairs(&[vec![1, 7, 8, 2], vec![1]]);
/// assert_eq!(pairs, [(vec![1, 7, 8], vec![7, 8, 2])]);
/// ```
pub fn training_pairs(sentences: &[Vec<usize>]) -> Vec<(Vec<usize>, Vec<usize>)> {
    sentences
        .iter()
        .filter(|s| s.len() >= 2)
        .map(|s| (s[..s.len() - 1].to_vec(), s[1..].to_vec()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenize::tokenize_sentences;
    use proptest::prelude::*;

    fn toks(words: &str) -> Vec<String> {
        words.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn ties_are_broken_lexicographically() {
        // b, a, c each twice; z once; d three times. Input order differs from output order.
        let sentences = vec![toks("b z a c"), toks("c a b d"), toks("d d")];
        let (vocab, report) = Vocabulary::build(&sentences, 6).unwrap();
        assert_eq!(
            vocab.words(),
            [
                "UNKNOWN_TOKEN",
                "SENTENCE_START",
                "SENTENCE_END",
                "d",
                "a",
                "b"
            ]
        );
        assert_eq!(report.least_frequent_kept, ("b".to_owned(), 2));
        assert_eq!(report.kept, 3);
        assert_eq!(report.replaced, 3); // c, c, z
        assert_eq!(report.unique_tokens, 5);
        assert_eq!(report.tokens, 10);
        // Same corpus, sentences in another order: same ids.
        let reversed: Vec<_> = sentences.iter().rev().cloned().collect();
        assert_eq!(Vocabulary::build(&reversed, 6).unwrap().0, vocab);
    }

    #[test]
    fn specials_have_fixed_ids_and_count() {
        let sentences = tokenize_sentences("a b. a c.");
        let (vocab, report) = Vocabulary::build(&sentences, 100).unwrap();
        assert_eq!(
            vocab.id_of(SENTENCE_START),
            Some(Vocabulary::SENTENCE_START_ID)
        );
        assert_eq!(vocab.id_of(SENTENCE_END), Some(Vocabulary::SENTENCE_END_ID));
        assert_eq!(vocab.id_of(UNKNOWN_TOKEN), Some(Vocabulary::UNKNOWN_ID));
        // Smaller than asked: only 4 other distinct tokens exist.
        assert_eq!(vocab.len(), 7);
        assert_eq!(report.unique_tokens, 6); // start, end, a, b, c, .
        assert_eq!(report.kept, 6);
        assert_eq!(report.replaced, 0);
        assert_eq!(vocab.words()[3..], [".", "a", "b", "c"]);
    }

    #[test]
    fn strict_encoding_and_decoding_errors() {
        let (vocab, _) = Vocabulary::build(&[toks("x y")], 4).unwrap();
        assert_eq!(vocab.encode(&toks("x y")), [3, 0]);
        assert!(matches!(
            vocab.encode_strict(&toks("x y")),
            Err(DataError::UnknownToken { token }) if token == "y"
        ));
        assert!(matches!(
            vocab.decode(&[3, 4]),
            Err(DataError::UnknownId {
                id: 4,
                vocab_size: 4
            })
        ));
    }

    #[test]
    fn invalid_sizes_and_empty_input() {
        assert!(matches!(
            Vocabulary::build(&[toks("a")], 2),
            Err(DataError::InvalidConfig { .. })
        ));
        assert!(matches!(
            Vocabulary::build::<String>(&[vec![]], 10),
            Err(DataError::Empty { .. })
        ));
        let (vocab, report) = Vocabulary::build(&[toks("a b")], 3).unwrap();
        assert_eq!(vocab.len(), 3);
        assert_eq!(report.kept, 0);
        assert_eq!(report.replaced, 2);
    }

    #[test]
    fn serde_round_trip_and_validation() {
        let (vocab, _) = Vocabulary::build(&tokenize_sentences("one two. two."), 10).unwrap();
        let json = serde_json::to_string(&vocab).unwrap();
        let back: Vocabulary = serde_json::from_str(&json).unwrap();
        assert_eq!(back, vocab);
        assert_eq!(back.id_of("two"), vocab.id_of("two"));
        let bad = r#"{"words":["SENTENCE_START","UNKNOWN_TOKEN","SENTENCE_END"]}"#;
        assert!(serde_json::from_str::<Vocabulary>(bad).is_err());
        let dup = r#"{"words":["UNKNOWN_TOKEN","SENTENCE_START","SENTENCE_END","a","a"]}"#;
        assert!(serde_json::from_str::<Vocabulary>(dup).is_err());
    }

    #[test]
    fn report_prints_like_the_tutorial() {
        let (_, report) = Vocabulary::build(&tokenize_sentences("a a b."), 5).unwrap();
        let text = report.to_string();
        assert!(text.contains("Found 5 unique word tokens."), "{text}");
        assert!(
            text.contains("Using vocabulary size 5. The least frequent word in our vocabulary is '.' and appeared 1 times."),
            "{text}"
        );
    }

    proptest! {
        #[test]
        fn vocabulary_never_panics_and_round_trips(text in "\\PC{0,300}", size in 0usize..40) {
            let sentences = tokenize_sentences(&text);
            match Vocabulary::build(&sentences, size) {
                Ok((vocab, report)) => {
                    prop_assert!(vocab.len() <= size);
                    prop_assert_eq!(report.tokens, sentences.iter().map(Vec::len).sum::<usize>());
                    prop_assert!(report.kept <= report.unique_tokens);
                    for sentence in &sentences {
                        let ids = vocab.encode(sentence);
                        let back = vocab.decode(&ids).unwrap();
                        for (word, got) in sentence.iter().zip(back) {
                            prop_assert!(got == word || got == UNKNOWN_TOKEN);
                        }
                    }
                    for pair in training_pairs(&vocab.encode_sentences(&sentences)) {
                        prop_assert_eq!(pair.0.len(), pair.1.len());
                        prop_assert_eq!(pair.0[0], Vocabulary::SENTENCE_START_ID);
                        prop_assert_eq!(*pair.1.last().unwrap(), Vocabulary::SENTENCE_END_ID);
                    }
                }
                Err(DataError::InvalidConfig { .. }) => prop_assert!(size < 3),
                Err(DataError::Empty { .. }) => prop_assert!(sentences.is_empty()),
                Err(e) => prop_assert!(false, "unexpected error {e}"),
            }
        }
    }
}
