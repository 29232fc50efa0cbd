//! The error type of `recur-data`.

use std::path::PathBuf;

/// `Result` with this crate's [`DataError`].
pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// Why reading, tokenising, encoding or batching data failed.
///
/// Sources that are not files (strings, readers) are reported with a placeholder path such
/// as `<memory>` so every variant can say where the data came from.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A file could not be opened or read (including text that is not valid UTF-8).
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file that failed.
        path: PathBuf,
        /// What the operating system reported.
        #[source]
        source: std::io::Error,
    },
    /// The CSV data is malformed: invalid UTF-8 in a record, or a record with a different
    /// number of fields than the header.
    #[error("malformed CSV in {} ({}): {source}", path.display(), position(*.record, *.line))]
    Csv {
        /// The file (or placeholder) being parsed.
        path: PathBuf,
        /// Zero-based record index (the header is record 0), when known.
        record: Option<u64>,
        /// One-based physical line where the record starts, when known.
        line: Option<u64>,
        /// The parser's own description.
        #[source]
        source: csv::Error,
    },
    /// A quoted CSV field is still open at the end of the input, so every line after its
    /// opening quote would have been merged into that one field.
    #[error(
        "malformed CSV in {} (record {record}, line {line}): the quoted field opened at byte \
         {offset} is never closed, so the rest of the file would merge into one field; close \
         the quote (a quote inside a quoted field is written \"\"), or read the file with \
         CsvQuotes::Lenient to keep the merged field",
        path.display()
    )]
    UnterminatedQuote {
        /// The file (or placeholder) being parsed.
        path: PathBuf,
        /// Zero-based record index of the record holding the field (the header is record 0).
        record: u64,
        /// One-based physical line where that record starts.
        line: u64,
        /// Zero-based byte offset of the opening quote.
        offset: u64,
    },
    /// The CSV header does not name the column the reader needs.
    #[error(
        "{} has no `{column}` column (header: {header:?}); the reddit format needs a header \
         line naming a `{column}` column",
        path.display()
    )]
    MissingColumn {
        /// The file (or placeholder) being parsed.
        path: PathBuf,
        /// The column that was looked for.
        column: &'static str,
        /// The header fields that were found.
        header: Vec<String>,
    },
    /// There was nothing to work on: an empty corpus, text, sentence list or batch.
    #[error("nothing to work on: {what} is empty")]
    Empty {
        /// What was empty, e.g. `"corpus <memory>"`.
        what: String,
    },
    /// A token that the vocabulary does not contain (strict encoding only; the lenient
    /// encoder maps it to the unknown token instead).
    #[error("token {token:?} is not in the vocabulary; use `encode` to map it to UNKNOWN_TOKEN")]
    UnknownToken {
        /// The token.
        token: String,
    },
    /// A character that the character vocabulary does not contain.
    #[error("character {ch:?} at char index {position} is not in the character vocabulary")]
    UnknownChar {
        /// The character.
        ch: char,
        /// Its index (in characters, not bytes) in the encoded text.
        position: usize,
    },
    /// An id that is not below the vocabulary size.
    #[error("id {id} is out of range for a vocabulary of {vocab_size}")]
    UnknownId {
        /// The id.
        id: usize,
        /// The size of the vocabulary.
        vocab_size: usize,
    },
    /// A bit vector held something that is neither 0 nor 1 (or a NaN prediction).
    #[error("bit {position} is {value}, which is not a bit (expected 0 or 1)")]
    InvalidBit {
        /// The bit's index, least significant first.
        position: usize,
        /// The offending value, formatted.
        value: String,
    },
    /// A setting (or deserialised data) is outside its valid range.
    #[error("invalid {name}: {reason}")]
    InvalidConfig {
        /// The setting, as named in the API.
        name: &'static str,
        /// Why it is invalid and what is allowed.
        reason: String,
    },
}

fn position(record: Option<u64>, line: Option<u64>) -> String {
    match (record, line) {
        (Some(r), Some(l)) => format!("record {r}, line {l}"),
        (Some(r), None) => format!("record {r}"),
        (None, Some(l)) => format!("line {l}"),
        (None, None) => "position unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_what_went_wrong() {
        let e = DataError::MissingColumn {
            path: PathBuf::from("x.csv"),
            column: "body",
            header: vec!["id".into()],
        };
        let msg = e.to_string();
        assert!(msg.contains("x.csv") && msg.contains("`body`"), "{msg}");
        assert_eq!(position(Some(3), Some(7)), "record 3, line 7");
        assert_eq!(position(None, None), "position unknown");
    }
}
