//! Checks made before any training: every output path can be written, and a resume agrees
//! with its checkpoint, which decides everything that shapes the model and the data order.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use recur::optim::OptimizerConfig;
use recur::Truncation;

use super::config::{Config, Level};
use super::errors::bad;
use super::session::Progress;
use super::BoxError;

/// The settings besides the network's shape that decide the data a run sees; stored in
/// the checkpoint, so a resume reads the same text in the same order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// `--vocab`.
    pub vocab: usize,
    /// `--batch`.
    pub batch: usize,
    /// `--truncation`, as given (`None`: the level's default).
    pub truncation: Option<String>,
    /// `--optimizer`, as given (`None`: the level's default).
    pub optimizer: Option<String>,
    /// `--corpus` (`None`: the embedded documentation).
    pub corpus: Option<PathBuf>,
    /// CRC-32C of the corpus file's bytes.
    pub corpus_crc: Option<u32>,
    /// `--limit`.
    pub limit: Option<usize>,
    /// `--min-words`.
    pub min_words: usize,
    /// `--valid-fraction`.
    pub valid_fraction: f64,
    /// `--data-seed` (the training order), as resolved; `None` in older checkpoints.
    #[serde(default)]
    pub data_seed: Option<u64>,
}

impl Settings {
    /// The settings of `config`, hashing its corpus.
    pub fn of(config: &Config) -> Result<Self, BoxError> {
        Ok(Settings {
            vocab: config.vocab,
            batch: config.batch,
            truncation: Some(truncation(config)?.to_string()),
            optimizer: Some(optimizer(config)?.to_string()),
            corpus: config.corpus.clone(),
            corpus_crc: config.corpus.as_deref().map(corpus_crc).transpose()?,
            limit: config.limit,
            min_words: config.min_words,
            valid_fraction: config.valid_fraction,
            data_seed: Some(config.data_seed()),
        })
    }
}

/// `--truncation`, or the level's default: the tutorial's `per-output:4` for words,
/// `chunked:25` for characters.
pub fn truncation(config: &Config) -> recur::Result<Truncation> {
    match (config.truncation, config.level) {
        (Some(t), _) => Ok(t),
        (None, Level::Word) => Truncation::per_output(4),
        (None, Level::Char) => Truncation::chunked(25),
    }
}

/// `--optimizer`, or the level's default: SGD at 0.005 for words, Adagrad at 0.1 for
/// characters.
pub fn optimizer(config: &Config) -> recur::Result<OptimizerConfig> {
    match (config.optimizer, config.level) {
        (Some(o), _) => Ok(o),
        (None, Level::Word) => Ok(OptimizerConfig::Sgd { lr: 0.005 }),
        (None, Level::Char) => "adagrad:0.1".parse(),
    }
}

fn corpus_crc(path: &Path) -> Result<u32, BoxError> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read the corpus {}: {e}", path.display()))?;
    Ok(crc32c::crc32c(&bytes))
}

/// The flags given explicitly on the command line (clap argument ids, `hidden`, `seed`, …).
pub type Given = BTreeSet<String>;

/// The progress stored in the checkpoint at `path`, read without knowing its scalar type
/// (the full load, which verifies the checksum, comes after).
pub fn peek(path: &Path) -> Result<Progress, BoxError> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read the checkpoint {}: {e}", path.display()))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| {
        format!(
            "{} is not a checkpoint of this program ({e})",
            path.display()
        )
    })?;
    let progress = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get("user.progress"))
        .ok_or_else(|| {
            format!(
                "{} holds no training progress: it was not written by --save",
                path.display()
            )
        })?;
    Ok(serde_json::from_str(progress)?)
}

/// `config` with the checkpoint's settings in place of the defaults: the checkpoint decides
/// the model's shape and the data; a flag given explicitly with another value is refused
/// (all such conflicts in one message). A new learning rate, epochs, stop or clipping
/// apply; the returned notes say so.
pub fn resolve(
    config: &Config,
    given: &Given,
    stored: &Progress,
) -> Result<(Config, Vec<String>), BoxError> {
    let mut out = config.clone();
    let mut conflicts = Vec::new();
    let mut check = |flag: &str, yours: String, saved: String| {
        if given.contains(&flag.replace('-', "_")) && yours != saved {
            conflicts.push(format!("--{flag} {yours} (the checkpoint has {saved})"));
        }
    };
    check("level", name(config.level), name(stored.level));
    check("dtype", name(config.dtype), name(stored.dtype));
    let shape = config.shape();
    check("cell", name(shape.cell), name(stored.shape.cell));
    check(
        "layers",
        shape.layers.to_string(),
        stored.shape.layers.to_string(),
    );
    check(
        "hidden",
        shape.hidden.to_string(),
        stored.shape.hidden.to_string(),
    );
    check("seed", config.seed.to_string(), stored.seed.to_string());
    (out.level, out.dtype, out.seed) = (stored.level, stored.dtype, stored.seed);
    (out.cell, out.layers, out.hidden) = (
        Some(stored.shape.cell),
        stored.shape.layers,
        Some(stored.shape.hidden),
    );
    let mut notes = Vec::new();
    if let Some(saved) = &stored.settings {
        let mine = Settings::of(config)?;
        check("vocab", mine.vocab.to_string(), saved.vocab.to_string());
        check("batch", mine.batch.to_string(), saved.batch.to_string());
        check(
            "truncation",
            shown(&mine.truncation),
            shown(&saved.truncation),
        );
        check("limit", shown(&mine.limit), shown(&saved.limit));
        check(
            "min-words",
            mine.min_words.to_string(),
            saved.min_words.to_string(),
        );
        check(
            "valid-fraction",
            mine.valid_fraction.to_string(),
            saved.valid_fraction.to_string(),
        );
        if let Some(saved_seed) = saved.data_seed {
            check(
                "data-seed",
                mine.data_seed.unwrap_or_default().to_string(),
                saved_seed.to_string(),
            );
            out.data_seed = Some(saved_seed);
        }
        let kind = |o: &Option<String>| {
            o.as_deref()
                .map(|o| o.split(':').next().unwrap_or(o).to_owned())
        };
        check(
            "optimizer",
            shown(&kind(&mine.optimizer)),
            shown(&kind(&saved.optimizer)),
        );
        if given.contains("corpus") && mine.corpus_crc != saved.corpus_crc {
            conflicts.push(format!(
                "--corpus {} (not the text the checkpoint was trained on{})",
                shown_path(&mine.corpus),
                saved
                    .corpus
                    .as_ref()
                    .map(|p| format!(": {}", p.display()))
                    .unwrap_or_default()
            ));
        }
        (out.vocab, out.batch, out.limit) = (saved.vocab, saved.batch, saved.limit);
        (out.min_words, out.valid_fraction) = (saved.min_words, saved.valid_fraction);
        out.truncation = saved.truncation.as_deref().map(str::parse).transpose()?;
        if !given.contains("corpus") {
            out.corpus = saved.corpus.clone();
            if Settings::of(&out)?.corpus_crc != saved.corpus_crc {
                conflicts.push(format!(
                    "the corpus {} changed since the checkpoint was written; pass the original text",
                    shown_path(&saved.corpus)
                ));
            }
        }
        match (given.contains("optimizer"), &saved.optimizer) {
            (true, _) => notes.push(format!(
                "the learning rate of --optimizer {} applies",
                shown(&mine.optimizer)
            )),
            (false, saved) => out.optimizer = saved.as_deref().map(str::parse).transpose()?,
        }
    }
    let mid_stream = stored.run.stream.as_ref().is_some_and(|p| p.offset > 0);
    if out.level == Level::Char && mid_stream {
        let scheme = truncation(&out)?;
        if scheme.window() > scheme.stride() {
            // The window's older steps were cached under weights the checkpoint no longer
            // holds, so the resumed stream cannot rebuild them; chunked windows hold none.
            notes.push(format!(
                "{scheme} reaches back past the saved point in the stream, so its first window \
                 there starts afresh: the run continues closely, not bit for bit (chunked:K does)"
            ));
        }
    }
    if !conflicts.is_empty() {
        return Err(bad(format!(
            "--resume: these flags disagree with the checkpoint, which decides them; drop them or start a new run:\n  {}",
            conflicts.join("\n  ")
        )));
    }
    for flag in [
        "epochs",
        "clip",
        "stop-after",
        "time-budget",
        "evaluate-every",
        "reduction",
    ] {
        if given.contains(&flag.replace('-', "_")) {
            notes.push(format!("--{flag} applies to the resumed run"));
        }
    }
    Ok((out, notes))
}

fn name<T: std::fmt::Debug>(value: T) -> String {
    format!("{value:?}").to_lowercase()
}

fn shown<T: std::fmt::Display>(value: &Option<T>) -> String {
    value
        .as_ref()
        .map_or_else(|| "(default)".to_owned(), T::to_string)
}

fn shown_path(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map_or_else(|| "(embedded)".to_owned(), |p| p.display().to_string())
}

/// Refuses, before any training, an output path that cannot be written: its folder
/// missing or read-only, or the path a folder or a read-only file.
pub fn check_outputs(config: &Config) -> Result<(), BoxError> {
    let outputs = [
        ("--save", &config.save),
        ("--save-best", &config.save_best),
        ("--export", &config.export),
        ("--log", &config.log),
    ];
    for (flag, path) in outputs {
        if let Some(path) = path {
            writable(flag, path, false)?;
        }
    }
    writable("--plot", &config.plot, true)
}

/// Whether `path` can be written (folder created first when `create_dir`).
fn writable(flag: &str, path: &Path, create_dir: bool) -> Result<(), BoxError> {
    let fail = |why: String| -> BoxError {
        bad(format!(
            "{flag} {}: {why}; choose another path (nothing was trained)",
            path.display()
        ))
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if create_dir {
        std::fs::create_dir_all(&dir)
            .map_err(|e| fail(format!("cannot create its folder ({e})")))?;
    }
    if path.is_dir() {
        return Err(fail("is a folder".into()));
    }
    if !dir.is_dir() {
        return Err(fail(format!("the folder {} does not exist", dir.display())));
    }
    if path.exists() {
        OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| fail(format!("cannot be written ({e})")))?;
    }
    let probe = dir.join(format!(".write-probe-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| fail(format!("its folder cannot be written ({e})")))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}
