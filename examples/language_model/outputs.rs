//! What a run leaves behind besides its checkpoints: the CSV log of its evaluations, the
//! exported weights with their vocabulary, and the closing note of where everything went.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use recur::prelude::*;
use recur::{LossLog, RunState};
use serde::Serialize;

use super::config::{Config, Level};
use super::network::Shape;
use super::text::Vocab;
use super::BoxError;

/// The log of `--log`, holding the evaluations a resumed run made before, so the file
/// covers the whole run; `None` without `--log`.
///
/// # Errors
/// The file cannot be created or written.
pub fn open_log(
    config: &Config,
    run: &RunState,
) -> Result<Option<LossLog<BufWriter<File>>>, BoxError> {
    let Some(path) = &config.log else {
        return Ok(None);
    };
    create_parent(path)?;
    let file =
        File::create(path).map_err(|e| format!("cannot write the log {}: {e}", path.display()))?;
    let mut log = LossLog::new(BufWriter::new(file));
    for evaluation in &run.evaluations {
        log.record(evaluation)?;
    }
    Ok(Some(log))
}

/// Creates the folder `path` goes in, if it has one.
pub fn create_parent(path: &Path) -> Result<(), BoxError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    Ok(())
}

/// Where the vocabulary of weights exported to `path` goes: `NAME.vocab.json` beside
/// `NAME.safetensors`.
pub fn vocab_path(path: &Path) -> PathBuf {
    path.with_extension("vocab.json")
}

/// The vocabulary file: enough to turn ids into text and back without this program.
#[derive(Serialize)]
struct VocabFile<'a> {
    /// `word` or `char`.
    level: &'static str,
    /// The token of every id, in id order.
    tokens: Vec<String>,
    /// For words: the ids of the unknown, sentence-start and sentence-end tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    special: Option<[usize; 3]>,
    /// Cell, layers and hidden units.
    shape: &'a Shape,
}

/// Exports the weights as safetensors at `path` and the vocabulary beside them.
///
/// # Errors
/// The files cannot be written.
pub fn export<F: Float>(
    path: &Path,
    params: &dyn ParamSet<F>,
    vocab: &Vocab,
    shape: &Shape,
) -> Result<(), BoxError> {
    create_parent(path)?;
    recur::io::export_safetensors(params, path)?;
    let file = match vocab {
        Vocab::Words(v) => VocabFile {
            level: "word",
            tokens: v.words().to_vec(),
            special: Some([
                recur::data::Vocabulary::UNKNOWN_ID,
                recur::data::Vocabulary::SENTENCE_START_ID,
                recur::data::Vocabulary::SENTENCE_END_ID,
            ]),
            shape,
        },
        Vocab::Chars(v) => VocabFile {
            level: "char",
            tokens: v.chars().iter().map(char::to_string).collect(),
            special: None,
            shape,
        },
    };
    std::fs::write(vocab_path(path), serde_json::to_string_pretty(&file)?)?;
    Ok(())
}

/// Prints where the run's outputs went and how to train on from here.
pub fn announce(config: &Config, evaluations: &[recur::Evaluation]) {
    if config.quiet || config.generate_only {
        return;
    }
    let plotted = evaluations.len() >= 2;
    let epochs_done = evaluations.last().map_or(0, |e| e.epoch);
    let shown = |p: &Path| {
        std::path::absolute(p)
            .unwrap_or_else(|_| p.to_path_buf())
            .display()
            .to_string()
    };
    println!("\noutputs:");
    if plotted {
        println!("  loss curves  {}", shown(&config.plot));
    }
    if let Some(p) = &config.log {
        println!("  log (CSV)    {}", shown(p));
    }
    if let Some(p) = &config.save_best {
        println!("  best model   {}", shown(p));
    }
    if let Some(p) = &config.export {
        println!(
            "  weights      {} (vocabulary: {})",
            shown(p),
            shown(&vocab_path(p))
        );
    }
    let mut level = match config.level {
        Level::Char => String::new(),
        Level::Word => " --level word".to_owned(),
    };
    if let Some(corpus) = &config.corpus {
        level.push_str(&format!(" --corpus {}", shown(corpus)));
    }
    match &config.save {
        Some(p) => {
            println!("  checkpoint   {}", shown(p));
            println!(
                "continue training:\n  cargo run --release --example language_model --{level} --resume {} --save {} --epochs {}",
                shown(p),
                shown(p),
                epochs_done + config.epochs()
            );
        }
        None => println!(
            "no checkpoint kept; to keep the model and continue later, add --save FILE, then\n  cargo run --release --example language_model --{level} --resume FILE --save FILE --epochs {}",
            epochs_done + config.epochs()
        ),
    }
}
