//! Reading corpora: the reddit-comments CSV format and plain text.
//!
//! A corpus is a list of *documents* (strings). In the CSV format a document is the `body`
//! field of one record; in plain text it is one paragraph (a run of non-blank lines).

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};

/// The column the reddit-comments CSV format keeps its text in.
pub const BODY_COLUMN: &str = "body";

/// Placeholder path used in errors about in-memory strings.
const MEMORY: &str = "<memory>";
/// Placeholder path used in errors about readers.
const READER: &str = "<reader>";

/// How a corpus is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CorpusFormat {
    /// CSV with a header naming a `body` column (RFC 4180 quoting, records may span lines);
    /// one document per record.
    RedditCsv,
    /// UTF-8 text; one document per paragraph (paragraphs are separated by blank lines).
    PlainText,
}

impl CorpusFormat {
    /// Picks the format from a file name: `.csv` (any case) is [`CorpusFormat::RedditCsv`],
    /// anything else is [`CorpusFormat::PlainText`].
    ///
    /// ```
    /// use recur_data::CorpusFormat;
    /// assert_eq!(CorpusFormat::from_path("comments.CSV"), CorpusFormat::RedditCsv);
    /// assert_eq!(CorpusFormat::from_path("input.txt"), CorpusFormat::PlainText);
    /// assert_eq!(CorpusFormat::from_path("README"), CorpusFormat::PlainText);
    /// ```
    pub fn from_path(path: impl AsRef<Path>) -> Self {
        match path.as_ref().extension() {
            Some(ext) if ext.eq_ignore_ascii_case("csv") => Self::RedditCsv,
            _ => Self::PlainText,
        }
    }
}

/// A list of documents and the format they were read from.
///
/// ```
/// use recur_data::{Corpus, CorpusFormat};
///
/// let corpus = Corpus::from_text("body\n\"one, two\"\nthree\n", CorpusFormat::RedditCsv)?;
/// assert_eq!(corpus.documents(), ["one, two", "three"]);
///
/// let corpus = Corpus::from_text("First line\nsecond line\n\nNext paragraph\n", CorpusFormat::PlainText)?;
/// assert_eq!(corpus.len(), 2);
/// # Ok::<(), recur_data::DataError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Corpus {
    format: CorpusFormat,
    documents: Vec<String>,
}

impl Corpus {
    /// Reads a file, choosing the format with [`CorpusFormat::from_path`].
    ///
    /// # Errors
    /// As [`Corpus::read_as`].
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Self::read_as(path, CorpusFormat::from_path(path))
    }

    /// Reads a file in the given format.
    ///
    /// # Errors
    /// [`DataError::Io`] if the file cannot be read or is not UTF-8; for CSV, the errors of
    /// [`read_reddit_csv`]; [`DataError::Empty`] if there is no document.
    pub fn read_as(path: impl AsRef<Path>, format: CorpusFormat) -> Result<Self> {
        let path = path.as_ref();
        let documents = match format {
            CorpusFormat::RedditCsv => read_reddit_csv(path)?,
            CorpusFormat::PlainText => split_paragraphs(&read_text(path)?),
        };
        Self::new(format, documents, path)
    }

    /// Parses an in-memory string (for embedded corpora, tests and fuzzing).
    ///
    /// # Errors
    /// For CSV, the errors of [`reddit_csv_from_str`]; [`DataError::Empty`] if there is no
    /// document.
    pub fn from_text(text: &str, format: CorpusFormat) -> Result<Self> {
        let documents = match format {
            CorpusFormat::RedditCsv => reddit_csv_from_str(text)?,
            CorpusFormat::PlainText => split_paragraphs(text),
        };
        Self::new(format, documents, Path::new(MEMORY))
    }

    /// Reads everything from `reader` and parses it.
    ///
    /// # Errors
    /// [`DataError::Io`] (with the path `<reader>`) if reading fails or plain text is not
    /// UTF-8; for CSV, the errors of [`reddit_csv_from_reader`]; [`DataError::Empty`] if
    /// there is no document.
    pub fn from_reader(reader: impl Read, format: CorpusFormat) -> Result<Self> {
        let path = Path::new(READER);
        let documents = match format {
            CorpusFormat::RedditCsv => parse_reddit_csv(reader, path, CsvQuotes::Strict)?,
            CorpusFormat::PlainText => split_paragraphs(&read_all(reader, path)?),
        };
        Self::new(format, documents, path)
    }

    fn new(format: CorpusFormat, documents: Vec<String>, path: &Path) -> Result<Self> {
        if documents.is_empty() {
            return Err(DataError::Empty {
                what: format!("corpus {}", path.display()),
            });
        }
        Ok(Self { format, documents })
    }

    /// The format the documents were read from.
    pub fn format(&self) -> CorpusFormat {
        self.format
    }

    /// The documents, in file order.
    pub fn documents(&self) -> &[String] {
        &self.documents
    }

    /// Takes the documents out.
    pub fn into_documents(self) -> Vec<String> {
        self.documents
    }

    /// Number of documents (never zero).
    pub fn len(&self) -> usize {
        self.documents.len()
    }

    /// Always `false`: constructing an empty corpus is an error.
    pub fn is_empty(&self) -> bool {
        self.documents.is_empty()
    }
}

/// What the CSV reader does with a quoted field that is still open at the end of the input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CsvQuotes {
    /// Refuse the input with [`DataError::UnterminatedQuote`] (the default): a missing
    /// closing quote would otherwise merge every following record into one field.
    #[default]
    Strict,
    /// Accept it: the open field runs to the end of the input, as a lone record.
    Lenient,
}

/// Reads the `body` field of every record of a reddit-comments CSV file.
///
/// The header must contain a `body` column (other columns are allowed and ignored). Quoting
/// follows RFC 4180, so a record may span several physical lines. Bodies are returned
/// unchanged (no trimming, HTML entities left escaped). A quoted field left open at the end
/// of the file is an error ([`CsvQuotes::Strict`]); see [`read_reddit_csv_with`].
///
/// # Errors
/// [`DataError::Io`] if the file cannot be read; [`DataError::UnterminatedQuote`] (with
/// the record and the byte offset of the opening quote) if a quoted field is never closed;
/// [`DataError::Csv`] for malformed records (invalid UTF-8, wrong field count);
/// [`DataError::MissingColumn`] if the header has no `body`; [`DataError::Empty`] if the
/// file is empty or has no record.
pub fn read_reddit_csv(path: impl AsRef<Path>) -> Result<Vec<String>> {
    read_reddit_csv_with(path, CsvQuotes::Strict)
}

/// [`read_reddit_csv`] with an explicit treatment of unterminated quotes.
///
/// # Errors
/// As [`read_reddit_csv`]; [`CsvQuotes::Lenient`] never gives
/// [`DataError::UnterminatedQuote`].
pub fn read_reddit_csv_with(path: impl AsRef<Path>, quotes: CsvQuotes) -> Result<Vec<String>> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_reddit_csv(io::BufReader::new(file), path, quotes)
}

/// [`read_reddit_csv`] on an in-memory string.
///
/// ```
/// let bodies = recur_data::reddit_csv_from_str("id,body\n1,\"Said \"\"hi\"\"\nthen left\"\n")?;
/// assert_eq!(bodies, ["Said \"hi\"\nthen left"]);
/// # Ok::<(), recur_data::DataError>(())
/// ```
///
/// # Errors
/// As [`read_reddit_csv`], with the path `<memory>`.
pub fn reddit_csv_from_str(text: &str) -> Result<Vec<String>> {
    parse_reddit_csv(text.as_bytes(), Path::new(MEMORY), CsvQuotes::Strict)
}

/// [`read_reddit_csv`] on any reader (arbitrary bytes are fine: bad input is an error,
/// never a panic).
///
/// ```
/// let err = recur_data::reddit_csv_from_reader(&b"title\nhello\n"[..]).unwrap_err();
/// assert!(matches!(err, recur_data::DataError::MissingColumn { .. }));
/// ```
///
/// # Errors
/// As [`read_reddit_csv`], with the path `<reader>`.
pub fn reddit_csv_from_reader(reader: impl Read) -> Result<Vec<String>> {
    reddit_csv_from_reader_with(reader, CsvQuotes::Strict)
}

/// [`reddit_csv_from_reader`] with an explicit treatment of unterminated quotes.
///
/// ```
/// use recur_data::{reddit_csv_from_reader_with, CsvQuotes, DataError};
///
/// let text = b"id,body\n1,\"never closed\n2,next\n";
/// let err = reddit_csv_from_reader_with(&text[..], CsvQuotes::Strict).unwrap_err();
/// assert!(matches!(err, DataError::UnterminatedQuote { record: 1, offset: 10, .. }));
/// let merged = reddit_csv_from_reader_with(&text[..], CsvQuotes::Lenient)?;
/// assert_eq!(merged, ["never closed\n2,next\n"]);
/// # Ok::<(), DataError>(())
/// ```
///
/// # Errors
/// As [`read_reddit_csv_with`], with the path `<reader>`.
pub fn reddit_csv_from_reader_with(reader: impl Read, quotes: CsvQuotes) -> Result<Vec<String>> {
    parse_reddit_csv(reader, Path::new(READER), quotes)
}

fn parse_reddit_csv(mut reader: impl Read, path: &Path, quotes: CsvQuotes) -> Result<Vec<String>> {
    // The whole input is needed anyway (every body is kept), and holding its bytes lets the
    // quote check run before the parser, whose errors on a merged record would mislead.
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if quotes == CsvQuotes::Strict {
        if let Some(open) = unterminated_quote(&bytes) {
            return Err(DataError::UnterminatedQuote {
                path: path.to_path_buf(),
                record: open.record,
                line: open.line,
                offset: open.offset,
            });
        }
    }
    // Defaults are RFC 4180: `"` quoting with `""` escapes, multi-line fields, and a fixed
    // field count per record (a ragged record is an error rather than a silent shift).
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes.as_slice());
    let header = csv.headers().map_err(|e| csv_error(e, path))?;
    if header.is_empty() {
        return Err(DataError::Empty {
            what: format!("CSV {}", path.display()),
        });
    }
    let column = header
        .iter()
        .position(|field| field.trim() == BODY_COLUMN)
        .ok_or_else(|| DataError::MissingColumn {
            path: path.to_path_buf(),
            column: BODY_COLUMN,
            header: header.iter().map(str::to_owned).collect(),
        })?;
    let mut bodies = Vec::new();
    for record in csv.records() {
        let record = record.map_err(|e| csv_error(e, path))?;
        // Every record has the header's field count (checked by the parser above).
        bodies.push(record.get(column).unwrap_or_default().to_owned());
    }
    if bodies.is_empty() {
        return Err(DataError::Empty {
            what: format!("CSV {} (header only)", path.display()),
        });
    }
    Ok(bodies)
}

/// Where a quoted field that is never closed begins.
#[derive(Debug, PartialEq, Eq)]
struct OpenQuote {
    record: u64,
    line: u64,
    offset: u64,
}

/// Scans CSV bytes with the parser's quoting rules (`"` opens a quoted field only at the
/// start of a field, `""` inside one is a literal quote, `\r`, `\n` or `\r\n` end a record
/// and blank lines are skipped) and reports a quoted field still open at the end.
fn unterminated_quote(bytes: &[u8]) -> Option<OpenQuote> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        RecordStart,
        FieldStart,
        Unquoted,
        Quoted,
        QuoteInQuoted,
    }
    let mut state = State::RecordStart;
    let (mut record, mut line, mut record_line) = (0_u64, 1_u64, 1_u64);
    let mut open = 0_u64;
    // The parser drops a leading byte-order mark.
    let start = if bytes.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    for (offset, &byte) in bytes.iter().enumerate().skip(start) {
        let is_end = byte == b'\n' || byte == b'\r';
        if byte == b'\n' {
            line += 1;
        }
        state = match (state, byte) {
            (State::Quoted, b'"') => State::QuoteInQuoted,
            (State::Quoted, _) => State::Quoted,
            (State::QuoteInQuoted, b'"') => State::Quoted,
            (State::RecordStart, _) if is_end => State::RecordStart,
            (_, _) if is_end => {
                record += 1;
                State::RecordStart
            }
            (State::RecordStart | State::FieldStart, b'"') => {
                if state == State::RecordStart {
                    record_line = line;
                }
                open = offset as u64;
                State::Quoted
            }
            (State::RecordStart, _) => {
                record_line = line;
                if byte == b',' {
                    State::FieldStart
                } else {
                    State::Unquoted
                }
            }
            (_, b',') => State::FieldStart,
            (_, _) => State::Unquoted,
        };
    }
    (state == State::Quoted).then_some(OpenQuote {
        record,
        line: record_line,
        offset: open,
    })
}

fn csv_error(error: csv::Error, path: &Path) -> DataError {
    if let csv::ErrorKind::Io(source) = error.kind() {
        // Re-created rather than moved out, so no branch can fail to match.
        return DataError::Io {
            path: path.to_path_buf(),
            source: io::Error::new(source.kind(), source.to_string()),
        };
    }
    let (record, line) = error
        .position()
        .map_or((None, None), |p| (Some(p.record()), Some(p.line())));
    DataError::Csv {
        path: path.to_path_buf(),
        record,
        line,
        source: error,
    }
}

/// Reads a whole UTF-8 text file (for the character-level model, which wants the text as
/// one sequence; use [`split_paragraphs`] or [`Corpus::read`] for documents).
///
/// # Errors
/// [`DataError::Io`] if the file cannot be read or is not valid UTF-8.
pub fn read_text(path: impl AsRef<Path>) -> Result<String> {
    let path = path.as_ref();
    std::fs::read_to_string(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn read_all(mut reader: impl Read, path: &Path) -> Result<String> {
    let mut text = String::new();
    reader
        .read_to_string(&mut text)
        .map_err(|source| DataError::Io {
            path: PathBuf::from(path),
            source,
        })?;
    Ok(text)
}

/// Splits text into paragraphs: runs of lines that are not blank (whitespace only).
///
/// Lines inside a paragraph are joined with `\n`; `\r\n` line ends are accepted.
///
/// ```
/// let paragraphs = recur_data::split_paragraphs("a\r\nb\n \n\n\nc\n");
/// assert_eq!(paragraphs, ["a\nb", "c"]);
/// ```
pub fn split_paragraphs(text: &str) -> Vec<String> {
    let mut paragraphs = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                paragraphs.push(std::mem::take(&mut current));
            }
        } else {
            if !current.is_empty() {
                current.push('\n');
            }
            current.push_str(line);
        }
    }
    if !current.is_empty() {
        paragraphs.push(current);
    }
    paragraphs
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn multi_line_quoted_records_and_escaped_quotes() {
        let text = "body\n\"first line\n\nthird, with comma\"\n\"a \"\"quote\"\"\"\nplain\n";
        let bodies = reddit_csv_from_str(text).unwrap();
        assert_eq!(
            bodies,
            ["first line\n\nthird, with comma", "a \"quote\"", "plain"]
        );
    }

    #[test]
    fn body_column_may_be_anywhere() {
        let bodies = reddit_csv_from_str("id,body,score\n1,hello,3\n2,\"x\ny\",4\n").unwrap();
        assert_eq!(bodies, ["hello", "x\ny"]);
    }

    #[test]
    fn utf8_bom_is_not_part_of_the_header() {
        let bodies = reddit_csv_from_str("\u{feff}body\nhi\n").unwrap();
        assert_eq!(bodies, ["hi"]);
    }

    #[test]
    fn missing_column_empty_and_ragged_are_errors() {
        match reddit_csv_from_str("title\nx\n") {
            Err(DataError::MissingColumn { header, .. }) => assert_eq!(header, ["title"]),
            other => panic!("expected MissingColumn, got {other:?}"),
        }
        assert!(matches!(
            reddit_csv_from_str(""),
            Err(DataError::Empty { .. })
        ));
        assert!(matches!(
            reddit_csv_from_str("body\n"),
            Err(DataError::Empty { .. })
        ));
        match reddit_csv_from_str("id,body\n1,a\n2,b,extra\n") {
            Err(DataError::Csv { record, line, .. }) => {
                assert_eq!(record, Some(2));
                assert_eq!(line, Some(3));
            }
            other => panic!("expected Csv error, got {other:?}"),
        }
    }

    #[test]
    fn invalid_utf8_is_a_csv_error() {
        let err = reddit_csv_from_reader(&b"body\n\xff\xfe\n"[..]).unwrap_err();
        assert!(matches!(err, DataError::Csv { .. }), "{err:?}");
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = Corpus::read("/definitely/not/here.csv").unwrap_err();
        assert!(
            err.to_string().contains("/definitely/not/here.csv"),
            "{err}"
        );
        assert!(matches!(err, DataError::Io { .. }));
    }

    #[test]
    fn format_from_extension() {
        assert_eq!(CorpusFormat::from_path("a/b.csv"), CorpusFormat::RedditCsv);
        assert_eq!(
            CorpusFormat::from_path("a.csv.txt"),
            CorpusFormat::PlainText
        );
        assert_eq!(CorpusFormat::from_path("csv"), CorpusFormat::PlainText);
    }

    #[test]
    fn plain_text_paragraphs_and_reader() {
        let corpus = Corpus::from_reader(
            &b"\n\nOne.\nTwo.\n\n\t\nThree."[..],
            CorpusFormat::PlainText,
        )
        .unwrap();
        assert_eq!(corpus.documents(), ["One.\nTwo.", "Three."]);
        assert_eq!(corpus.format(), CorpusFormat::PlainText);
        assert!(matches!(
            Corpus::from_text(" \n\n", CorpusFormat::PlainText),
            Err(DataError::Empty { .. })
        ));
    }

    proptest! {
        #[test]
        fn csv_reader_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = reddit_csv_from_reader(&bytes[..]);
            let _ = Corpus::from_reader(&bytes[..], CorpusFormat::PlainText);
        }

        #[test]
        fn csv_reader_never_panics_on_csvish_text(text in "(body|id|,|\"|\n|\r|a| |b)*") {
            let _ = reddit_csv_from_str(&text);
        }

        #[test]
        fn quoted_bodies_round_trip(bodies in proptest::collection::vec("\\PC*", 1..8)) {
            let mut text = String::from("body\n");
            for body in &bodies {
                text.push('"');
                text.push_str(&body.replace('"', "\"\""));
                text.push_str("\"\n");
            }
            prop_assert_eq!(reddit_csv_from_str(&text).unwrap(), bodies);
        }
    }
}
