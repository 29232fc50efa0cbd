//! The command line of the language model, its flags grouped by purpose (the same groups
//! as `--help` and docs/language-model.md).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use recur::optim::OptimizerConfig;
use recur::prelude::*;
use serde::{Deserialize, Serialize};

use super::network::{CellKind, Shape};
use super::sample::Sampling;
use super::schedule::ScheduleArg;

/// Word- or character-level modelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub enum Level {
    /// Words, one sentence per sequence.
    Word,
    /// Characters, one stream over the whole text.
    Char,
}

/// Scalar type of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub enum Dtype {
    /// 32-bit floats (fast).
    F32,
    /// 64-bit floats (for checks).
    F64,
}

/// Command-line settings.
#[derive(Debug, Clone, Parser)]
#[command(about = "Train a recurrent language model, then generate text")]
pub struct Config {
    /// A reddit-comments CSV (header `body`) or a plain text file; default: embedded docs.
    #[arg(long, help_heading = "Data")]
    pub corpus: Option<PathBuf>,
    /// Word- or character-level model.
    #[arg(long, value_enum, default_value_t = Level::Char, help_heading = "Data")]
    pub level: Level,
    /// Vocabulary size for words, special tokens included (capped at what the corpus has).
    #[arg(long, default_value_t = 8000, help_heading = "Data")]
    pub vocab: usize,
    /// Use only the first N sentences (words) or characters (chars), validation share
    /// included; the vocabulary still comes from the whole corpus.
    #[arg(long, help_heading = "Data")]
    pub limit: Option<usize>,
    /// Drop sentences with fewer words than this.
    #[arg(long, default_value_t = 1, help_heading = "Data")]
    pub min_words: usize,
    /// Share of the data held out for validation, never trained on: the last sentences
    /// (words) or the tail of the text (characters).
    #[arg(long, default_value_t = 0.1, help_heading = "Data")]
    pub valid_fraction: f64,
    /// Seed of the training order (word level; the character stream has one order);
    /// default: --seed.
    #[arg(long, help_heading = "Data")]
    pub data_seed: Option<u64>,

    /// The recurrent cell (default: lstm for characters, elman for words).
    #[arg(long, value_enum, help_heading = "Model")]
    pub cell: Option<CellKind>,
    /// Cells stacked, each reading the one below.
    #[arg(long, default_value_t = 1, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..), help_heading = "Model")]
    pub layers: usize,
    /// Hidden units of every layer (default: 128 for characters, 100 for words).
    #[arg(long, help_heading = "Model")]
    pub hidden: Option<usize>,
    /// Seed of the initial weights.
    #[arg(long, default_value_t = 0, help_heading = "Model")]
    pub seed: u64,
    /// Scalar type.
    #[arg(long, value_enum, default_value_t = Dtype::F32, help_heading = "Model")]
    pub dtype: Dtype,

    /// Passes over the training data (default: 6 for characters, 5 for words).
    #[arg(long, help_heading = "Training")]
    pub epochs: Option<usize>,
    /// `full`, `chunked:K`, `per-output:K`, `last:K` or `bptt:H:H'`
    /// (default: per-output:4 for words, chunked:25 for characters).
    #[arg(long, help_heading = "Training")]
    pub truncation: Option<Truncation>,
    /// `sgd:LR`, `adagrad:LR`, `adam:LR`, … (default: sgd:0.005 for words, adagrad:0.1 for characters).
    #[arg(long, help_heading = "Training")]
    pub optimizer: Option<OptimizerConfig>,
    /// Learning-rate schedule: `halve` (halve when the validation loss rises), `constant`,
    /// `cosine[:MIN_FACTOR]` (over the run's updates), `step:EVERY:FACTOR`, `exp:RATE`.
    #[arg(long, default_value = "halve", help_heading = "Training")]
    pub schedule: ScheduleArg,
    /// Gradient clipping: `none`, `value:L` or `norm:L` (default: none for words, value:5 for characters).
    #[arg(long, help_heading = "Training")]
    pub clip: Option<Clip>,
    /// Loss reduction: sum (the tutorial's, lr 0.005) or mean per token.
    #[arg(long, value_enum, default_value_t = ReductionArg::Sum, help_heading = "Training")]
    pub reduction: ReductionArg,
    /// Sentences per update (padded to the longest).
    #[arg(long, default_value_t = 1, help_heading = "Training")]
    pub batch: usize,
    /// Stop after this many updates in total (checkpoint tests).
    #[arg(long, help_heading = "Training")]
    pub stop_after: Option<u64>,
    /// End training at the next update once this much wall-clock time has passed in the
    /// training loop (evaluations included), then finish as usual: a closing evaluation,
    /// save, export, plot. Seconds, or a number with `s`, `m` or `h` (`90`, `90s`, `10m`,
    /// `1.5h`); a resumed run gets the whole budget again.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Training")]
    pub time_budget: Option<Duration>,

    /// Evaluate (training and validation loss and perplexity, schedule step) every N
    /// updates; 0: once per epoch.
    #[arg(long, default_value_t = 0, help_heading = "Evaluation and stopping")]
    pub evaluate_every: u64,
    /// Stop when the validation loss has not improved for N evaluations in a row.
    #[arg(long, help_heading = "Evaluation and stopping")]
    pub patience: Option<usize>,

    /// Samples to generate at the end: sentences (words) or runs of characters.
    #[arg(long, default_value_t = 5, help_heading = "Generation")]
    pub generate: usize,
    /// Generate from the `--resume` checkpoint without training (its vocabulary, shape and
    /// seed; no corpus read, weights untouched).
    #[arg(long, requires = "resume", conflicts_with_all = ["epochs", "save", "save_best", "export", "corpus", "stop_after", "time_budget", "patience"], help_heading = "Generation")]
    pub generate_only: bool,
    /// Text every sample starts with (it conditions the model).
    #[arg(long, help_heading = "Generation")]
    pub prompt: Option<String>,
    /// Tokens generated after the prompt (default: 200 characters; at most 60 words,
    /// a sentence ends earlier at its end token).
    #[arg(long, alias = "length", help_heading = "Generation")]
    pub max_tokens: Option<usize>,
    /// Shortest generated sentence, in words.
    #[arg(long, default_value_t = 5, help_heading = "Generation")]
    pub min_length: usize,
    /// Sampling options: temperature, top-k, top-p.
    #[command(flatten)]
    pub sampling: Sampling,
    /// Seed of the sampling (default: the model's seed + 1).
    #[arg(long, help_heading = "Generation")]
    pub sample_seed: Option<u64>,

    /// Write a checkpoint here at the end (atomically).
    #[arg(long, help_heading = "Outputs")]
    pub save: Option<PathBuf>,
    /// Keep the checkpoint of the lowest validation loss here, rewritten when it improves.
    #[arg(long, help_heading = "Outputs")]
    pub save_best: Option<PathBuf>,
    /// Continue from this checkpoint (model, optimizer, vocabulary, position, schedule).
    #[arg(long, help_heading = "Outputs")]
    pub resume: Option<PathBuf>,
    /// Export the weights as safetensors (readable by PyTorch and numpy), with the
    /// vocabulary beside them (`NAME.vocab.json`).
    #[arg(long, help_heading = "Outputs")]
    pub export: Option<PathBuf>,
    /// Write one CSV row per evaluation here (columns in docs/language-model.md).
    #[arg(long, help_heading = "Outputs")]
    pub log: Option<PathBuf>,
    /// Where to draw the loss curves (SVG).
    #[arg(
        long,
        default_value = "target/language_model_loss.svg",
        help_heading = "Outputs"
    )]
    pub plot: PathBuf,
    /// No progress bar, no per-evaluation lines, no summary of outputs.
    #[arg(long, help_heading = "Outputs")]
    pub quiet: bool,
    /// Also save the checkpoint (to --save) every N updates.
    #[arg(long, help_heading = "Checkpoints and safety", requires = "save", value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(1..))]
    pub save_every: Option<u64>,
    /// Stop (and save to --save) when training diverges, instead of only reporting it.
    #[arg(long, help_heading = "Checkpoints and safety")]
    pub stop_on_divergence: bool,
    /// Read a CSV corpus with an unterminated quote as one long last record instead of
    /// refusing it.
    #[arg(long, help_heading = "Checkpoints and safety")]
    pub lenient: bool,

    /// Threads for large matrix products (default: RECUR_THREADS, else 1; more pays only
    /// with idle cores).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..), help_heading = "Performance")]
    pub threads: Option<usize>,
}

impl Config {
    /// The network these flags ask for.
    pub fn shape(&self) -> Shape {
        let (cell, hidden) = match self.level {
            Level::Char => (CellKind::Lstm, 128),
            Level::Word => (CellKind::Elman, 100),
        };
        Shape {
            cell: self.cell.unwrap_or(cell),
            layers: self.layers,
            hidden: self.hidden.unwrap_or(hidden),
        }
    }

    /// Epochs to train.
    pub fn epochs(&self) -> usize {
        self.epochs.unwrap_or(match self.level {
            Level::Char => 6,
            Level::Word => 5,
        })
    }

    /// Seed of the training order.
    pub fn data_seed(&self) -> u64 {
        self.data_seed.unwrap_or(self.seed)
    }
}

/// How losses are combined (a command-line mirror of [`Reduction`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub enum ReductionArg {
    /// Summed over tokens.
    Sum,
    /// Averaged over tokens.
    Mean,
}

impl From<ReductionArg> for Reduction {
    fn from(r: ReductionArg) -> Self {
        match r {
            ReductionArg::Sum => Reduction::Sum,
            ReductionArg::Mean => Reduction::Mean,
        }
    }
}

/// A duration as `--time-budget` takes it: seconds (`90`, `2.5`) or a number with the unit
/// `s`, `m` or `h` (`90s`, `10m`, `1.5h`).
///
/// # Errors
/// Anything else, negative or not finite, with the forms that work.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().last() {
        Some((at, 's')) => (&text[..at], 1.0),
        Some((at, 'm')) => (&text[..at], 60.0),
        Some((at, 'h')) => (&text[..at], 3600.0),
        _ => (text, 1.0),
    };
    let refuse = || {
        format!("'{text}' is not a duration: give seconds (90) or a number with s, m or h (90s, 10m, 1.5h)")
    };
    // `f64::from_str` also takes `inf`, `nan` and exponents: only digits and a point here.
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(refuse());
    }
    let value: f64 = number.parse().map_err(|_| refuse())?;
    Duration::try_from_secs_f64(value * unit).map_err(|_| refuse())
}
