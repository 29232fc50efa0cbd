//! # Binary addition: a sigmoid RNN learns to add, one bit at a time
//!
//! The classic teaching program: two numbers below 128 are written in binary and fed to a
//! recurrent network least-significant bit first, one pair of bits `[a_t, b_t]` per time
//! step; at every step the network must output bit `t` of `a + b`. To get it right it has to
//! learn the carry, and keep it in its hidden state from one step to the next.
//!
//! The network is built from recur's public parts only:
//! - cell: `Elman<f64, Sigmoid>`, `h_t = σ(x_t·W_xh + h_{t−1}·W_hh)`, 2 inputs, 16 hidden,
//!   no bias, weights uniform in `[−1, 1)`;
//! - readout: `Linear`, `z_t = h_t·W_hy` (16 → 1, no bias);
//! - loss: `MeanSquaredError::new(Sigmoid)`, `½(σ(z_t) − y_t)²` summed over the bits;
//! - training: full BPTT, one problem per update, plain SGD with learning rate 0.1
//!   (`Trainer::train_batch`), 10 000 problems.
//!
//! `--cell lstm` or `--cell gru` swaps the cell for an `Lstm` or a `Gru` (σ gates, tanh), and
//! `--layers N` stacks `N` cells (`Stack`), each reading the output of the one below; one
//! layer is the bare cell. Like a tanh cell, they need `--bias` (see below).
//!
//! Every 1 000 problems it prints, as the classic program does, the error `Σ_t |y_t − ŷ_t|`
//! of the current problem, the predicted and true sums as bit strings (most significant bit
//! first) and `a + b = c` with the predicted `c`. After training it adds a held-out set of
//! problems, possibly wider than the ones it was trained on (`--eval-bits 16`): the cell is
//! the same at every bit position, so a network that has learned the carry adds numbers of
//! any width.
//!
//! ## Where the classic delta line lives in recur
//!
//! The classic backward pass computes, from the last bit to the first,
//!
//! ```text
//! layer_1_delta = (future_layer_1_delta·W_hᵀ + layer_2_delta·W_1ᵀ) ⊙ σ'(layer_1)
//! ```
//!
//! recur has no such line for this network: it is one step of the engine's backward sweep,
//! the same for every cell (`crates/bptt/src/engine/sweep.rs`, `Bptt::sweep`):
//! - `layer_2_delta·W_1ᵀ` is `d_hidden`, the gradient reaching `h_t` from the output at the
//!   same step, computed for all steps at once by `Linear::backward` (`d_h = d_logits·W_hyᵀ`);
//! - `future_layer_1_delta·W_hᵀ` is the carried stack: `d_prev = dz_{t+1}·W_hhᵀ`, written by
//!   `Elman::backward_stacked` at step `t + 1`; the sweep adds `d_hidden` to it;
//! - `⊙ σ'(layer_1)` is `Elman::activation_backward`, with `Sigmoid::derivative` computed
//!   from the stored output `h_t` as `h_t(1 − h_t)`.
//!
//! The classic deltas are negated gradients (its error is `y − ŷ` and it adds its updates);
//! recur carries gradients and SGD subtracts them, which is the same step.
//! `docs/binary-addition.md` maps the line term by term.
//!
//! ```text
//! cargo run --release --example binary_addition
//! cargo run --release --example binary_addition -- --hidden 32 --eval-bits 16
//! cargo run --release --example binary_addition -- --activation tanh --bias
//! cargo run --release --example binary_addition -- --cell lstm --layers 2 --bias
//! cargo run --release --example binary_addition -- --quiet --json
//! ```

use std::fmt;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use ndarray::{Array2, Array3, ArrayView2};
use rand::{rngs::StdRng, SeedableRng};
use recur::data::{from_bits, AdditionSample, AdditionSampler};
use recur::optim::OptimizerConfig;
use recur::prelude::*;
use recur::{Error, Result, RunView};
use serde::Serialize;

/// Accuracy is reported over this many final training problems.
pub const RECENT_WINDOW: usize = 1_000;

/// The output layer and error of the classic program.
const LOSS: MeanSquaredError<Sigmoid> = MeanSquaredError::new(Sigmoid);

/// Weights start uniform in `[−1, 1)`, as in the classic program.
const INIT: Init = Init::Uniform {
    low: -1.0,
    high: 1.0,
};

/// Keep the training and evaluation problems apart from the weights' random stream.
const TRAIN_STREAM: u64 = 0x7472_6169_6e00_0001;
const EVAL_STREAM: u64 = 0x6576_616c_0000_0002;

/// The run's settings; every hyper-parameter is a flag.
#[derive(Debug, Clone, Parser)]
#[command(about = "A sigmoid RNN learns binary addition, bit by bit (the classic program).")]
pub struct Config {
    /// Training problems (one parameter update each).
    #[arg(long, default_value_t = 10_000)]
    pub iterations: usize,
    /// Hidden units of each cell.
    #[arg(long, default_value_t = 16)]
    pub hidden: usize,
    /// The recurrent cell.
    #[arg(long, value_enum, default_value_t = CellKind::Elman)]
    pub cell: CellKind,
    /// Layers of cells, each reading the output of the one below.
    #[arg(long, default_value_t = 1)]
    pub layers: usize,
    /// Learning rate; overrides the one given in --optimizer.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Seed for the weights and the problems.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Width of the training sums in bits; operands are drawn from 0..2^(bits−1).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=32))]
    pub bits: u32,
    /// Width of the held-out evaluation after training [default: --bits].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=32))]
    pub eval_bits: Option<u32>,
    /// Problems in the held-out evaluation.
    #[arg(long, default_value_t = 1_000)]
    pub eval_samples: usize,
    /// Give the cell and the readout biases. The classic network has none: with a sigmoid
    /// cell, σ(0) = ½ acts as one, but an activation with f(0) = 0 (tanh, relu, …) needs them.
    #[arg(long)]
    pub bias: bool,
    /// Activation of the Elman cell (the readout stays sigmoid: its outputs are bits; the
    /// gated cells use σ and tanh).
    #[arg(long, value_enum, default_value_t = ActivationKind::Sigmoid)]
    pub activation: ActivationKind,
    /// Update rule, e.g. `sgd:0.1`, `momentum:0.05:0.9`, `adam:0.01`.
    #[arg(long, default_value = "sgd:0.1")]
    pub optimizer: OptimizerConfig,
    /// Print a report every this many problems.
    #[arg(long, default_value_t = 1_000)]
    pub print_every: usize,
    /// Print nothing while training, nor the human-readable summary.
    #[arg(long)]
    pub quiet: bool,
    /// Print a one-line JSON summary at the end.
    #[arg(long)]
    pub json: bool,
}

impl Default for Config {
    /// The classic program's settings (the flags' defaults, so they are written once).
    fn default() -> Self {
        Config::parse_from(["binary_addition"])
    }
}

/// The recurrent cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CellKind {
    /// `Elman`, with the activation of `--activation` (the classic program).
    Elman,
    /// `Lstm`, σ gates and tanh.
    Lstm,
    /// `Gru` (PyTorch's variant), σ gates and tanh.
    Gru,
}

/// Activations the Elman cell can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ActivationKind {
    /// Logistic sigmoid, as in the classic program.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// `x / (1 + |x|)`.
    Softsign,
    /// `max(0, x)`.
    Relu,
    /// `max(0.01·x, x)`.
    LeakyRelu,
    /// `x` (a linear recurrence).
    Identity,
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Training problems.
    pub iterations: usize,
    /// Fraction of exactly right sums over the last [`RECENT_WINDOW`] training problems,
    /// each predicted before the network learned from it.
    pub recent_accuracy: f64,
    /// Width of the held-out problems.
    pub eval_bits: u32,
    /// Fraction of exactly right sums on the held-out problems.
    pub eval_accuracy: f64,
    /// Error `Σ_t |y_t − ŷ_t|` of the last report (NaN if none was due).
    pub last_error: f64,
    /// Wall time of training and evaluation, in seconds.
    pub wall_seconds: f64,
    /// The periodic reports, in order.
    #[serde(skip)]
    pub reports: Vec<Report>,
}

/// One periodic report: a training problem and what the network said before learning it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Report {
    /// Problems seen so far, this one included.
    pub iteration: usize,
    /// `Σ_t |y_t − ŷ_t|` over the bits of this problem.
    pub error: f64,
    /// First operand.
    pub a: u64,
    /// Second operand.
    pub b: u64,
    /// The true sum.
    pub sum: u64,
    /// The sum the network predicted (its outputs rounded at 0.5).
    pub predicted: u64,
    /// Width of the bit strings.
    pub bits: u32,
}

impl fmt::Display for Report {
    /// The classic program's four lines, bit strings most significant bit first.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.bits as usize;
        writeln!(f, "---- iteration {} ----", self.iteration)?;
        writeln!(f, "Error: {:.6}", self.error)?;
        writeln!(f, "Pred: {:0width$b}", self.predicted)?;
        writeln!(f, "True: {:0width$b}", self.sum)?;
        write!(f, "{} + {} = {}", self.a, self.b, self.predicted)
    }
}

fn main() -> ExitCode {
    let config = Config::parse();
    match run(&config) {
        Ok(summary) => {
            if !config.quiet {
                print_summary(&summary);
            }
            if config.json {
                let line = serde_json::to_string(&summary).expect("a summary serialises");
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("binary_addition: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_summary(summary: &Summary) {
    let window = RECENT_WINDOW.min(summary.iterations);
    println!(
        "exact sums over the last {window} problems: {:.1} %",
        100.0 * summary.recent_accuracy
    );
    println!(
        "exact sums on held-out {}-bit problems: {:.1} %",
        summary.eval_bits,
        100.0 * summary.eval_accuracy
    );
    println!("wall time: {:.3} s", summary.wall_seconds);
}

/// Trains a network as `config` says, printing reports unless `config.quiet`, then
/// evaluates it on held-out problems.
///
/// # Errors
/// [`Error::InvalidConfig`] for zero iterations, hidden units, layers, evaluation problems
/// or report interval, or an invalid width or optimizer; training errors from the engine.
pub fn run(config: &Config) -> Result<Summary> {
    check(config)?;
    // Cells are generic over their activations: one monomorphised loop per choice.
    match (config.cell, config.activation) {
        (CellKind::Lstm, _) => train_layers(config, |input, rng| {
            LstmConfig::new(input, config.hidden)
                .with_bias(config.bias)
                .with_init(INIT)
                .init(Sigmoid, Tanh, rng)
        }),
        (CellKind::Gru, _) => train_layers(config, |input, rng| {
            GruConfig::new(input, config.hidden)
                .with_bias(config.bias)
                .with_init(INIT)
                .init(Sigmoid, Tanh, rng)
        }),
        (CellKind::Elman, ActivationKind::Sigmoid) => train_elman(config, Sigmoid),
        (CellKind::Elman, ActivationKind::Tanh) => train_elman(config, Tanh),
        (CellKind::Elman, ActivationKind::Softsign) => train_elman(config, Softsign),
        (CellKind::Elman, ActivationKind::Relu) => train_elman(config, Relu),
        (CellKind::Elman, ActivationKind::LeakyRelu) => train_elman(config, LeakyRelu::default()),
        (CellKind::Elman, ActivationKind::Identity) => train_elman(config, Identity),
    }
}

/// Trains Elman cells with `activation`.
fn train_elman<A: Activation<f64> + Copy>(config: &Config, activation: A) -> Result<Summary> {
    train_layers(config, |input, rng| {
        ElmanConfig::new(input, config.hidden)
            .with_bias(config.bias)
            .with_init(INIT)
            .init(activation, rng)
    })
}

/// Trains `config.layers` cells drawn by `layer(input_size, rng)`: the bare cell for one
/// layer (its parameter names stay those of the cell), a [`Stack`] for more.
fn train_layers<C: Cell<f64>>(
    config: &Config,
    layer: impl Fn(usize, &mut StdRng) -> Result<C>,
) -> Result<Summary> {
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(config.seed);
    // Two inputs: one bit of each operand.
    let mut cells = (0..config.layers)
        .map(|l| layer(if l == 0 { 2 } else { config.hidden }, &mut rng))
        .collect::<Result<Vec<C>>>()?;
    if cells.len() == 1 {
        let cell = cells.remove(0);
        train(config, cell, rng, started)
    } else {
        train(config, Stack::new(cells)?, rng, started)
    }
}

/// What clap checks for the command line, checked again for callers of [`run`].
fn check(config: &Config) -> Result<()> {
    let at_least_one = [
        ("iterations", config.iterations),
        ("hidden", config.hidden),
        ("layers", config.layers),
        ("eval_samples", config.eval_samples),
        ("print_every", config.print_every),
    ];
    for (name, value) in at_least_one {
        if value == 0 {
            return Err(Error::config(name, "must be at least 1"));
        }
    }
    Ok(())
}

/// Adds a one-unit readout to `cell` (drawing its weights after the cell's, from `rng`),
/// trains the network and evaluates it; `started` is when the run began.
fn train<C: Cell<f64>>(
    config: &Config,
    cell: C,
    mut rng: StdRng,
    started: Instant,
) -> Result<Summary> {
    let readout = LinearConfig::new(config.hidden, 1)
        .with_bias(config.bias)
        .with_init(INIT)
        .init(&mut rng)?;
    let mut network = Model::new(cell, readout)?;
    let mut optimizer = config.optimizer.build::<f64>()?;
    if let Some(lr) = config.lr {
        optimizer.set_learning_rate(lr)?;
    }
    // Full BPTT over the bits, summed loss, one update per problem: the classic schedule.
    let mut trainer = Trainer::new(&network, Truncation::full(), Reduction::Sum, optimizer);
    let tally = learn(config, &mut network, &mut trainer)?;
    let eval_bits = config.eval_bits.unwrap_or(config.bits);
    let eval_accuracy = evaluate(&network, eval_bits, config)?;
    Ok(Summary {
        iterations: config.iterations,
        recent_accuracy: tally.recent_correct as f64 / tally.recent_count() as f64,
        eval_bits,
        eval_accuracy,
        last_error: tally.reports.last().map_or(f64::NAN, |r| r.error),
        wall_seconds: started.elapsed().as_secs_f64(),
        reports: tally.reports,
    })
}

/// Training with the shared loop: one epoch of `iterations` problems, one update each,
/// and an observer that prints the classic report and counts the last problems' sums.
fn learn<C: Cell<f64>>(
    config: &Config,
    network: &mut Model<f64, C>,
    trainer: &mut Trainer<f64, C>,
) -> Result<Tally> {
    let mut sampler = sampler(config.bits, config.seed ^ TRAIN_STREAM)?;
    let problems: Vec<AdditionSample> = (0..config.iterations).map(|_| sampler.sample()).collect();
    let (x, y) = buffers(config.bits, 1);
    let mut data = Problems {
        problems: &problems,
        x,
        y,
    };
    let mut reporter = Reporter {
        config,
        problems: &problems,
        tally: Tally::new(config.iterations),
    };
    let fit = Fit::epochs(1).observe(&mut reporter);
    trainer.fit(network, &LOSS, &mut data, fit, &mut RunState::default())?;
    Ok(reporter.tally)
}

/// The training problems as the loop's batches: problem `i` is batch `i`.
struct Problems<'a> {
    problems: &'a [AdditionSample],
    x: Array3<f64>,
    y: Array3<f64>,
}

impl Batches<f64> for Problems<'_> {
    fn len(&self) -> usize {
        self.problems.len()
    }

    fn get(&mut self, _epoch: usize, index: usize) -> Result<SeqBatch<'_, f64>> {
        let problem = self.problems.get(index).ok_or_else(|| {
            Error::config("problem index", format!("{index} is past the last problem"))
        })?;
        encode(std::slice::from_ref(problem), &mut self.x, &mut self.y);
        Ok(SeqBatch {
            inputs: SeqInput::Dense(self.x.view()),
            targets: SeqTargets::Dense(self.y.view()),
        })
    }
}

/// Prints the classic report every `print_every` problems and counts exact sums over the
/// last ones.
struct Reporter<'a> {
    config: &'a Config,
    problems: &'a [AdditionSample],
    tally: Tally,
}

impl Observer<f64> for Reporter<'_> {
    fn on_update(&mut self, view: &RunView<'_, f64>, update: &UpdateReport) -> Result<Control> {
        let i = (update.update - 1) as usize;
        let due = (i + 1).is_multiple_of(self.config.print_every);
        if due || self.tally.is_recent(i) {
            // The logits of the pass the update was computed from: the prediction before
            // learning, as in the classic program, so accuracy is on unseen data.
            let logits = view
                .logits
                .ok_or_else(|| Error::config("logits", "missing"))?;
            let y_hat = outputs(logits, self.config.bits as usize, 1)?;
            let seen = report(i + 1, &self.problems[i], y_hat.view())?;
            if due && !self.config.quiet {
                println!("{seen}");
            }
            self.tally.record(i, seen, due);
        }
        Ok(Control::Continue)
    }
}

/// Exact sums over the last [`RECENT_WINDOW`] problems, and the periodic reports.
struct Tally {
    recent_from: usize,
    iterations: usize,
    recent_correct: usize,
    reports: Vec<Report>,
}

impl Tally {
    fn new(iterations: usize) -> Self {
        Tally {
            recent_from: iterations.saturating_sub(RECENT_WINDOW),
            iterations,
            recent_correct: 0,
            reports: Vec::new(),
        }
    }

    fn is_recent(&self, i: usize) -> bool {
        i >= self.recent_from
    }

    fn recent_count(&self) -> usize {
        self.iterations - self.recent_from
    }

    /// Counts problem `i` if it is recent; keeps it as a report if one was `due`.
    fn record(&mut self, i: usize, seen: Report, due: bool) {
        if self.is_recent(i) && seen.predicted == seen.sum {
            self.recent_correct += 1;
        }
        if due {
            self.reports.push(seen);
        }
    }
}

/// A seeded source of `bits`-wide problems.
fn sampler(bits: u32, seed: u64) -> Result<AdditionSampler> {
    AdditionSampler::new(bits, seed).map_err(|e| Error::config("bits", e.to_string()))
}

/// Zeroed time-major inputs `[bits, batch, 2]` and targets `[bits, batch, 1]`.
fn buffers(bits: u32, batch: usize) -> (Array3<f64>, Array3<f64>) {
    let steps = bits as usize;
    (
        Array3::zeros((steps, batch, 2)),
        Array3::zeros((steps, batch, 1)),
    )
}

/// Writes problem `b` into column `b` of the buffers: step `t` holds bit `t` of each operand
/// as input and bit `t` of the sum as target.
fn encode(problems: &[AdditionSample], x: &mut Array3<f64>, y: &mut Array3<f64>) {
    for (b, problem) in problems.iter().enumerate() {
        for (t, ([a_bit, b_bit], sum_bit)) in problem.steps().enumerate() {
            x[[t, b, 0]] = a_bit.into();
            x[[t, b, 1]] = b_bit.into();
            y[[t, b, 0]] = sum_bit.into();
        }
    }
}

/// The outputs `ŷ = σ(z)` as `[bits, batch]`, from logits with one row per step and problem
/// (row `t·batch + b`).
fn outputs(logits: ArrayView2<'_, f64>, bits: usize, batch: usize) -> Result<Array2<f64>> {
    let mut y_hat = Array2::zeros((bits * batch, 1));
    LOSS.predict(logits, y_hat.view_mut())?;
    Ok(y_hat
        .into_shape_with_order((bits, batch))
        .expect("rows are t·batch + b"))
}

/// The number the network wrote in column `b` of its outputs (rounded at 0.5).
fn read_sum(y_hat: ArrayView2<'_, f64>, b: usize) -> Result<u64> {
    let bits: Vec<f64> = y_hat.column(b).to_vec();
    from_bits(&bits).map_err(|e| Error::config("network output", e.to_string()))
}

/// What the network said about `problem`, given its outputs `y_hat` (`[bits, 1]`).
fn report(
    iteration: usize,
    problem: &AdditionSample,
    y_hat: ArrayView2<'_, f64>,
) -> Result<Report> {
    let error = problem
        .sum_bits
        .iter()
        .zip(y_hat.column(0))
        .map(|(&y, &y_hat)| (f64::from(y) - y_hat).abs())
        .sum();
    Ok(Report {
        iteration,
        error,
        a: problem.a,
        b: problem.b,
        sum: problem.sum,
        predicted: read_sum(y_hat, 0)?,
        bits: problem.sum_bits.len() as u32,
    })
}

/// Fraction of `config.eval_samples` fresh `bits`-wide problems added exactly, all run as
/// one batch.
fn evaluate<C: Cell<f64>>(network: &Model<f64, C>, bits: u32, config: &Config) -> Result<f64> {
    let problems: Vec<AdditionSample> = sampler(bits, config.seed ^ EVAL_STREAM)?
        .take(config.eval_samples)
        .collect();
    let (mut x, mut y) = buffers(bits, problems.len());
    encode(&problems, &mut x, &mut y);
    // Forward pass and loss only; the engine keeps the logits of every step.
    let mut engine = Bptt::new(Truncation::full(), Reduction::Sum);
    let batch = SeqBatch {
        inputs: SeqInput::Dense(x.view()),
        targets: SeqTargets::Dense(y.view()),
    };
    engine.evaluate(network, &LOSS, batch, None)?;
    let y_hat = outputs(engine.logits(), bits as usize, problems.len())?;
    let mut correct = 0;
    for (b, problem) in problems.iter().enumerate() {
        if read_sum(y_hat.view(), b)? == problem.sum {
            correct += 1;
        }
    }
    Ok(correct as f64 / problems.len() as f64)
}
