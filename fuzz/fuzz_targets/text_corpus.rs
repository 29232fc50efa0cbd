//! The plain-text corpus reader on arbitrary bytes (invalid UTF-8 included): `Ok` or `Err`,
//! never a panic, and what it accepts agrees with the string entry points.

#![no_main]

use libfuzzer_sys::fuzz_target;
use recur_data::{split_paragraphs, CharVocabulary, Corpus, CorpusFormat, DataError};

fuzz_target!(|data: &[u8]| {
    let from_reader = Corpus::from_reader(data, CorpusFormat::PlainText);
    match std::str::from_utf8(data) {
        Err(_) => assert!(
            matches!(from_reader, Err(DataError::Io { .. })),
            "invalid UTF-8 must be an I/O error, got {from_reader:?}"
        ),
        Ok(text) => {
            let from_text = Corpus::from_text(text, CorpusFormat::PlainText);
            match (&from_reader, &from_text) {
                (Ok(a), Ok(b)) => assert_eq!(a, b),
                (Err(DataError::Empty { .. }), Err(DataError::Empty { .. })) => {}
                other => panic!("reader and string disagree: {other:?}"),
            }
            for paragraph in split_paragraphs(text) {
                assert!(!paragraph.trim().is_empty());
                assert!(paragraph.lines().all(|line| !line.trim().is_empty()));
            }
            if let Ok(chars) = CharVocabulary::from_text(text) {
                let ids = chars
                    .encode(text)
                    .expect("every character of the text is known");
                assert_eq!(chars.decode(&ids).expect("ids are in range"), text);
            }
        }
    }
});
