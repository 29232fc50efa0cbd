//! The command line of the language model.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use recur::optim::OptimizerConfig;
use recur::prelude::*;
use serde::{Deserialize, Serialize};

use super::network::{CellKind, Shape};

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
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    /// Word- or character-level model.
    #[arg(long, value_enum, default_value_t = Level::Word)]
    pub level: Level,
    /// Vocabulary size for words, special tokens included (capped at what the corpus has).
    #[arg(long, default_value_t = 8000)]
    pub vocab: usize,
    /// The recurrent cell.
    #[arg(long, value_enum, default_value_t = CellKind::Elman)]
    pub cell: CellKind,
    /// Cells stacked, each reading the one below.
    #[arg(long, default_value_t = 1, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub layers: usize,
    /// Hidden units (of every layer).
    #[arg(long, default_value_t = 100)]
    pub hidden: usize,
    /// `full`, `chunked:K`, `per-output:K`, `last:K` or `bptt:H:H'`
    /// (default: per-output:4 for words, chunked:25 for characters).
    #[arg(long)]
    pub truncation: Option<Truncation>,
    /// `sgd:LR`, `adagrad:LR`, `adam:LR`, … (default: sgd:0.005 for words, adagrad:0.1 for characters).
    #[arg(long)]
    pub optimizer: Option<OptimizerConfig>,
    /// Gradient clipping: `none`, `value:L` or `norm:L` (default: none for words, value:5 for characters).
    #[arg(long)]
    pub clip: Option<Clip>,
    /// Loss reduction: sum (the tutorial's, lr 0.005) or mean per token.
    #[arg(long, value_enum, default_value_t = ReductionArg::Sum)]
    pub reduction: ReductionArg,
    /// Sentences per update (padded to the longest).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Passes over the training data.
    #[arg(long, default_value_t = 5)]
    pub epochs: usize,
    /// Use only the first N sentences (words) or characters (chars), validation share
    /// included; the vocabulary still comes from the whole corpus.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Drop sentences with fewer words than this.
    #[arg(long, default_value_t = 1)]
    pub min_words: usize,
    /// Evaluate (and halve the learning rate if the validation loss rose) every N updates;
    /// 0: once per epoch.
    #[arg(long, default_value_t = 0)]
    pub evaluate_every: u64,
    /// Share of the data held out for validation, never trained on: the last sentences
    /// (words) or the tail of the text (characters).
    #[arg(long, default_value_t = 0.1)]
    pub valid_fraction: f64,
    /// Seed for initialisation, shuffling and sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Scalar type.
    #[arg(long, value_enum, default_value_t = Dtype::F32)]
    pub dtype: Dtype,
    /// Write a checkpoint here at the end (atomically).
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Continue from this checkpoint (model, optimizer, vocabulary, position).
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Export the weights as safetensors (readable by PyTorch and numpy).
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// Stop after this many updates in total (checkpoint tests).
    #[arg(long)]
    pub stop_after: Option<u64>,
    /// Sentences (words) or 200-character samples (chars) to generate at the end.
    #[arg(long, default_value_t = 5)]
    pub generate: usize,
    /// Shortest generated sentence, in words.
    #[arg(long, default_value_t = 5)]
    pub min_length: usize,
    /// Where to draw the loss curve (SVG).
    #[arg(long, default_value = "target/language_model_loss.svg")]
    pub plot: PathBuf,
    /// No progress bar, no per-evaluation lines.
    #[arg(long)]
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
}

impl Config {
    /// The network these flags ask for.
    pub fn shape(&self) -> Shape {
        Shape {
            cell: self.cell,
            layers: self.layers,
            hidden: self.hidden,
        }
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
