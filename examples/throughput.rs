//! Training throughput of the language model's step, the workload users time.
//!
//! By default a tanh Elman language model (vocabulary 8000, hidden 100, no biases) with
//! softmax cross-entropy summed over the batch and plain SGD (learning rate 0.005), trained
//! on synthetic sentences of uniformly drawn token ids. Batch 1 with `per_output(4)` is the
//! tutorial's setting; batch 32 with full BPTT is the throughput setting.
//!
//! `--cell lstm` or `--cell gru` times the gated character model instead: `--layers`
//! stacked cells (σ gates, tanh, both biases, PyTorch's GRU variant), a linear readout with
//! bias, cross-entropy averaged over the tokens, and Adam (learning rate 0.002) — the work
//! of `scripts/peers/gated_torch.py`. The last line printed is one JSON object.
//!
//! ```text
//! cargo run --release --example throughput -- --batch 1 --truncation per-output:4
//! cargo run --release --example throughput -- --batch 32 --truncation full --dtype f32
//! cargo run --release --example throughput -- --cell lstm --layers 2 --vocab 65 \
//!     --hidden 256 --batch 32 --seq-len 100 --truncation full
//! ```

use std::time::Instant;

use clap::{Parser, ValueEnum};
use ndarray::Array2;
use rand::{rngs::StdRng, Rng, SeedableRng};
use recur::prelude::*;
use recur::Adam;

/// Scalar type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Dtype {
    F32,
    F64,
}

/// Recurrent cell of the timed model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CellKind {
    /// Tanh Elman cell without biases, SGD, summed loss.
    Elman,
    /// LSTM cells with biases, Adam, mean loss.
    Lstm,
    /// GRU cells (reset after) with biases, Adam, mean loss.
    Gru,
}

/// Command-line settings.
#[derive(Debug, Clone, Parser)]
#[command(about = "Measure training throughput of the tutorial's language model")]
struct Config {
    /// Recurrent cell.
    #[arg(long, value_enum, default_value_t = CellKind::Elman)]
    cell: CellKind,
    /// Stacked layers of the cell.
    #[arg(long, default_value_t = 1)]
    layers: usize,
    /// Sentences per update.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Tokens per sentence.
    #[arg(long, alias = "seq", default_value_t = 20)]
    seq_len: usize,
    /// Vocabulary size (input and output).
    #[arg(long, default_value_t = 8000)]
    vocab: usize,
    /// Hidden units.
    #[arg(long, default_value_t = 100)]
    hidden: usize,
    /// `full`, `chunked:K`, `per-output:K`, `last:K`.
    #[arg(long, default_value = "per-output:4")]
    truncation: Truncation,
    /// Scalar type.
    #[arg(long, value_enum, default_value_t = Dtype::F32)]
    dtype: Dtype,
    /// Threads for the large matrix products (the recurrence stays on one thread).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Timed updates (after a warm-up of a tenth as many).
    #[arg(long, default_value_t = 200)]
    steps: usize,
    /// Seed of the weights and the synthetic data.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::parse();
    recur::core::linalg::set_threads(config.threads)?;
    let timing = match config.dtype {
        Dtype::F32 => measure::<f32>(&config)?,
        Dtype::F64 => measure::<f64>(&config)?,
    };
    let seconds = timing.total;
    let tokens = (config.steps * config.batch * config.seq_len) as f64;
    let json = serde_json::json!({
        "impl": "recur",
        "cell": format!("{:?}", config.cell).to_lowercase(),
        "layers": config.layers,
        "tokens_per_s": tokens / seconds,
        "ms_per_step": 1e3 * seconds / config.steps as f64,
        "best_ms_per_step": 1e3 * timing.fastest,
        "threads": config.threads,
        "dtype": format!("{:?}", config.dtype).to_lowercase(),
        "batch": config.batch,
        "seq_len": config.seq_len,
        "vocab": config.vocab,
        "hidden": config.hidden,
        "truncation": config.truncation.to_string(),
        "peak_rss_mb": peak_rss_mb(),
    });
    println!("{json}");
    Ok(())
}

/// Seconds taken by timed updates: all of them, and the fastest one (the figure a loaded
/// machine disturbs least).
struct Timing {
    total: f64,
    fastest: f64,
}

/// The time of `config.steps` updates of the model `config.cell` names, after a warm-up.
fn measure<F: Float>(config: &Config) -> recur::Result<Timing> {
    let mut rng = StdRng::seed_from_u64(config.seed);
    let (vocab, hidden) = (config.vocab, config.hidden);
    let layers =
        |first: usize| (0..config.layers).map(move |i| if i == 0 { first } else { hidden });
    let gated_readout = LinearConfig::new(hidden, vocab).with_bias(true);
    let adam = || {
        Adam::new(
            F::from_f64_lossy(0.002),
            F::from_f64_lossy(0.9),
            F::from_f64_lossy(0.999),
            F::from_f64_lossy(1e-8),
        )
    };
    match config.cell {
        CellKind::Elman if config.layers == 1 => {
            let cell = ElmanConfig::new(vocab, hidden).init::<F, _>(Tanh, &mut rng)?;
            let readout = LinearConfig::new(hidden, vocab).init(&mut rng)?;
            let sgd = Box::new(Sgd::new(F::from_f64_lossy(0.005))?);
            time_updates(config, Model::new(cell, readout)?, sgd, Reduction::Sum, rng)
        }
        CellKind::Elman => {
            let cells = layers(vocab)
                .map(|input| ElmanConfig::new(input, hidden).init::<F, _>(Tanh, &mut rng))
                .collect::<recur::Result<Vec<_>>>()?;
            let readout = LinearConfig::new(hidden, vocab).init(&mut rng)?;
            let sgd = Box::new(Sgd::new(F::from_f64_lossy(0.005))?);
            time_updates(
                config,
                Model::new(Stack::new(cells)?, readout)?,
                sgd,
                Reduction::Sum,
                rng,
            )
        }
        CellKind::Lstm => {
            let cells = layers(vocab)
                .map(|input| {
                    LstmConfig::new(input, hidden).init::<F, _, _>(Sigmoid, Tanh, &mut rng)
                })
                .collect::<recur::Result<Vec<_>>>()?;
            let readout = gated_readout.init(&mut rng)?;
            let model = Model::new(Stack::new(cells)?, readout)?;
            time_updates(config, model, Box::new(adam()?), Reduction::Mean, rng)
        }
        CellKind::Gru => {
            let cells = layers(vocab)
                .map(|input| GruConfig::new(input, hidden).init::<F, _, _>(Sigmoid, Tanh, &mut rng))
                .collect::<recur::Result<Vec<_>>>()?;
            let readout = gated_readout.init(&mut rng)?;
            let model = Model::new(Stack::new(cells)?, readout)?;
            time_updates(config, model, Box::new(adam()?), Reduction::Mean, rng)
        }
    }
}

/// The time of `config.steps` updates of `model` on a pool of synthetic batches drawn from
/// `rng`, after a warm-up of a tenth as many.
fn time_updates<F: Float, C: Cell<F>>(
    config: &Config,
    mut model: Model<F, C>,
    optimizer: Box<dyn Optimizer<F>>,
    reduction: Reduction,
    mut rng: StdRng,
) -> recur::Result<Timing> {
    let mut trainer = Trainer::new(&model, config.truncation, reduction, optimizer);
    // A pool of distinct batches, cycled, so data generation stays out of the timing.
    let shape = (config.seq_len, config.batch);
    let pool: Vec<(Array2<usize>, Array2<usize>)> = (0..16)
        .map(|_| {
            let x = Array2::from_shape_fn(shape, |_| rng.random_range(0..config.vocab));
            let y = Array2::from_shape_fn(shape, |_| rng.random_range(0..config.vocab));
            (x, y)
        })
        .collect();
    let mut step = |i: usize| -> recur::Result<()> {
        let (x, y) = &pool[i % pool.len()];
        let batch = SeqBatch {
            inputs: SeqInput::Tokens(x.view()),
            targets: SeqTargets::Classes(y.view()),
        };
        trainer.train_batch(&mut model, &SoftmaxCrossEntropy, batch, None)?;
        Ok(())
    };
    for i in 0..config.steps.div_ceil(10) {
        step(i)?;
    }
    let started = Instant::now();
    let mut fastest = f64::INFINITY;
    for i in 0..config.steps {
        let update = Instant::now();
        step(i)?;
        fastest = fastest.min(update.elapsed().as_secs_f64());
    }
    let total = started.elapsed().as_secs_f64();
    Ok(Timing { total, fastest })
}

/// Peak resident memory of this process in MB (VmHWM), where /proc is available.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
