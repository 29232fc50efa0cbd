//! Word-level tokenising: sentences, then words, lower-cased, with sentence markers.
//!
//! Sentence and word boundaries are the Unicode ones (UAX #29, via `unicode-segmentation`).
//! Pure-whitespace pieces are dropped; punctuation is kept as tokens (`.`, `,`, `!`, `"`),
//! close to the NLTK tokenisation of the classic tutorial. One difference: UAX #29 keeps
//! contractions whole (`i'm`, `don't`), where NLTK splits them (`i`, `'m`).

use unicode_segmentation::UnicodeSegmentation;

/// Token that opens every tokenised sentence.
pub const SENTENCE_START: &str = "SENTENCE_START";
/// Token that closes every tokenised sentence.
pub const SENTENCE_END: &str = "SENTENCE_END";
/// Token that stands for every word outside the vocabulary.
pub const UNKNOWN_TOKEN: &str = "UNKNOWN_TOKEN";

/// Splits text into sentences of lower-case word tokens, each wrapped in
/// [`SENTENCE_START`] … [`SENTENCE_END`]. Sentences without any token are skipped.
///
/// Sentences are found on the original text and lower-cased afterwards: the Unicode
/// sentence rules do not break before a lower-case letter, so lower-casing first would glue
/// most sentences together. Because words are lower-case and the markers upper-case, no
/// word can be mistaken for a marker.
///
/// ```
/// use recur_data::tokenize_sentences;
///
/// let sentences = tokenize_sentences("Hello, World! I'm here.");
/// assert_eq!(sentences, [
///     vec!["SENTENCE_START", "hello", ",", "world", "!", "SENTENCE_END"],
///     vec!["SENTENCE_START", "i'm", "here", ".", "SENTENCE_END"],
/// ]);
/// ```
pub fn tokenize_sentences(text: &str) -> Vec<Vec<String>> {
    let mut sentences = Vec::new();
    for sentence in text.split_sentence_bounds() {
        let words = tokenize_words(sentence);
        if words.is_empty() {
            continue;
        }
        let mut tokens = Vec::with_capacity(words.len() + 2);
        tokens.push(SENTENCE_START.to_owned());
        tokens.extend(words);
        tokens.push(SENTENCE_END.to_owned());
        sentences.push(tokens);
    }
    sentences
}

/// [`tokenize_sentences`] over several documents, concatenating their sentences in order
/// (a sentence never spans two documents).
///
/// ```
/// let sentences = recur_data::tokenize_documents(&["One. Two.", "Three"]);
/// assert_eq!(sentences.len(), 3);
/// assert_eq!(sentences[2], ["SENTENCE_START", "three", "SENTENCE_END"]);
/// ```
pub fn tokenize_documents<S: AsRef<str>>(documents: &[S]) -> Vec<Vec<String>> {
    documents
        .iter()
        .flat_map(|doc| tokenize_sentences(doc.as_ref()))
        .collect()
}

/// Lower-cased word and punctuation tokens of a piece of text, without sentence markers.
///
/// ```
/// assert_eq!(recur_data::tokenize_words("Don't PANIC..."), ["don't", "panic", ".", ".", "."]);
/// ```
pub fn tokenize_words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split_word_bounds()
        .filter(|piece| !piece.chars().all(char::is_whitespace))
        .map(str::to_owned)
        .collect()
}

/// Number of tokens of a sentence that are not sentence markers.
pub fn word_count<S: AsRef<str>>(sentence: &[S]) -> usize {
    sentence
        .iter()
        .filter(|t| !matches!(t.as_ref(), SENTENCE_START | SENTENCE_END))
        .count()
}

/// Keeps only the sentences with at least `min_words` tokens besides the markers
/// (see [`word_count`]); order is preserved.
///
/// ```
/// let sentences = recur_data::tokenize_sentences("Yes. This one stays.");
/// let kept = recur_data::drop_short_sentences(sentences, 3);
/// assert_eq!(kept.len(), 1);
/// assert_eq!(kept[0][1], "this");
/// ```
pub fn drop_short_sentences(sentences: Vec<Vec<String>>, min_words: usize) -> Vec<Vec<String>> {
    sentences
        .into_iter()
        .filter(|s| word_count(s) >= min_words)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn punctuation_is_kept_and_whitespace_dropped() {
        assert_eq!(
            tokenize_words("  Well,\tthat's   \"it\"!\n"),
            ["well", ",", "that's", "\"", "it", "\"", "!"]
        );
    }

    #[test]
    fn sentences_are_split_before_lowercasing() {
        // Lower-cased first, "it. the" would not be a sentence boundary.
        let s = tokenize_sentences("It works. The end");
        assert_eq!(s.len(), 2);
        assert_eq!(s[1], ["SENTENCE_START", "the", "end", "SENTENCE_END"]);
    }

    #[test]
    fn newlines_end_sentences_and_blank_text_has_none() {
        assert_eq!(tokenize_sentences("First Citizen:\nSpeak.\n").len(), 2);
        assert!(tokenize_sentences(" \n\t\n").is_empty());
        assert!(tokenize_sentences("").is_empty());
    }

    #[test]
    fn markers_cannot_collide_with_words() {
        let s = tokenize_sentences("SENTENCE_END UNKNOWN_TOKEN");
        assert_eq!(
            s[0],
            [
                "SENTENCE_START",
                "sentence_end",
                "unknown_token",
                "SENTENCE_END"
            ]
        );
        assert_eq!(word_count(&s[0]), 2);
    }

    proptest! {
        #[test]
        fn tokenizer_never_panics_and_is_well_formed(text in "\\PC{0,200}|[\\s\\S]{0,200}") {
            for sentence in tokenize_sentences(&text) {
                prop_assert!(sentence.len() >= 3);
                prop_assert_eq!(sentence.first().map(String::as_str), Some(SENTENCE_START));
                prop_assert_eq!(sentence.last().map(String::as_str), Some(SENTENCE_END));
                for word in &sentence[1..sentence.len() - 1] {
                    prop_assert!(!word.is_empty());
                    prop_assert!(!word.chars().all(char::is_whitespace));
                }
            }
        }

        #[test]
        fn tokenizer_handles_lossy_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = tokenize_sentences(&text);
        }
    }
}
