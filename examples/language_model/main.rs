//! A language model in the style of the classic tanh-RNN tutorial, done with recur.
//!
//! **Character level (default).** The vocabulary is the characters seen. Training
//! streams over the whole text with the hidden state carried on, back-propagating every 25
//! characters (`chunked:25`), with Adagrad and clipping, in the style of the classic minimal
//! character RNN; the model is an LSTM of 128 units. On the embedded documentation it
//! trains in well under a minute and writes text that looks like the docs.
//!
//! **Word level (`--level word`).** Sentences are tokenised, wrapped in `SENTENCE_START` /
//! `SENTENCE_END`, and the most frequent words (default 8000, capped at what the corpus has)
//! form the vocabulary; the rest become `UNKNOWN_TOKEN`. The model is `Elman<F, Tanh>` (`--cell`
//! and `--layers` choose an LSTM, a GRU or a stack) with
//! hidden size 100 and a linear readout with softmax cross-entropy. It is trained with plain
//! SGD (learning rate 0.005) on one sentence per update, `per_output(4)` truncation (the
//! tutorial's `bptt_truncate = 4`) and summed losses, and the learning rate is halved when the
//! validation loss goes up. At the end it plots the loss curves and generates sentences.
//!
//! The last 10 % of the data (`--valid-fraction`) is held out: never trained on, it gives
//! the validation loss and perplexity of every evaluation.
//!
//! The program is the shared training loop (`Trainer::fit`) with observers: a progress
//! bar (`progress.rs`), the CSV log (`--log`), early stopping (`--patience`), the best
//! checkpoint (`best.rs`, `--save-best`), a stop after `--stop-after` updates and the end of
//! a `--time-budget`. Each file
//! is one concept: `config.rs` (the command line), `text.rs` (corpus, vocabulary, split),
//! `session.rs` (model, optimizer, checkpoints), `schedule.rs` (`--schedule`),
//! `progress.rs`, `plot.rs`, `generate.rs` (texts) and `sample.rs` (drawing one token),
//! `outputs.rs` (log, export, the closing note). Every flag: docs/language-model.md.
//!
//! ```text
//! cargo run --release --example language_model                       # embedded docs, characters
//! cargo run --release --example language_model -- --level word --corpus ../shared/data/reddit-comments-2015-08.csv --vocab 8000
//! cargo run --release --example language_model -- --corpus ../shared/data/tinyshakespeare.txt --save lm.safetensors
//! cargo run --release --example language_model -- --resume lm.safetensors --generate-only --prompt "ROMEO:" --temperature 0.8
//! ```

use std::error::Error as StdError;
use std::time::Instant;

use clap::{CommandFactory, FromArgMatches};
use recur::io::Checkpoint;
use recur::prelude::*;
use recur::{
    mean_loss, Deadline, EarlyStop, EvaluateEvery, Fit, Observer, StopAfter, TokenBatches,
};
use serde::Serialize;

mod best;
mod config;
pub mod errors;
mod generate;
mod guard;
mod network;
mod outputs;
mod plot;
mod progress;
mod safety;
mod sample;
mod schedule;
mod session;
pub mod text;
// The log-axis helpers serve the truncation study, which shares this file.
#[allow(dead_code)]
mod ticks;

pub use config::{Config, Dtype, Level};

use network::{Build, Job};
pub use safety::{parse_from, Safety};

/// Errors of this program: the library's, the data crate's, I/O, JSON, plotting.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Loss per token before training (validation, or training data without a validation
    /// share), or at the first evaluation of a resumed run.
    pub initial_loss: f64,
    /// The same loss after training, evaluated anew.
    pub final_loss: f64,
    /// Every evaluation of the run, resumed parts included.
    pub evaluations: Vec<recur::Evaluation>,
    /// Updates made in total (including those before a resume).
    pub updates: u64,
    /// Training tokens per second of this run.
    pub tokens_per_s: f64,
    /// Generated sentences or samples.
    pub generated: Vec<String>,
    /// Why the run stopped early (Ctrl-C, divergence), if it did.
    pub stopped: Option<String>,
}

fn main() {
    let matches = Config::command().get_matches();
    let config = Config::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let safety = Safety::from_command_line(&matches).unwrap_or_else(|e| {
        eprintln!("error: cannot watch for Ctrl-C: {e}");
        std::process::exit(1);
    });
    match run_with(&config, safety) {
        Ok(Summary {
            stopped: Some(why), ..
        }) => {
            eprintln!("{why}");
            std::process::exit(130);
        }
        Ok(summary) => {
            for line in &summary.generated {
                println!("{line}");
            }
            outputs::announce(&config, &summary.evaluations);
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
            let (message, code) = errors::explain(&e);
            eprintln!("error: {message}");
            std::process::exit(code);
        }
    }
}

/// Runs the whole program for `config`.
///
/// # Errors
/// Bad input (missing file, empty corpus, CSV without `body`, a checkpoint of another
/// shape or vocabulary) and training failures, as errors.
pub fn run(config: &Config) -> Result<Summary, BoxError> {
    run_with(config, Safety::default())
}

/// [`run`] watched by `safety`: checks every output path and, on `--resume`, the flags
/// against the checkpoint before training; stops cleanly (saving) when interrupted.
///
/// # Errors
/// As [`run`]; conflicting resume flags, unwritable outputs.
pub fn run_with(config: &Config, mut safety: Safety) -> Result<Summary, BoxError> {
    guard::check_outputs(config)?;
    if let Some(n) = config.threads {
        recur::core::linalg::set_threads(n)?;
    }
    let resolved;
    let config = match &config.resume {
        Some(path) => {
            let notes;
            (resolved, notes) = guard::resolve(config, &safety.given, &guard::peek(path)?)?;
            if !config.quiet {
                notes.iter().for_each(|n| println!("resuming: {n}"));
            }
            &resolved
        }
        None => config,
    };
    match config.dtype {
        Dtype::F32 => run_typed::<f32>(config, &mut safety),
        Dtype::F64 => run_typed::<f64>(config, &mut safety),
    }
}

fn run_typed<F: Float>(config: &Config, safety: &mut Safety) -> Result<Summary, BoxError> {
    let resumed = config
        .resume
        .as_deref()
        .map(Checkpoint::<F>::load)
        .transpose()?;
    let shape = match &resumed {
        Some(checkpoint) => session::saved_progress(checkpoint)?.shape,
        None => config.shape(),
    };
    network::dispatch(
        shape,
        Program {
            config,
            resumed,
            safety,
        },
    )
}

/// The program once the scalar type is known, waiting for the cell type.
struct Program<'a, F> {
    config: &'a Config,
    resumed: Option<Checkpoint<F>>,
    safety: &'a mut Safety,
}

impl<F: Float> Job<F> for Program<'_, F> {
    type Output = Result<Summary, BoxError>;

    fn run<B: Build<F>>(self, build: B) -> Self::Output {
        run_model(self.config, self.resumed, build, self.safety)
    }
}

fn run_model<F: Float, B: Build<F>>(
    config: &Config,
    resumed: Option<Checkpoint<F>>,
    build: B,
    safety: &mut Safety,
) -> Result<Summary, BoxError> {
    if config.generate_only {
        let checkpoint = resumed.ok_or("--generate-only needs --resume CHECKPOINT")?;
        return generate_only(config, &checkpoint, build);
    }
    let documents = text::load(config)?;
    let vocab = match &resumed {
        Some(checkpoint) => session::saved_vocab(checkpoint)?,
        None => text::vocabulary(config, &documents)?,
    };
    let mut split = text::split(config, &documents, &vocab)?;
    let session::Session {
        mut model,
        optimizer,
        mut progress,
    } = match &resumed {
        Some(checkpoint) => session::restore(config, checkpoint, build, vocab.len())?,
        None => session::fresh(config, config.shape(), build, vocab.len())?,
    };
    let truncation = guard::truncation(config)?;
    let default_clip = match config.level {
        Level::Word => Clip::None,
        Level::Char => Clip::Value(5.0),
    };
    let mut trainer = Trainer::new(&model, truncation, config.reduction.into(), optimizer)
        .with_clip(config.clip.unwrap_or(default_clip));

    let started = Instant::now();
    let tokens_before = progress.run.tokens;
    let mut best = config
        .save_best
        .clone()
        .map(|path| best::SaveBest::new(path, progress.clone(), &vocab));
    let stopped = train(
        config,
        &mut trainer,
        &mut model,
        &mut progress,
        &mut split,
        (safety, &vocab),
        best.as_mut().map(|b| b as &mut dyn Observer<F>),
    )?;
    let seconds = started.elapsed().as_secs_f64();
    if let Some(why) = stopped {
        return stop_early(config, why, &model, trainer.optimizer(), &progress, &vocab);
    }

    let held_out = !Batches::<F>::is_empty(&split.valid);
    let measured = if held_out {
        &mut split.valid
    } else {
        &mut split.train
    };
    let mut engine = Bptt::new(Truncation::full(), config.reduction.into());
    let final_loss = mean_loss(&mut engine, &model, &SoftmaxCrossEntropy, measured)?;
    if let Some(path) = &config.save {
        session::save(path, &model, trainer.optimizer(), &progress, &vocab)?;
        if !config.quiet {
            println!("saved checkpoint to {}", path.display());
        }
    }
    if let Some(path) = &config.export {
        outputs::export(path, &model, &vocab, &progress.shape)?;
    }
    plot::loss_curves(&config.plot, &progress.run.evaluations)?;
    let sample_seed = config.sample_seed.unwrap_or(progress.seed.wrapping_add(1));
    let generated = generate::generate(config, &model, &vocab, sample_seed)?;
    let evaluations = progress.run.evaluations.clone();
    Ok(Summary {
        vocab_size: vocab.len(),
        initial_loss: evaluations
            .first()
            .and_then(|e| e.watched())
            .unwrap_or(final_loss),
        final_loss,
        evaluations,
        updates: trainer.updates(),
        tokens_per_s: (trainer.tokens() - tokens_before) as f64 / seconds.max(1e-9),
        generated,
        stopped: None,
    })
}

/// Saves (to `--save`) a run stopped by Ctrl-C or divergence, and says how to continue.
fn stop_early<F: Float, C: Cell<F>>(
    config: &Config,
    why: String,
    model: &session::LanguageModel<F, C>,
    optimizer: &dyn Optimizer<F>,
    progress: &session::Progress,
    vocab: &text::Vocab,
) -> Result<Summary, BoxError> {
    let why = match &config.save {
        Some(path) => {
            session::save(path, model, optimizer, progress, vocab)?;
            format!(
                "{why}: saved {0}; continue with --resume {0}",
                path.display()
            )
        }
        None => format!("{why}: nothing saved (no --save)"),
    };
    let evaluations = progress.run.evaluations.clone();
    let last = evaluations
        .last()
        .and_then(|e| e.watched())
        .unwrap_or(f64::NAN);
    Ok(Summary {
        vocab_size: vocab.len(),
        initial_loss: evaluations
            .first()
            .and_then(|e| e.watched())
            .unwrap_or(last),
        final_loss: last,
        evaluations,
        updates: progress.run.updates,
        tokens_per_s: 0.0,
        generated: Vec::new(),
        stopped: Some(why),
    })
}

/// Samples from a checkpoint without training or reading a corpus: its vocabulary, its
/// shape, its seed (unless `--sample-seed`).
fn generate_only<F: Float, B: Build<F>>(
    config: &Config,
    checkpoint: &Checkpoint<F>,
    build: B,
) -> Result<Summary, BoxError> {
    let vocab = session::saved_vocab(checkpoint)?;
    let progress = session::saved_progress(checkpoint)?;
    let model = session::weights(checkpoint, build, vocab.len())?;
    let seed = config.sample_seed.unwrap_or(progress.seed.wrapping_add(1));
    let generated = generate::generate(config, &model, &vocab, seed)?;
    let last = progress
        .run
        .evaluations
        .last()
        .and_then(recur::Evaluation::watched);
    Ok(Summary {
        vocab_size: vocab.len(),
        initial_loss: progress
            .run
            .evaluations
            .first()
            .and_then(recur::Evaluation::watched)
            .unwrap_or(f64::NAN),
        final_loss: last.unwrap_or(f64::NAN),
        evaluations: progress.run.evaluations,
        updates: progress.run.updates,
        tokens_per_s: 0.0,
        generated,
        stopped: None,
    })
}

/// Trains with the shared loop: validation on the held-out split, the schedule, a
/// progress bar, the log, early stopping, the best checkpoint (`best`), a stop after
/// `--stop-after` updates, the end of `--time-budget`, saves every `--save-every` updates,
/// and the stops of
/// [`safety::Stops`]. Returns why the run stopped early, if it did.
fn train<F: Float, C: Cell<F>>(
    config: &Config,
    trainer: &mut Trainer<F, C>,
    model: &mut session::LanguageModel<F, C>,
    progress_state: &mut session::Progress,
    split: &mut text::Split,
    (safety, vocab): (&mut Safety, &text::Vocab),
    best: Option<&mut dyn Observer<F>>,
) -> Result<Option<String>, BoxError> {
    let template = progress_state.clone();
    let run = &mut progress_state.run;
    let updates_per_epoch = match config.level {
        Level::Word => Batches::<F>::len(&split.train) as u64,
        Level::Char => {
            let stride = trainer.engine().truncation().stride().ok_or(
                "character-level streaming needs a truncation with a stride (chunked, per-output or bptt:H:H')",
            )?;
            split.train.tokens().div_ceil(stride) as u64
        }
    };
    let unit = match config.level {
        Level::Word => "word",
        Level::Char => "char",
    };
    let total = updates_per_epoch * config.epochs() as u64;
    if run.evaluations.is_empty() {
        run.schedule = config.schedule.build(total)?;
    }
    let mut progress = progress::Progress::new(total, run.updates, run.tokens, unit, config.quiet);
    let mut stop = StopAfter(config.stop_after.unwrap_or(u64::MAX));
    let mut log = outputs::open_log(config, run)?;
    let mut patience = config.patience.map(EarlyStop::new).transpose()?;
    let evaluate_every = match config.evaluate_every {
        0 => EvaluateEvery::Epoch,
        n => EvaluateEvery::Updates(n),
    };
    let mut stops = safety::Stops::new(safety, config.stop_on_divergence);
    let mut saves = recur::Every::updates(config.save_every.unwrap_or(u64::MAX), |view| {
        periodic_save(config, &template, view, vocab)
    })?;
    // Made last, so that the budget counts from the start of the loop.
    let mut deadline = config.time_budget.map(Deadline::new);
    let mut fit = Fit::epochs(config.epochs())
        .evaluate_every(evaluate_every)
        .observe(&mut progress as &mut dyn Observer<F>)
        .observe(&mut stop)
        .observe(&mut stops)
        .observe(&mut saves);
    if let Some(log) = log.as_mut() {
        fit = fit.observe(log);
    }
    if let Some(deadline) = deadline.as_mut() {
        fit = fit.observe(deadline);
    }
    if let Some(early) = patience.as_mut() {
        fit = fit.observe(early);
    }
    if let Some(best) = best {
        fit = fit.observe(best);
    }
    if !Batches::<F>::is_empty(&split.valid) {
        fit = fit.validate_on(&mut split.valid as &mut dyn Batches<F>);
    }
    let train: &mut TokenBatches = &mut split.train;
    trainer.fit(model, &SoftmaxCrossEntropy, train, fit, run)?;
    let spent = deadline
        .as_ref()
        .and_then(|d| Some((d.budget(), d.stopped_at()?)));
    if let (Some((budget, update)), false) = (spent, config.quiet) {
        println!(
            "time budget of {budget:?} spent: training ended after update {update} of {total}"
        );
    }
    Ok(stops.reason(config.stop_on_divergence))
}

/// The `--save-every` save: the checkpoint as it stands at this update.
fn periodic_save<F: Float>(
    config: &Config,
    template: &session::Progress,
    view: &recur::RunView<'_, F>,
    vocab: &text::Vocab,
) -> recur::Result<()> {
    let Some(path) = &config.save else {
        return Ok(());
    };
    let progress = session::Progress {
        run: view.state.clone(),
        ..template.clone()
    };
    session::save(path, view.params, view.optimizer, &progress, vocab)
        .map_err(|e| recur::Error::io(path, std::io::Error::other(e.to_string())))
}
