//! A quoted CSV field that is never closed is refused instead of swallowing the records
//! after it.

use std::path::PathBuf;

use recur_data::{
    read_reddit_csv, read_reddit_csv_with, reddit_csv_from_reader, reddit_csv_from_reader_with,
    reddit_csv_from_str, Corpus, CorpusFormat, CsvQuotes, DataError,
};

const UNCLOSED: &str = "id,body\n1,first\n2,\"opened here\n3,third\n4,fourth\n";

fn unterminated(err: &DataError) -> (u64, u64, u64) {
    match err {
        DataError::UnterminatedQuote {
            record,
            line,
            offset,
            ..
        } => (*record, *line, *offset),
        other => panic!("expected an unterminated quote, got {other:?}"),
    }
}

#[test]
fn an_unterminated_quote_names_the_record_and_byte_offset() {
    let err = reddit_csv_from_str(UNCLOSED).unwrap_err();
    let offset = UNCLOSED.find('"').unwrap() as u64;
    assert_eq!(unterminated(&err), (2, 3, offset));
    let message = err.to_string();
    for part in [
        "<memory>",
        "record 2",
        "line 3",
        &format!("byte {offset}"),
        "Lenient",
    ] {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }

    // Every entry point refuses it, and so does a corpus.
    assert!(reddit_csv_from_reader(UNCLOSED.as_bytes()).is_err());
    assert!(Corpus::from_text(UNCLOSED, CorpusFormat::RedditCsv).is_err());
    assert!(Corpus::from_reader(UNCLOSED.as_bytes(), CorpusFormat::RedditCsv).is_err());
}

#[test]
fn a_file_with_an_unterminated_quote_is_refused_with_its_path() {
    let dir = std::env::temp_dir().join(format!("recur-data-quotes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join("comments.csv");
    std::fs::write(&path, UNCLOSED).unwrap();
    let err = read_reddit_csv(&path).unwrap_err();
    assert!(err.to_string().contains("comments.csv"), "{err}");
    assert_eq!(unterminated(&err).0, 2);
    let lenient = read_reddit_csv_with(&path, CsvQuotes::Lenient).unwrap();
    assert_eq!(lenient, ["first", "opened here\n3,third\n4,fourth\n"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn lenient_keeps_the_merged_record() {
    let bodies = reddit_csv_from_reader_with(UNCLOSED.as_bytes(), CsvQuotes::Lenient).unwrap();
    assert_eq!(bodies.len(), 2);
    assert_eq!(CsvQuotes::default(), CsvQuotes::Strict);
}

#[test]
fn closed_quotes_of_every_kind_are_accepted() {
    for (text, expected) in [
        ("body\n\"a, \"\"b\"\"\nc\"\n", vec!["a, \"b\"\nc"]),
        ("body\r\n\"x\"\r\n\r\ny\r\n", vec!["x", "y"]),
        ("\u{feff}\"body\"\n\"\"\n", vec![""]),
        (
            "id,body\n1,say \"hi\"\n2,\"q\"\"\"\n",
            vec!["say \"hi\"", "q\""],
        ),
        ("body\n\"\"\"\"\n", vec!["\""]),
    ] {
        let bodies = reddit_csv_from_str(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(bodies, expected, "{text:?}");
    }
}

#[test]
fn unterminated_quotes_anywhere_are_found() {
    for (text, record, offset) in [
        ("body\n\"", 1, 5),
        ("body\n\"a\"\"", 1, 5),
        ("body\nok\n\n\n\"never", 2, 10),
        ("id,body\n1,\"x\"\n2,\"y\n", 2, 16),
        ("\"body\n", 0, 0),
    ] {
        let err = reddit_csv_from_str(text).unwrap_err();
        let (r, _, o) = unterminated(&err);
        assert_eq!((r, o), (record, offset), "{text:?}");
    }
}
