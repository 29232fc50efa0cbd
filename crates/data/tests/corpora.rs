//! Integration tests on the real corpora in `../shared/data/` (next to the workspace).
//!
//! These files are not part of the repository; CI provides the folder. A missing file is a
//! test failure with a message saying where the file was expected.

use std::path::PathBuf;

use recur_data::{
    drop_short_sentences, read_reddit_csv, read_text, tokenize_documents, training_pairs,
    CharVocabulary, Corpus, CorpusFormat, Vocabulary, SENTENCE_END, SENTENCE_START, UNKNOWN_TOKEN,
};

const REDDIT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/reddit-comments-2015-08.csv"
);
const SHAKESPEARE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/tinyshakespeare.txt"
);

fn shared_file(path: &str) -> PathBuf {
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "missing data file {}: these tests need the shared data folder `../shared/data/` \
         beside the workspace root (see its README)",
        path.display()
    );
    path
}

#[test]
fn reddit_excerpt_has_211_comments() {
    let bodies = read_reddit_csv(shared_file(REDDIT)).unwrap();
    assert_eq!(bodies.len(), 211);
    assert!(bodies[0].starts_with("I joined a new league this year"));
    // Records span lines: the README counts 137 bodies with embedded newlines.
    assert_eq!(bodies.iter().filter(|b| b.contains('\n')).count(), 137);
    // Bodies are 202 to 2,402 characters long (README), so no record was split or merged.
    let lengths: Vec<usize> = bodies.iter().map(|b| b.chars().count()).collect();
    assert_eq!(lengths.iter().min(), Some(&202));
    assert_eq!(lengths.iter().max(), Some(&2402));
    assert_eq!(lengths.iter().sum::<usize>(), 105_617);

    let corpus = Corpus::read(shared_file(REDDIT)).unwrap();
    assert_eq!(corpus.format(), CorpusFormat::RedditCsv);
    assert_eq!(corpus.documents(), bodies);
}

#[test]
fn reddit_first_sentence_matches_the_tutorial() {
    let bodies = read_reddit_csv(shared_file(REDDIT)).unwrap();
    let sentences = tokenize_documents(&bodies[..1]);
    // The tutorial's first sentence, "i joined a new league this year and they have
    // different scoring rules than i'm used to.", except that "i'm" stays one token.
    let expected: Vec<&str> = [SENTENCE_START]
        .into_iter()
        .chain(
            "i joined a new league this year and they have different scoring rules than i'm \
             used to ."
                .split_whitespace(),
        )
        .chain([SENTENCE_END])
        .collect();
    assert_eq!(sentences[0], expected);
}

#[test]
fn reddit_vocabulary_report_is_consistent() {
    let bodies = read_reddit_csv(shared_file(REDDIT)).unwrap();
    let sentences = tokenize_documents(&bodies);
    let (vocab, report) = Vocabulary::build(&sentences, 2000).unwrap();
    println!("{report}");
    println!("{report:?}");

    let mut counts = std::collections::HashMap::<&str, usize>::new();
    for token in sentences.iter().flatten() {
        *counts.entry(token).or_default() += 1;
    }
    assert_eq!(report.sentences, sentences.len());
    assert!(
        report.sentences > bodies.len(),
        "comments hold several sentences"
    );
    assert_eq!(report.tokens, sentences.iter().map(Vec::len).sum::<usize>());
    assert_eq!(report.unique_tokens, counts.len());
    assert!(report.unique_tokens > 2000, "{}", report.unique_tokens);
    // README: about 24K tokens and 4.3K types (without sentence markers).
    assert!((20_000..30_000).contains(&(report.tokens - 2 * report.sentences)));
    assert!((3_500..5_000).contains(&report.unique_tokens));

    assert_eq!(vocab.len(), 2000);
    assert_eq!(report.vocabulary_size, 2000);
    // Every id but UNKNOWN_TOKEN is a token seen in the corpus.
    assert_eq!(report.kept, 1999);
    let (least, least_count) = &report.least_frequent_kept;
    assert_eq!(vocab.id_of(least), Some(1999));
    assert_eq!(counts[least.as_str()], *least_count);
    for (word, &count) in &counts {
        if vocab.id_of(word).is_none() {
            assert!(count <= *least_count, "{word:?} ({count}) was dropped");
            // Ties at the cut go to the lexicographically smaller word.
            if count == *least_count {
                assert!(*word > least.as_str());
            }
        }
    }
    let kept_occurrences: usize = vocab.words()[1..].iter().map(|w| counts[w.as_str()]).sum();
    assert_eq!(report.replaced, report.tokens - kept_occurrences);

    let encoded = vocab.encode_sentences(&sentences);
    let unknown = encoded.iter().flatten().filter(|&&id| id == 0).count();
    assert_eq!(unknown, report.replaced);
    assert_eq!(vocab.word_of(0), Some(UNKNOWN_TOKEN));

    let pairs = training_pairs(&encoded);
    assert_eq!(pairs.len(), sentences.len());
    let long = drop_short_sentences(sentences.clone(), 5);
    assert!(long.len() < sentences.len() && !long.is_empty());
}

#[test]
fn tiny_shakespeare_has_65_characters() {
    let text = read_text(shared_file(SHAKESPEARE)).unwrap();
    assert_eq!(text.len(), 1_115_394);
    assert_eq!(text.chars().count(), 1_115_394);
    let vocab = CharVocabulary::from_text(&text).unwrap();
    assert_eq!(vocab.len(), 65);
    let expected: String = "\n !$&',-.3:;?"
        .chars()
        .chain('A'..='Z')
        .chain('a'..='z')
        .collect();
    assert_eq!(vocab.chars().iter().collect::<String>(), expected);
    let ids = vocab.encode(&text).unwrap();
    assert_eq!(ids.len(), 1_115_394);
    assert_eq!(vocab.decode(&ids).unwrap(), text);
}

#[test]
fn tiny_shakespeare_as_documents_and_words() {
    let corpus = Corpus::read(shared_file(SHAKESPEARE)).unwrap();
    assert_eq!(corpus.format(), CorpusFormat::PlainText);
    assert!(corpus.documents()[0].starts_with("First Citizen:\nBefore we proceed"));
    let sentences = tokenize_documents(corpus.documents());
    let (vocab, report) = Vocabulary::build(&sentences, 8000).unwrap();
    println!("{report}");
    assert_eq!(vocab.len(), 8000);
    // README: 202,651 whitespace-separated words; punctuation adds tokens.
    assert!(report.tokens - 2 * report.sentences > 202_651);
}
