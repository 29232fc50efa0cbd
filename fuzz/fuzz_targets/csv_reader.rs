//! The corpus readers on arbitrary bytes: any input gives `Ok` or `Err`, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use recur_data::{reddit_csv_from_reader, Corpus, CorpusFormat};

fuzz_target!(|data: &[u8]| {
    if let Ok(bodies) = reddit_csv_from_reader(data) {
        assert!(!bodies.is_empty(), "an Ok corpus has at least one record");
    }
    if let Ok(corpus) = Corpus::from_reader(data, CorpusFormat::PlainText) {
        assert!(corpus.documents().iter().all(|d| !d.trim().is_empty()));
    }
});
