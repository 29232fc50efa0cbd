//! A language model in the style of the classic tanh-RNN tutorial, done with recur.
//!
//! **Word level (default).** Sentences are tokenised, wrapped in `SENTENCE_START` /
//! `SENTENCE_END`, and the most frequent words (default 8000, capped at what the corpus has)
//! form the vocabulary; the rest become `UNKNOWN_TOKEN`. The model is `Elman<F, Tanh>` with
//! hidden size 100 and a linear readout with softmax cross-entropy. It is trained with plain
//! SGD (learning rate 0.005) on one sentence per update, `per_output(4)` truncation (the
//! tutorial's `bptt_truncate = 4`) and summed losses, and the learning rate is halved when an
//! evaluated loss goes up. At the end it plots the loss curve and generates sentences.
//!
//! **Character level (`--level char`).** The vocabulary is the characters seen. Training
//! streams over the whole text with the hidden state carried on, back-propagating every 25
//! characters (`chunked:25`), with Adagrad and clipping, in the style of the classic minimal
//! character RNN.
//!
//! ```text
//! cargo run --release --example language_model                       # embedded corpus
//! cargo run --release --example language_model -- --corpus ../shared/data/reddit-comments-2015-08.csv --vocab 2000
//! cargo run --release --example language_model -- --level char --corpus ../shared/data/tinyshakespeare.txt
//! cargo run --release --example language_model -- --save lm.safetensors   # then --resume lm.safetensors
//! ```

use std::error::Error as StdError;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::{Array1, Array2, ArrayView2};
use rand::{rngs::StdRng, seq::SliceRandom, Rng, SeedableRng};
use recur::data::{self, CharVocabulary, Corpus, Vocabulary};
use recur::io::Checkpoint;
use recur::loss::IGNORE;
use recur::optim::{OptimizerConfig, Schedule};
use recur::prelude::*;
use serde::{Deserialize, Serialize};

/// Errors of this program: the library's, the data crate's, I/O, JSON, plotting.
type BoxError = Box<dyn StdError + Send + Sync>;

/// recur's own documentation: the corpus used when no `--corpus` is given.
const EMBEDDED_CORPUS: &[&str] = &[
    include_str!("../README.md"),
    include_str!("../docs/bptt.md"),
    include_str!("../docs/architecture.md"),
    include_str!("../docs/custom-cells.md"),
];

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
    /// Hidden units.
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
    /// Train on only the first N sentences (words) or characters (chars); the vocabulary
    /// still comes from the whole corpus.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Drop sentences with fewer words than this.
    #[arg(long, default_value_t = 1)]
    pub min_words: usize,
    /// Evaluate the loss (and halve the learning rate if it rose) every N updates; 0: once per epoch.
    #[arg(long, default_value_t = 0)]
    pub evaluate_every: u64,
    /// Sentences (words) or characters (chars) in the evaluation set, taken from the start of the data.
    #[arg(long, default_value_t = 200)]
    pub eval_size: usize,
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

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Evaluation loss per token before training (or at resume).
    pub initial_loss: f64,
    /// Evaluation loss per token at the end.
    pub final_loss: f64,
    /// Evaluations: (update, loss per token).
    pub curve: Vec<(u64, f64)>,
    /// Updates made in total (including those before a resume).
    pub updates: u64,
    /// Training tokens per second of this run.
    pub tokens_per_s: f64,
    /// Generated sentences or samples.
    pub generated: Vec<String>,
}

/// Where training stands, saved in checkpoints next to the weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Progress {
    level: Level,
    dtype: Dtype,
    hidden: usize,
    seed: u64,
    epoch: usize,
    /// Batches of the current epoch already trained on.
    position: usize,
    updates: u64,
    tokens: u64,
    schedule: Schedule,
    curve: Vec<(u64, f64)>,
}

/// The vocabulary of either level, for checkpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Vocab {
    Words(Vocabulary),
    Chars(Box<CharVocabulary>),
}

impl Vocab {
    fn len(&self) -> usize {
        match self {
            Vocab::Words(v) => v.len(),
            Vocab::Chars(v) => v.len(),
        }
    }
}

fn main() {
    let config = Config::parse();
    match run(&config) {
        Ok(summary) => {
            for line in &summary.generated {
                println!("{line}");
            }
            let json = serde_json::json!({
                "vocab_size": summary.vocab_size,
                "initial_loss": summary.initial_loss,
                "final_loss": summary.final_loss,
                "updates": summary.updates,
                "tokens_per_s": summary.tokens_per_s,
            });
            println!("{json}");
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

/// Runs the whole program for `config`.
///
/// # Errors
/// Bad input (missing file, empty corpus, CSV without `body`, a checkpoint of another
/// shape or vocabulary) and training failures, as errors; nothing is written then.
pub fn run(config: &Config) -> Result<Summary, BoxError> {
    match config.dtype {
        Dtype::F32 => run_typed::<f32>(config),
        Dtype::F64 => run_typed::<f64>(config),
    }
}

type LanguageModel<F> = Model<F, Elman<F, Tanh>>;

/// A model with its optimizer and where its training stands.
type Session<F> = (LanguageModel<F>, Box<dyn Optimizer<F>>, Progress);

fn run_typed<F: Float>(config: &Config) -> Result<Summary, BoxError> {
    let resumed = config
        .resume
        .as_deref()
        .map(Checkpoint::<F>::load)
        .transpose()?;
    let text = load_text(config)?;
    let (vocab, data) = match &resumed {
        Some(checkpoint) => {
            let vocab: Vocab = serde_json::from_str(metadata(checkpoint, "vocab")?)?;
            let data = encode(config, &text, &vocab)?;
            (vocab, data)
        }
        None => build_vocab(config, &text)?,
    };
    let (mut model, optimizer, mut progress) = match &resumed {
        Some(checkpoint) => restore::<F>(config, checkpoint, vocab.len())?,
        None => fresh::<F>(config, vocab.len())?,
    };
    let default_clip = match config.level {
        Level::Word => Clip::None,
        Level::Char => Clip::Value(5.0),
    };
    let truncation = config.truncation.unwrap_or(match config.level {
        Level::Word => Truncation::per_output(4)?,
        Level::Char => Truncation::chunked(25)?,
    });
    let mut trainer = Trainer::new(&model, truncation, config.reduction.into(), optimizer)
        .with_clip(config.clip.unwrap_or(default_clip));
    trainer.set_counters(progress.updates, progress.tokens);

    let initial_loss = evaluate(&mut trainer, &model, &data, config)?;
    if progress.curve.is_empty() {
        progress.curve.push((progress.updates, initial_loss));
    }
    let started = Instant::now();
    let tokens_before = trainer.tokens();
    match &data {
        Data::Sentences(pairs) => train_words(
            config,
            &mut trainer,
            &mut model,
            pairs,
            &data,
            &mut progress,
        )?,
        Data::Stream(ids) => {
            train_chars(config, &mut trainer, &mut model, ids, &data, &mut progress)?
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let final_loss = evaluate(&mut trainer, &model, &data, config)?;
    save_outputs(config, &model, &trainer, &vocab, &progress)?;
    let generated = generate(config, &model, &vocab)?;
    Ok(Summary {
        vocab_size: vocab.len(),
        initial_loss,
        final_loss,
        curve: progress.curve,
        updates: trainer.updates(),
        tokens_per_s: (trainer.tokens() - tokens_before) as f64 / seconds.max(1e-9),
        generated,
    })
}

/// The training data of either level.
enum Data {
    /// (inputs, targets) per sentence.
    Sentences(Vec<(Vec<usize>, Vec<usize>)>),
    /// The whole text as character ids.
    Stream(Vec<usize>),
}

fn load_text(config: &Config) -> Result<Vec<String>, BoxError> {
    let documents = match &config.corpus {
        Some(path) => Corpus::read(path)?.into_documents(),
        None => EMBEDDED_CORPUS.iter().map(|doc| prose(doc)).collect(),
    };
    Ok(documents)
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

fn build_vocab(config: &Config, documents: &[String]) -> Result<(Vocab, Data), BoxError> {
    let vocab = match config.level {
        Level::Word => {
            let sentences = sentences(config, documents);
            let (vocab, report) = Vocabulary::build(&sentences, config.vocab)?;
            if !config.quiet {
                println!("{report}");
            }
            Vocab::Words(vocab)
        }
        Level::Char => Vocab::Chars(Box::new(CharVocabulary::from_text(
            &documents.join("\n\n"),
        )?)),
    };
    let data = encode(config, documents, &vocab)?;
    Ok((vocab, data))
}

fn sentences(config: &Config, documents: &[String]) -> Vec<Vec<String>> {
    data::drop_short_sentences(data::tokenize_documents(documents), config.min_words)
}

fn encode(config: &Config, documents: &[String], vocab: &Vocab) -> Result<Data, BoxError> {
    match vocab {
        Vocab::Words(v) => {
            let ids = v.encode_sentences(&sentences(config, documents));
            let mut pairs = data::training_pairs(&ids);
            if let Some(limit) = config.limit {
                pairs.truncate(limit);
            }
            if pairs.is_empty() {
                return Err("the corpus has no sentence to train on".into());
            }
            Ok(Data::Sentences(pairs))
        }
        Vocab::Chars(v) => {
            let mut text = documents.join("\n\n");
            if let Some(limit) = config.limit {
                text = text.chars().take(limit).collect();
            }
            let ids = v.encode(&text)?;
            if ids.len() < 2 {
                return Err("the corpus has fewer than two characters".into());
            }
            Ok(Data::Stream(ids))
        }
    }
}

fn fresh<F: Float>(config: &Config, vocab_size: usize) -> Result<Session<F>, BoxError> {
    let mut rng = StdRng::seed_from_u64(config.seed);
    let cell = ElmanConfig::new(vocab_size, config.hidden).init(Tanh, &mut rng)?;
    let readout = LinearConfig::new(config.hidden, vocab_size).init(&mut rng)?;
    let optimizer = config.optimizer.unwrap_or(match config.level {
        Level::Word => OptimizerConfig::Sgd { lr: 0.005 },
        Level::Char => "adagrad:0.1".parse()?,
    });
    let progress = Progress {
        level: config.level,
        dtype: config.dtype,
        hidden: config.hidden,
        seed: config.seed,
        epoch: 0,
        position: 0,
        updates: 0,
        tokens: 0,
        schedule: Schedule::halve_on_plateau(),
        curve: Vec::new(),
    };
    Ok((Model::new(cell, readout)?, optimizer.build()?, progress))
}

fn metadata<'a, F>(checkpoint: &'a Checkpoint<F>, key: &str) -> Result<&'a str, BoxError> {
    checkpoint
        .metadata
        .get(key)
        .map(String::as_str)
        .ok_or_else(|| {
            format!("the checkpoint has no '{key}' entry: not written by this program").into()
        })
}

fn restore<F: Float>(
    config: &Config,
    checkpoint: &Checkpoint<F>,
    vocab_size: usize,
) -> Result<Session<F>, BoxError> {
    let progress: Progress = serde_json::from_str(metadata(checkpoint, "progress")?)?;
    if progress.level != config.level {
        return Err(format!(
            "the checkpoint is a {:?}-level model; pass --level {:?}",
            progress.level, progress.level
        )
        .into());
    }
    let mut fresh_config = config.clone();
    fresh_config.hidden = progress.hidden;
    let (mut model, _, _) = fresh::<F>(&fresh_config, vocab_size)?;
    checkpoint.restore(&mut model)?;
    let optimizer = checkpoint
        .optimizer
        .clone()
        .ok_or("the checkpoint holds no optimizer state")?
        .into_optimizer()?;
    Ok((model, optimizer, progress))
}

fn progress_bar(config: &Config, total: u64) -> ProgressBar {
    if config.quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} updates  {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar
}

/// Word level: one update per batch of sentences, in a seeded order per epoch.
fn train_words<F: Float>(
    config: &Config,
    trainer: &mut Trainer<F, Elman<F, Tanh>>,
    model: &mut LanguageModel<F>,
    pairs: &[(Vec<usize>, Vec<usize>)],
    data: &Data,
    progress: &mut Progress,
) -> Result<(), BoxError> {
    let batches_per_epoch = pairs.len().div_ceil(config.batch.max(1));
    let total = (config.epochs * batches_per_epoch) as u64;
    let bar = progress_bar(config, total);
    bar.set_position(progress.updates.min(total));
    let started = Instant::now();
    let mut buffers = BatchBuffers::default();
    while progress.epoch < config.epochs {
        let order = epoch_order(pairs.len(), config.seed, progress.epoch);
        let batches: Vec<&[usize]> = order.chunks(config.batch.max(1)).collect();
        while progress.position < batches.len() {
            if config.stop_after.is_some_and(|n| trainer.updates() >= n) {
                return Ok(());
            }
            let batch = buffers.fill(pairs, batches[progress.position])?;
            let report = trainer.train_batch(model, &SoftmaxCrossEntropy, batch, None)?;
            progress.position += 1;
            progress.updates = report.update;
            progress.tokens = report.tokens;
            bar.inc(1);
            let rate = report.tokens as f64 / started.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!(
                "loss/token {:.3}  {rate:.0} tokens/s",
                report.loss.mean()
            ));
            if config.evaluate_every > 0 && report.update % config.evaluate_every == 0 {
                checkpoint_evaluation(config, trainer, model, data, progress, &bar)?;
            }
        }
        progress.epoch += 1;
        progress.position = 0;
        if config.evaluate_every == 0 {
            checkpoint_evaluation(config, trainer, model, data, progress, &bar)?;
        }
    }
    bar.finish_and_clear();
    Ok(())
}

/// Character level: stream over the text once per epoch, state carried within the epoch.
fn train_chars<F: Float>(
    config: &Config,
    trainer: &mut Trainer<F, Elman<F, Tanh>>,
    model: &mut LanguageModel<F>,
    ids: &[usize],
    data: &Data,
    progress: &mut Progress,
) -> Result<(), BoxError> {
    let n = ids.len() - 1;
    let inputs = ArrayView2::from_shape((n, 1), &ids[..n])?;
    let targets = ArrayView2::from_shape((n, 1), &ids[1..])?;
    let batch = SeqBatch {
        inputs: SeqInput::Tokens(inputs),
        targets: SeqTargets::Classes(targets),
    };
    let stride = trainer_stride(config)?;
    let bar = progress_bar(config, (config.epochs * n.div_ceil(stride)) as u64);
    bar.set_position(progress.updates);
    let started = Instant::now();
    while progress.epoch < config.epochs {
        let mut on_update = |r: &UpdateReport| {
            bar.inc(1);
            let rate = r.tokens as f64 / started.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!("loss/char {:.3}  {rate:.0} chars/s", r.loss.mean()));
        };
        trainer.train_stream(model, &SoftmaxCrossEntropy, batch, None, &mut on_update)?;
        progress.epoch += 1;
        progress.updates = trainer.updates();
        progress.tokens = trainer.tokens();
        checkpoint_evaluation(config, trainer, model, data, progress, &bar)?;
    }
    bar.finish_and_clear();
    Ok(())
}

fn trainer_stride(config: &Config) -> Result<usize, BoxError> {
    let truncation = config.truncation.unwrap_or(Truncation::chunked(25)?);
    truncation
        .stride()
        .ok_or_else(|| "character-level streaming needs a truncation with a stride".into())
}

/// Evaluates, records the point, and lets the schedule halve the learning rate.
fn checkpoint_evaluation<F: Float>(
    config: &Config,
    trainer: &mut Trainer<F, Elman<F, Tanh>>,
    model: &LanguageModel<F>,
    data: &Data,
    progress: &mut Progress,
    bar: &ProgressBar,
) -> Result<(), BoxError> {
    let loss = evaluate(trainer, model, data, config)?;
    progress.curve.push((trainer.updates(), loss));
    let changed = progress
        .schedule
        .on_evaluation(loss, trainer.optimizer_mut())?;
    if !config.quiet {
        let note = changed.map_or(String::new(), |lr| {
            format!("; loss rose, learning rate now {lr}")
        });
        bar.suspend(|| {
            println!(
                "update {}: loss per token {loss:.4} (epoch {}){note}",
                trainer.updates(),
                progress.epoch
            );
        });
    }
    Ok(())
}

/// The sentence order of an epoch: a shuffle seeded by the run's seed and the epoch, so a
/// resumed run sees the same order.
fn epoch_order(len: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    let mut rng =
        StdRng::seed_from_u64(seed ^ (0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(epoch as u64 + 1)));
    order.shuffle(&mut rng);
    order
}

/// Time-major buffers for a padded batch of sentences, reused across updates.
#[derive(Default)]
struct BatchBuffers {
    inputs: Array2<usize>,
    targets: Array2<usize>,
}

impl BatchBuffers {
    fn fill<'a, F: Float>(
        &'a mut self,
        pairs: &[(Vec<usize>, Vec<usize>)],
        members: &[usize],
    ) -> Result<SeqBatch<'a, F>, BoxError> {
        let seq_len = members.iter().map(|&i| pairs[i].0.len()).max().unwrap_or(0);
        let shape = (seq_len, members.len());
        if self.inputs.dim() != shape {
            self.inputs = Array2::zeros(shape);
            self.targets = Array2::zeros(shape);
        }
        // Padding: input token 0 (any valid id) and an ignored target, so padded steps
        // add neither loss nor gradient.
        self.inputs.fill(data::PAD_ID);
        self.targets.fill(IGNORE);
        for (b, &i) in members.iter().enumerate() {
            let (x, y) = &pairs[i];
            for t in 0..x.len() {
                self.inputs[[t, b]] = x[t];
                self.targets[[t, b]] = y[t];
            }
        }
        Ok(SeqBatch {
            inputs: SeqInput::Tokens(self.inputs.view()),
            targets: SeqTargets::Classes(self.targets.view()),
        })
    }
}

/// Loss per token on the evaluation set: the first `eval_size` sentences, or the first
/// `eval_size` characters.
fn evaluate<F: Float>(
    trainer: &mut Trainer<F, Elman<F, Tanh>>,
    model: &LanguageModel<F>,
    data: &Data,
    config: &Config,
) -> Result<f64, BoxError> {
    let (mut total, mut counted) = (0.0, 0);
    match data {
        Data::Sentences(pairs) => {
            for (x, y) in pairs.iter().take(config.eval_size.max(1)) {
                let r = trainer.evaluate(model, &SoftmaxCrossEntropy, SeqBatch::sentence(x, y)?)?;
                total += r.total;
                counted += r.counted;
            }
        }
        Data::Stream(ids) => {
            let n = (ids.len() - 1).min(config.eval_size.max(1));
            let (x, y) = (&ids[..n], &ids[1..=n]);
            let r = trainer.evaluate(model, &SoftmaxCrossEntropy, SeqBatch::sentence(x, y)?)?;
            total += r.total;
            counted += r.counted;
        }
    }
    Ok(total / counted.max(1) as f64)
}

fn save_outputs<F: Float>(
    config: &Config,
    model: &LanguageModel<F>,
    trainer: &Trainer<F, Elman<F, Tanh>>,
    vocab: &Vocab,
    progress: &Progress,
) -> Result<(), BoxError> {
    if let Some(path) = &config.save {
        let mut metadata = std::collections::BTreeMap::new();
        metadata.insert("progress".to_owned(), serde_json::to_string(progress)?);
        metadata.insert("vocab".to_owned(), serde_json::to_string(vocab)?);
        Checkpoint::capture(model, Some(trainer.optimizer().state()), metadata).save(path)?;
        if !config.quiet {
            println!("saved checkpoint to {}", path.display());
        }
    }
    if let Some(path) = &config.export {
        recur::io::export_safetensors(model, path)?;
    }
    plot_curve(&config.plot, &progress.curve)?;
    Ok(())
}

fn plot_curve(path: &Path, curve: &[(u64, f64)]) -> Result<(), BoxError> {
    use plotters::prelude::*;
    if curve.len() < 2 {
        return Ok(());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let x_max = curve.last().map_or(1, |p| p.0.max(1)) as f64;
    let (lo, hi) = curve
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
    let mut chart = ChartBuilder::on(&root)
        .caption("evaluation loss per token", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..x_max, (lo - 0.1)..(hi + 0.1))?;
    chart
        .configure_mesh()
        .x_desc("updates")
        .y_desc("loss (nats)")
        .draw()?;
    chart.draw_series(LineSeries::new(
        curve.iter().map(|&(u, l)| (u as f64, l)),
        &BLUE,
    ))?;
    root.present()?;
    Ok(())
}

/// Samples text from the model: sentences for words (start token, resample unknown words,
/// stop at the end token, retry below the minimum length), characters otherwise.
fn generate<F: Float>(
    config: &Config,
    model: &LanguageModel<F>,
    vocab: &Vocab,
) -> Result<Vec<String>, BoxError> {
    let mut rng = StdRng::seed_from_u64(config.seed.wrapping_add(1));
    let mut out = Vec::new();
    for _ in 0..config.generate {
        let text = match vocab {
            Vocab::Words(v) => generate_sentence(model, v, config.min_length, &mut rng)?,
            Vocab::Chars(v) => generate_chars(model, v, 200, &mut rng)?,
        };
        out.push(text);
    }
    Ok(out)
}

fn generate_sentence<F: Float>(
    model: &LanguageModel<F>,
    vocab: &Vocabulary,
    min_length: usize,
    rng: &mut StdRng,
) -> Result<String, BoxError> {
    const MAX_WORDS: usize = 60;
    let mut sampler = Sampler::new(model);
    for _attempt in 0..100 {
        sampler.reset();
        let mut words = Vec::new();
        let mut token = Vocabulary::SENTENCE_START_ID;
        while words.len() < MAX_WORDS {
            token = loop {
                let next = sampler.next(model, token, rng)?;
                if next != Vocabulary::UNKNOWN_ID {
                    break next;
                }
            };
            if token == Vocabulary::SENTENCE_END_ID {
                break;
            }
            words.push(vocab.word_of(token).unwrap_or("?").to_owned());
        }
        if words.len() >= min_length {
            return Ok(words.join(" "));
        }
    }
    Err(format!("no sentence of at least {min_length} words in 100 attempts").into())
}

fn generate_chars<F: Float>(
    model: &LanguageModel<F>,
    vocab: &CharVocabulary,
    len: usize,
    rng: &mut StdRng,
) -> Result<String, BoxError> {
    let mut sampler = Sampler::new(model);
    // Start after a line break, as a text does, rather than after a rare character.
    let mut token = vocab.id_of('\n').unwrap_or(0);
    let mut ids = vec![token];
    for _ in 1..len {
        token = sampler.next(model, token, rng)?;
        ids.push(token);
    }
    Ok(vocab.decode(&ids)?)
}

/// Feeds one token at a time and samples the next from the softmax.
struct Sampler<F: Float> {
    predictor: Predictor<F, Elman<F, Tanh>>,
    probabilities: Array2<F>,
}

impl<F: Float> Sampler<F> {
    fn new(model: &LanguageModel<F>) -> Self {
        Sampler {
            predictor: Predictor::new(model, 1),
            probabilities: Array2::zeros((1, model.readout().output_size())),
        }
    }

    fn reset(&mut self) {
        self.predictor.reset();
    }

    fn next(
        &mut self,
        model: &LanguageModel<F>,
        token: usize,
        rng: &mut StdRng,
    ) -> Result<usize, BoxError> {
        let logits = self.predictor.step(model, Input::Tokens(&[token]))?;
        SoftmaxCrossEntropy.predict(logits, self.probabilities.view_mut())?;
        let p: Array1<f64> = self.probabilities.row(0).mapv(|v| v.to_f64_lossless());
        let mut u = rng.random::<f64>() * p.sum();
        for (i, &pi) in p.iter().enumerate() {
            u -= pi;
            if u <= 0.0 {
                return Ok(i);
            }
        }
        Ok(p.len() - 1)
    }
}
