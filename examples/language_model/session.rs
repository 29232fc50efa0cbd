//! A model with its optimizer and where its training stands: built fresh, restored from a
//! checkpoint, or saved to one.

use std::collections::BTreeMap;
use std::path::Path;

use rand::{rngs::StdRng, SeedableRng};
use recur::io::Checkpoint;
use recur::optim::Schedule;
use recur::prelude::*;
use recur::RunState;
use serde::{Deserialize, Serialize};

use super::config::{Config, Dtype, Level};
use super::guard::Settings;
use super::network::{Build, Shape};
use super::text::Vocab;
use super::BoxError;

/// The language model: the cell `--cell` and `--layers` chose, and a linear readout.
pub type LanguageModel<F, C> = Model<F, C>;

/// What a checkpoint holds besides the weights and the optimizer: the settings that shape
/// the model and where the run stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Progress {
    /// Word or character level.
    pub level: Level,
    /// Scalar type.
    pub dtype: Dtype,
    /// Cell, layers and hidden units.
    #[serde(flatten)]
    pub shape: Shape,
    /// The run's seed.
    pub seed: u64,
    /// Counters, position in the data, evaluations, schedule.
    pub run: RunState,
    /// What decides the data (absent from older checkpoints: not checked on resume).
    #[serde(default)]
    pub settings: Option<Settings>,
}

/// A model, its optimizer and its progress.
pub struct Session<F: Float, C: Cell<F>> {
    /// The model.
    pub model: LanguageModel<F, C>,
    /// The optimizer.
    pub optimizer: Box<dyn Optimizer<F>>,
    /// Where the run stands.
    pub progress: Progress,
}

/// A new model of `shape` for `vocab_size` ids, its cells from `build`, seeded by `--seed`.
pub fn fresh<F: Float, B: Build<F>>(
    config: &Config,
    shape: Shape,
    build: B,
    vocab_size: usize,
) -> Result<Session<F, B::Cell>, BoxError> {
    let mut rng = StdRng::seed_from_u64(config.seed);
    let cell = build.build(vocab_size, shape.hidden, &mut rng)?;
    let readout = LinearConfig::new(shape.hidden, vocab_size).init(&mut rng)?;
    let optimizer = super::guard::optimizer(config)?;
    // The schedule is set when the run's length is known (`--schedule cosine` spans it).
    let progress = Progress {
        level: config.level,
        dtype: config.dtype,
        shape,
        seed: config.seed,
        run: RunState::with_schedule(Schedule::Constant),
        settings: Some(Settings::of(config)?),
    };
    Ok(Session {
        model: Model::new(cell, readout)?,
        optimizer: optimizer.build()?,
        progress,
    })
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

/// The vocabulary saved in a checkpoint.
pub fn saved_vocab<F>(checkpoint: &Checkpoint<F>) -> Result<Vocab, BoxError> {
    Ok(serde_json::from_str(metadata(checkpoint, "vocab")?)?)
}

/// The progress saved in a checkpoint: the model's shape and where the run stands.
pub fn saved_progress<F>(checkpoint: &Checkpoint<F>) -> Result<Progress, BoxError> {
    Ok(serde_json::from_str(metadata(checkpoint, "progress")?)?)
}

/// The model, optimizer and progress saved in a checkpoint; `build` makes cells of the
/// checkpoint's shape.
pub fn restore<F: Float, B: Build<F>>(
    config: &Config,
    checkpoint: &Checkpoint<F>,
    build: B,
    vocab_size: usize,
) -> Result<Session<F, B::Cell>, BoxError> {
    let progress = saved_progress(checkpoint)?;
    if progress.level != config.level {
        return Err(super::errors::bad(format!(
            "the checkpoint holds a {}-level model, not {}-level; leave --level out to resume it",
            format!("{:?}", progress.level).to_lowercase(),
            format!("{:?}", config.level).to_lowercase()
        )));
    }
    let mut session = fresh(config, progress.shape, build, vocab_size)?;
    checkpoint.restore(&mut session.model)?;
    session.optimizer = checkpoint
        .optimizer
        .clone()
        .ok_or("the checkpoint holds no optimizer state")?
        .into_optimizer()?;
    if let Some(given) = config.optimizer {
        let lr = F::from_f64_lossy(given.learning_rate());
        session.optimizer.set_learning_rate(lr)?;
    }
    session.progress = progress;
    Ok(session)
}

/// The weights of a checkpoint in a model of the checkpoint's shape, for generation
/// only: no optimizer, no progress, whatever the level flags say.
pub fn weights<F: Float, B: Build<F>>(
    checkpoint: &Checkpoint<F>,
    build: B,
    vocab_size: usize,
) -> Result<LanguageModel<F, B::Cell>, BoxError> {
    let shape = saved_progress(checkpoint)?.shape;
    // Any initial weights do: every one is overwritten.
    let mut rng = StdRng::seed_from_u64(0);
    let cell = build.build(vocab_size, shape.hidden, &mut rng)?;
    let readout = LinearConfig::new(shape.hidden, vocab_size).init(&mut rng)?;
    let mut model = Model::new(cell, readout)?;
    checkpoint.restore(&mut model)?;
    Ok(model)
}

/// Saves the session (atomically) with its vocabulary.
pub fn save<F: Float>(
    path: &Path,
    params: &dyn ParamSet<F>,
    optimizer: &dyn Optimizer<F>,
    progress: &Progress,
    vocab: &Vocab,
) -> Result<(), BoxError> {
    let mut metadata = BTreeMap::new();
    metadata.insert("progress".to_owned(), serde_json::to_string(progress)?);
    metadata.insert("vocab".to_owned(), serde_json::to_string(vocab)?);
    Checkpoint::capture(params, Some(optimizer.state()), metadata).save(path)?;
    Ok(())
}
