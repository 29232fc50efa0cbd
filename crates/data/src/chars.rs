//! Character-level vocabulary: the distinct characters of a text.

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};

/// The distinct characters of a text in ascending code-point order; a character's id is
/// its index, so the same text always gives the same ids.
///
/// Serialises as `{"chars": "<the characters, in id order>"}`; deserialising checks they
/// are strictly ascending.
///
/// ```
/// use recur_data::CharVocabulary;
///
/// let vocab = CharVocabulary::from_text("hello")?;
/// assert_eq!(vocab.chars(), ['e', 'h', 'l', 'o']);
/// let ids = vocab.encode("hole")?;
/// assert_eq!(ids, [1, 3, 2, 0]);
/// assert_eq!(vocab.decode(&ids)?, "hole");
/// # Ok::<(), recur_data::DataError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CharRepr", into = "CharRepr")]
pub struct CharVocabulary {
    chars: Vec<char>,
    /// Ids of ASCII characters (`usize::MAX` = absent): most corpora are mostly ASCII, and
    /// encoding a megabyte of text should not do a search per character.
    ascii: [usize; 128],
}

#[derive(Serialize, Deserialize)]
struct CharRepr {
    chars: String,
}

impl From<CharVocabulary> for CharRepr {
    fn from(vocab: CharVocabulary) -> Self {
        Self {
            chars: vocab.chars.into_iter().collect(),
        }
    }
}

impl TryFrom<CharRepr> for CharVocabulary {
    type Error = DataError;

    fn try_from(repr: CharRepr) -> Result<Self> {
        let chars: Vec<char> = repr.chars.chars().collect();
        if chars.is_empty() || chars.windows(2).any(|w| w[0] >= w[1]) {
            return Err(DataError::InvalidConfig {
                name: "character vocabulary",
                reason: "characters must be non-empty, distinct and in ascending order".into(),
            });
        }
        Ok(Self::from_sorted(chars))
    }
}

impl CharVocabulary {
    /// Collects the distinct characters of `text`.
    ///
    /// # Errors
    /// [`DataError::Empty`] if `text` is empty.
    pub fn from_text(text: &str) -> Result<Self> {
        let mut chars: Vec<char> = text.chars().collect();
        if chars.is_empty() {
            return Err(DataError::Empty {
                what: "text for the character vocabulary".to_owned(),
            });
        }
        chars.sort_unstable();
        chars.dedup();
        Ok(Self::from_sorted(chars))
    }

    fn from_sorted(chars: Vec<char>) -> Self {
        let mut ascii = [usize::MAX; 128];
        for (id, &c) in chars.iter().enumerate() {
            if c.is_ascii() {
                ascii[c as usize] = id;
            }
        }
        Self { chars, ascii }
    }

    /// Number of distinct characters (never zero).
    pub fn len(&self) -> usize {
        self.chars.len()
    }

    /// Always `false`: building from an empty text is an error.
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// The characters in id order.
    pub fn chars(&self) -> &[char] {
        &self.chars
    }

    /// The id of a character, if it is in the vocabulary.
    pub fn id_of(&self, c: char) -> Option<usize> {
        if c.is_ascii() {
            Some(self.ascii[c as usize]).filter(|&id| id != usize::MAX)
        } else {
            self.chars.binary_search(&c).ok()
        }
    }

    /// The character with this id, if the id is in range.
    pub fn char_of(&self, id: usize) -> Option<char> {
        self.chars.get(id).copied()
    }

    /// Encodes every character of `text`.
    ///
    /// # Errors
    /// [`DataError::UnknownChar`] for the first character not in the vocabulary.
    pub fn encode(&self, text: &str) -> Result<Vec<usize>> {
        text.chars()
            .enumerate()
            .map(|(position, ch)| {
                self.id_of(ch)
                    .ok_or(DataError::UnknownChar { ch, position })
            })
            .collect()
    }

    /// Decodes ids to text.
    ///
    /// # Errors
    /// [`DataError::UnknownId`] for the first id `>= len()`.
    pub fn decode(&self, ids: &[usize]) -> Result<String> {
        ids.iter()
            .map(|&id| {
                self.char_of(id).ok_or(DataError::UnknownId {
                    id,
                    vocab_size: self.len(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sorted_distinct_and_unicode() {
        let v = CharVocabulary::from_text("bañana\n").unwrap();
        assert_eq!(v.chars(), ['\n', 'a', 'b', 'n', 'ñ']);
        assert_eq!(v.id_of('ñ'), Some(4));
        assert_eq!(v.id_of('z'), None);
        assert_eq!(v.id_of('é'), None);
        assert!(matches!(
            v.encode("abz"),
            Err(DataError::UnknownChar {
                ch: 'z',
                position: 2
            })
        ));
        assert!(matches!(
            v.decode(&[5]),
            Err(DataError::UnknownId {
                id: 5,
                vocab_size: 5
            })
        ));
        assert!(matches!(
            CharVocabulary::from_text(""),
            Err(DataError::Empty { .. })
        ));
    }

    #[test]
    fn serde_round_trip_and_validation() {
        let v = CharVocabulary::from_text("hello, wörld").unwrap();
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(
            json,
            r#"{"chars":" ,dehlorw\u00f6"}"#.replace("\\u00f6", "ö")
        );
        let back: CharVocabulary = serde_json::from_str(&json).unwrap();
        assert_eq!(back, v);
        assert!(serde_json::from_str::<CharVocabulary>(r#"{"chars":"ba"}"#).is_err());
        assert!(serde_json::from_str::<CharVocabulary>(r#"{"chars":"aa"}"#).is_err());
        assert!(serde_json::from_str::<CharVocabulary>(r#"{"chars":""}"#).is_err());
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(text in "\\PC{1,200}|[\\s\\S]{1,200}") {
            let v = CharVocabulary::from_text(&text).unwrap();
            let ids = v.encode(&text).unwrap();
            prop_assert!(ids.iter().all(|&id| id < v.len()));
            prop_assert_eq!(v.decode(&ids).unwrap(), text);
        }
    }
}
