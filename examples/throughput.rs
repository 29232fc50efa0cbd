//! Training throughput of the language model's step, the workload users time.
//!
//! A tanh Elman language model (vocabulary 8000, hidden 100, no biases) with softmax
//! cross-entropy and plain SGD (learning rate 0.005), trained on synthetic sentences of
//! uniformly drawn token ids. Batch 1 with `per_output(4)` is the tutorial's setting; batch 32
//! with full BPTT is the throughput setting. The last line printed is one JSON object.
//!
//! ```text
//! cargo run --release --example throughput -- --batch 1 --truncation per-output:4
//! cargo run --release --example throughput -- --batch 32 --truncation full --dtype f32
//! ```

use std::time::Instant;

use clap::{Parser, ValueEnum};
use ndarray::Array2;
use rand::{rngs::StdRng, Rng, SeedableRng};
use recur::prelude::*;

/// Scalar type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Dtype {
    F32,
    F64,
}

/// Command-line settings.
#[derive(Debug, Clone, Parser)]
#[command(about = "Measure training throughput of the tutorial's language model")]
struct Config {
    /// Sentences per update.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Tokens per sentence.
    #[arg(long, default_value_t = 20)]
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
    let seconds = match config.dtype {
        Dtype::F32 => measure::<f32>(&config)?,
        Dtype::F64 => measure::<f64>(&config)?,
    };
    let tokens = (config.steps * config.batch * config.seq_len) as f64;
    let json = serde_json::json!({
        "tokens_per_s": tokens / seconds,
        "ms_per_step": 1e3 * seconds / config.steps as f64,
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

/// Seconds taken by `config.steps` updates, after a warm-up.
fn measure<F: Float>(config: &Config) -> recur::Result<f64> {
    let mut rng = StdRng::seed_from_u64(config.seed);
    let cell = ElmanConfig::new(config.vocab, config.hidden).init::<F, _>(Tanh, &mut rng)?;
    let readout = LinearConfig::new(config.hidden, config.vocab).init(&mut rng)?;
    let mut model = Model::new(cell, readout)?;
    let optimizer = Box::new(Sgd::new(F::from_f64_lossy(0.005))?);
    let mut trainer = Trainer::new(&model, config.truncation, Reduction::Sum, optimizer);
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
    for i in 0..config.steps {
        step(i)?;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Peak resident memory of this process in MB (VmHWM), where /proc is available.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
