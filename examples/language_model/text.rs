//! The text a run learns from: the corpus (a file, or the embedded documentation), its
//! vocabulary, and the training and validation batches cut from it.

use recur::data::{self, CharVocabulary, Corpus, CorpusFormat, CsvQuotes, Vocabulary};
use recur::TokenBatches;
use serde::{Deserialize, Serialize};

use super::config::{Config, Level};
use super::BoxError;

/// recur's own documentation: the corpus used when no `--corpus` is given (about 63,000
/// characters of prose once code and tables are dropped).
const EMBEDDED_CORPUS: &[&str] = &[
    include_str!("../../README.md"),
    include_str!("../../docs/bptt.md"),
    include_str!("../../docs/architecture.md"),
    include_str!("../../docs/custom-cells.md"),
    include_str!("../../docs/lstm-gru.md"),
    include_str!("../../docs/truncation.md"),
    include_str!("../../docs/binary-addition.md"),
];

/// The vocabulary of either level; saved in checkpoints, so a resumed run encodes its text
/// the same way.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Vocab {
    /// Words, with the unknown, start and end tokens.
    Words(Vocabulary),
    /// The characters seen.
    Chars(Box<CharVocabulary>),
}

impl Vocab {
    /// Number of ids.
    pub fn len(&self) -> usize {
        match self {
            Vocab::Words(v) => v.len(),
            Vocab::Chars(v) => v.len(),
        }
    }

    /// Whether it has no ids (never, once built).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Training and validation data, disjoint by construction: validation is the tail.
#[derive(Debug)]
pub struct Split {
    /// Trained on.
    pub train: TokenBatches,
    /// Held out.
    pub valid: TokenBatches,
}

/// The documents of the corpus.
pub fn load(config: &Config) -> Result<Vec<String>, BoxError> {
    Ok(match &config.corpus {
        Some(path)
            if config.lenient && CorpusFormat::from_path(path) == CorpusFormat::RedditCsv =>
        {
            data::read_reddit_csv_with(path, CsvQuotes::Lenient)?
        }
        Some(path) => Corpus::read(path)?.into_documents(),
        None => EMBEDDED_CORPUS.iter().map(|doc| prose(doc)).collect(),
    })
}

/// The prose of a markdown file: code blocks, tables and markup dropped.
fn prose(markdown: &str) -> String {
    let mut out = String::new();
    let mut in_code = false;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code || trimmed.starts_with('|') || trimmed.starts_with("$$") {
            continue;
        }
        let text: String = trimmed
            .trim_start_matches(['#', '-', '>', '*', ' '])
            .chars()
            .filter(|c| !matches!(c, '`' | '*' | '_' | '[' | ']' | '$'))
            .collect();
        out.push_str(&text);
        out.push('\n');
    }
    out
}

/// Builds the vocabulary of `config.level` from the whole corpus.
pub fn vocabulary(config: &Config, documents: &[String]) -> Result<Vocab, BoxError> {
    Ok(match config.level {
        Level::Word => {
            let (vocab, report) = Vocabulary::build(&sentences(config, documents), config.vocab)?;
            if !config.quiet {
                println!("{report}");
            }
            Vocab::Words(vocab)
        }
        Level::Char => Vocab::Chars(Box::new(CharVocabulary::from_text(
            &documents.join("\n\n"),
        )?)),
    })
}

fn sentences(config: &Config, documents: &[String]) -> Vec<Vec<String>> {
    data::drop_short_sentences(data::tokenize_documents(documents), config.min_words)
}

/// Characters per streamed piece of training text: the points where a character-level
/// run can stop and resume.
const PIECE: usize = 10_000;

/// Characters per validation piece (each evaluated with the state carried on).
const VALID_PIECE: usize = 2_000;

/// Encodes the corpus with `vocab` and splits it: the last `valid_fraction` of the
/// sentences (or of the text) for validation, the rest, shuffled per epoch, for training.
pub fn split(config: &Config, documents: &[String], vocab: &Vocab) -> Result<Split, BoxError> {
    if !(0.0..1.0).contains(&config.valid_fraction) {
        return Err(format!(
            "--valid-fraction {} is not in [0, 1): keep some data for training",
            config.valid_fraction
        )
        .into());
    }
    let held_out = |n: usize| ((n as f64 * config.valid_fraction).round() as usize).min(n);
    match vocab {
        Vocab::Words(v) => {
            let ids = v.encode_sentences(&sentences(config, documents));
            let mut pairs = data::training_pairs(&ids);
            if let Some(limit) = config.limit {
                pairs.truncate(limit);
            }
            let valid = pairs.split_off(pairs.len() - held_out(pairs.len()));
            if pairs.is_empty() {
                return Err("the corpus has no sentence to train on".into());
            }
            Ok(Split {
                train: TokenBatches::sentences(pairs)?
                    .batch_size(config.batch)?
                    .shuffled(config.data_seed()),
                valid: TokenBatches::sentences(valid)?,
            })
        }
        Vocab::Chars(v) => {
            let mut text = documents.join("\n\n");
            if let Some(limit) = config.limit {
                text = text.chars().take(limit).collect();
            }
            let mut ids = v.encode(&text)?;
            let valid = ids.split_off(ids.len() - held_out(ids.len()));
            if ids.len() < 2 {
                return Err("the corpus has fewer than two characters to train on".into());
            }
            let pieces = |n: usize, size: usize| (n - 1).div_ceil(size).max(1);
            let valid = if valid.len() >= 2 {
                TokenBatches::stream(valid.clone(), pieces(valid.len(), VALID_PIECE))?
            } else {
                TokenBatches::sentences(Vec::new())?
            };
            Ok(Split {
                train: TokenBatches::stream(ids.clone(), pieces(ids.len(), PIECE))?,
                valid,
            })
        }
    }
}
