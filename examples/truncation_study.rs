//! How much of the true gradient each truncation scheme keeps, what it costs, and how well
//! a model trains with it.
//!
//! A character-level tanh model (`Elman<f64, Tanh>` with a linear readout and softmax
//! cross-entropy) is built on a corpus tokenised by characters (default: recur's README,
//! embedded). For full BPTT and for `per-output:K`, `chunked:K` and `last:K` at every K of
//! the sweep, the study reports:
//!
//! - **fidelity**: cosine similarity and relative norm error `‖g_K − g‖ / ‖g‖` of the
//!   truncated gradient `g_K` against the full-BPTT gradient `g` of the summed loss, on the
//!   same weights (those reached by the full-BPTT training run below) and the same held-out
//!   batch, over the cell's parameters (`w_xh`, `w_hh`, `b_h`: the readout's gradient is
//!   exact under every scheme but `last`) and over the whole model;
//! - **cost**: cell backward steps (vector-Jacobian products) of the scheme, wall time per
//!   sequence of one forward + truncated backward pass, cached steps and
//!   `Bptt::workspace_bytes()` in sequence mode (all T steps cached) and, for schemes with a
//!   stride, after streaming (only the window h is cached);
//! - **training**: held-out loss per character after the same number of Adam updates from
//!   the same initial weights, every update on the same `batch × seq_len` characters (so
//!   every scheme sees the same updates *and* the same tokens).
//!
//! It prints a markdown table and writes an SVG plot (fidelity and time against K, one
//! line per scheme).
//!
//! ```text
//! cargo run --release --example truncation_study -- --quick      # a few seconds
//! cargo run --release --example truncation_study                 # about a minute
//! cargo run --release --example truncation_study -- --corpus ../shared/data/tinyshakespeare.txt
//! ```

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::Array2;
use rand::{rngs::StdRng, SeedableRng};
use recur::core::params;
use recur::data::CharVocabulary;
use recur::optim::Adam;
use recur::prelude::*;

// The language model's tick logic: a file, not a crate, as both are examples.
#[path = "language_model/ticks.rs"]
#[allow(dead_code)]
mod ticks;

/// Errors of this program: the library's, the data crate's, I/O, plotting.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// The corpus used when no `--corpus` is given: text the project owns.
const EMBEDDED_CORPUS: &str = include_str!("../README.md");

/// The model of the study.
type CharModel = Model<f64, Elman<f64, Tanh>>;

/// Command-line settings. Unset sizes take the defaults of the chosen mode (normal or
/// `--quick`), listed as `normal / quick`.
#[derive(Debug, Clone, Parser)]
#[command(about = "Gradient fidelity, cost and training loss of every truncation scheme")]
pub struct Config {
    /// A plain text file, tokenised by characters; default: recur's README (embedded).
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    /// Use only the first N characters of the corpus.
    #[arg(long)]
    pub limit: Option<usize>,
    /// A small model and a short budget: a few seconds in release mode.
    #[arg(long)]
    pub quick: bool,
    /// Hidden units [64 / 24].
    #[arg(long)]
    pub hidden: Option<usize>,
    /// Sequence length T [64 / 32].
    #[arg(long)]
    pub seq_len: Option<usize>,
    /// Sequences per batch [8 / 4].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Truncation lengths K, comma-separated [powers of two below T, then T].
    #[arg(long, value_delimiter = ',')]
    pub ks: Option<Vec<usize>>,
    /// Training budget: updates per scheme [300 / 40].
    #[arg(long)]
    pub updates: Option<usize>,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 0.005)]
    pub lr: f64,
    /// Seed of the initial weights (shared by every scheme).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where to write the SVG plot.
    #[arg(long, default_value = "target/truncation_study.svg")]
    pub plot: PathBuf,
    /// Do not write the plot.
    #[arg(long)]
    pub no_plot: bool,
}

impl Config {
    /// The settings of `--quick`, with no plot (for tests).
    pub fn quick() -> Self {
        Config::parse_from(["truncation_study", "--quick", "--no-plot"])
    }
}

/// The sizes of one run, after defaults.
#[derive(Debug, Clone)]
struct Settings {
    hidden: usize,
    seq_len: usize,
    batch: usize,
    ks: Vec<usize>,
    updates: usize,
    /// Least wall time spent timing each scheme.
    min_timing: Duration,
}

impl Settings {
    fn from_config(config: &Config) -> Result<Self, BoxError> {
        let pick = |set: Option<usize>, normal: usize, quick: usize| {
            set.unwrap_or(if config.quick { quick } else { normal })
        };
        let seq_len = pick(config.seq_len, 64, 32);
        let ks = match &config.ks {
            Some(ks) => ks.clone(),
            // Powers of two below T, then T itself (where every scheme is full BPTT).
            None => (0..)
                .map(|p| 1usize << p)
                .take_while(|&k| k < seq_len)
                .chain([seq_len])
                .collect(),
        };
        let settings = Settings {
            hidden: pick(config.hidden, 64, 24),
            seq_len,
            batch: pick(config.batch, 8, 4),
            ks,
            updates: pick(config.updates, 300, 40),
            min_timing: Duration::from_millis(if config.quick { 20 } else { 300 }),
        };
        if settings.hidden == 0 || settings.seq_len == 0 || settings.batch == 0 {
            return Err("--hidden, --seq-len and --batch must be at least 1".into());
        }
        if settings.ks.is_empty() || settings.ks.contains(&0) {
            return Err("--ks needs at least one length, each at least 1".into());
        }
        Ok(settings)
    }
}

/// A truncation scheme family of the study.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Full BPTT (no K).
    Full,
    /// `per_output(K)`: each output reaches back K steps besides its own.
    PerOutput,
    /// `chunked(K)`: cut every K steps.
    Chunked,
    /// `last(K)`: only the last K steps and their outputs.
    Last,
}

impl Scheme {
    /// The families swept over K.
    pub const TRUNCATED: [Scheme; 3] = [Scheme::PerOutput, Scheme::Chunked, Scheme::Last];

    /// Name as in [`Truncation`]'s display form.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Full => "full",
            Scheme::PerOutput => "per-output",
            Scheme::Chunked => "chunked",
            Scheme::Last => "last",
        }
    }

    fn truncation(self, k: usize) -> recur::Result<Truncation> {
        match self {
            Scheme::Full => Ok(Truncation::full()),
            Scheme::PerOutput => Truncation::per_output(k),
            Scheme::Chunked => Truncation::chunked(k),
            Scheme::Last => Truncation::last(k),
        }
    }

    /// Cell backward steps (vector-Jacobian products through one step, per sequence) of
    /// the scheme over `seq_len` steps. Per-output pays one per output and step of its
    /// window; the engine does the VJPs of one step as a single stacked product.
    pub fn backward_steps(self, k: usize, seq_len: usize) -> usize {
        match self {
            Scheme::Full | Scheme::Chunked => seq_len,
            Scheme::PerOutput => (0..seq_len).map(|t| (t + 1).min(k + 1)).sum(),
            Scheme::Last => k.min(seq_len),
        }
    }
}

/// One scheme at one truncation length.
#[derive(Debug, Clone)]
pub struct Row {
    /// Scheme family.
    pub scheme: Scheme,
    /// Truncation length K (T for full BPTT).
    pub k: usize,
    /// Sequence length T.
    pub seq_len: usize,
    /// Cosine similarity with the full gradient, cell parameters.
    pub cosine: f64,
    /// `‖g_K − g‖ / ‖g‖`, cell parameters.
    pub relative_error: f64,
    /// Cosine similarity with the full gradient, all parameters.
    pub cosine_all: f64,
    /// `‖g_K − g‖ / ‖g‖`, all parameters.
    pub relative_error_all: f64,
    /// Cell backward steps per sequence (see [`Scheme::backward_steps`]).
    pub backward_steps: usize,
    /// Wall time of one forward + truncated backward pass, per sequence, in microseconds.
    pub micros_per_sequence: f64,
    /// Steps the engine caches in sequence mode: all T.
    pub cached_steps: usize,
    /// `Bptt::workspace_bytes()` after a sequence-mode pass over one batch.
    pub workspace_bytes: usize,
    /// Steps cached while streaming (the window h), if the scheme can stream.
    pub stream_cached_steps: Option<usize>,
    /// `Bptt::workspace_bytes()` after streaming over the same batch, if the scheme can.
    pub stream_workspace_bytes: Option<usize>,
    /// Held-out loss per character after the training budget.
    pub loss: f64,
    /// Updates in the training budget.
    pub updates: usize,
    /// Characters trained on (updates × batch × T).
    pub tokens: usize,
}

/// Text to ids, the held-out ids and the training ids.
struct Data {
    vocab_size: usize,
    train: Vec<usize>,
    held_out: Vec<usize>,
}

fn load(config: &Config, settings: &Settings) -> Result<Data, BoxError> {
    let text = match &config.corpus {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("reading corpus {}: {e}", path.display()))?,
        None => EMBEDDED_CORPUS.to_string(),
    };
    let text: String = match config.limit {
        Some(n) => text.chars().take(n).collect(),
        None => text,
    };
    let vocab = CharVocabulary::from_text(&text)?;
    let ids = vocab.encode(&text)?;
    // The last tenth is held out, but never less than one batch of windows.
    let window = settings.seq_len + 1;
    let held = (ids.len() / 10).max(settings.batch * window);
    if ids.len() < held + settings.batch * window {
        return Err(format!(
            "the corpus has {} characters; this study needs at least {} \
             (two batches of {} windows of T + 1 = {window})",
            ids.len(),
            held + settings.batch * window,
            settings.batch,
        )
        .into());
    }
    let (train, held_out) = ids.split_at(ids.len() - held);
    Ok(Data {
        vocab_size: vocab.len(),
        train: train.to_vec(),
        held_out: held_out.to_vec(),
    })
}

/// Inputs and next-character targets, `[T, B]`, from windows starting at `starts`.
fn windows(ids: &[usize], starts: &[usize], seq_len: usize) -> (Array2<usize>, Array2<usize>) {
    let x = Array2::from_shape_fn((seq_len, starts.len()), |(t, b)| ids[starts[b] + t]);
    let y = Array2::from_shape_fn((seq_len, starts.len()), |(t, b)| ids[starts[b] + t + 1]);
    (x, y)
}

fn batch_of<'a>(x: &'a Array2<usize>, y: &'a Array2<usize>) -> SeqBatch<'a, f64> {
    SeqBatch {
        inputs: SeqInput::Tokens(x.view()),
        targets: SeqTargets::Classes(y.view()),
    }
}

/// Training batch `update`: consecutive windows walking through the training text.
fn training_batch(data: &Data, s: &Settings, update: usize) -> (Array2<usize>, Array2<usize>) {
    let span = data.train.len() - s.seq_len - 1;
    let starts: Vec<usize> = (0..s.batch)
        .map(|b| ((update * s.batch + b) * s.seq_len) % span)
        .collect();
    windows(&data.train, &starts, s.seq_len)
}

fn init_model(vocab: usize, s: &Settings, seed: u64) -> Result<CharModel, BoxError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let cell = ElmanConfig::new(vocab, s.hidden)
        .with_bias(true)
        .init(Tanh, &mut rng)?;
    let readout = LinearConfig::new(s.hidden, vocab)
        .with_bias(true)
        .init(&mut rng)?;
    Ok(Model::new(cell, readout)?)
}

/// Trains a copy of `initial` for the budget; returns it and its held-out loss per char.
fn train(
    initial: &CharModel,
    truncation: Truncation,
    data: &Data,
    s: &Settings,
    lr: f64,
    held_out: SeqBatch<'_, f64>,
) -> Result<(CharModel, f64), BoxError> {
    let mut model = initial.clone();
    let optimizer = Box::new(Adam::new(lr, 0.9, 0.999, 1e-8)?);
    let mut trainer =
        Trainer::new(&model, truncation, Reduction::Mean, optimizer).with_clip("norm:5".parse()?);
    for update in 0..s.updates {
        let (x, y) = training_batch(data, s, update);
        trainer.train_batch(&mut model, &SoftmaxCrossEntropy, batch_of(&x, &y), None)?;
    }
    let loss = trainer
        .evaluate(&model, &SoftmaxCrossEntropy, held_out)?
        .mean();
    Ok((model, loss))
}

/// The gradient of the summed loss under `truncation`, flattened: (cell, all).
fn gradient(
    engine: &mut Bptt<f64, Elman<f64, Tanh>>,
    model: &CharModel,
    batch: SeqBatch<'_, f64>,
) -> Result<(Vec<f64>, Vec<f64>), BoxError> {
    let mut grads = model.zero_grads();
    engine.accumulate(model, &SoftmaxCrossEntropy, batch, None, &mut grads)?;
    Ok((params::flatten(&grads.cell), params::flatten(&grads)))
}

/// (cosine similarity, relative norm error) of `g` against `reference`.
fn compare(g: &[f64], reference: &[f64]) -> (f64, f64) {
    let dot: f64 = g.iter().zip(reference).map(|(a, b)| a * b).sum();
    let norm = |v: &[f64]| v.iter().map(|a| a * a).sum::<f64>().sqrt();
    let diff: f64 = g
        .iter()
        .zip(reference)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        .sqrt();
    let (ng, nr) = (norm(g), norm(reference));
    let cosine = if ng == 0.0 || nr == 0.0 {
        0.0
    } else {
        dot / (ng * nr)
    };
    (cosine, diff / nr)
}

/// Mean wall time of `accumulate` per call, over at least `min` of repeated calls.
fn time_accumulate(
    engine: &mut Bptt<f64, Elman<f64, Tanh>>,
    model: &CharModel,
    batch: SeqBatch<'_, f64>,
    min: Duration,
) -> Result<Duration, BoxError> {
    let mut grads = model.zero_grads();
    // Warm-up: sizes the workspace.
    engine.accumulate(model, &SoftmaxCrossEntropy, batch, None, &mut grads)?;
    let (start, mut calls) = (Instant::now(), 0u32);
    while calls < 3 || start.elapsed() < min {
        engine.accumulate(model, &SoftmaxCrossEntropy, batch, None, &mut grads)?;
        calls += 1;
    }
    Ok(start.elapsed() / calls)
}

/// Workspace bytes after streaming over `batch` (h steps cached, state carried on).
fn stream_bytes(
    model: &CharModel,
    truncation: Truncation,
    batch: SeqBatch<'_, f64>,
) -> Result<usize, BoxError> {
    let mut model = model.clone();
    let optimizer = Box::new(Sgd::new(1e-3)?);
    let mut trainer = Trainer::new(&model, truncation, Reduction::Mean, optimizer);
    trainer.train_stream(&mut model, &SoftmaxCrossEntropy, batch, None, &mut |_| {})?;
    Ok(trainer.engine_mut().workspace_bytes())
}

/// Runs the whole study; rows come full BPTT first, then each scheme in order of K.
///
/// # Errors
/// Unreadable or too short corpora, invalid settings, and library errors.
pub fn run(config: &Config) -> Result<Vec<Row>, BoxError> {
    let s = Settings::from_config(config)?;
    let data = load(config, &s)?;
    let initial = init_model(data.vocab_size, &s, config.seed)?;

    // Held-out loss: every whole window of the held-out text, up to 256, in one batch.
    let count = ((data.held_out.len() - 1) / s.seq_len).clamp(1, 256);
    let starts: Vec<usize> = (0..count).map(|i| i * s.seq_len).collect();
    let (eval_x, eval_y) = windows(&data.held_out, &starts, s.seq_len);
    let held_out = batch_of(&eval_x, &eval_y);
    // Fidelity and timing: the first `batch` held-out windows.
    let (probe_x, probe_y) = windows(&data.held_out, &starts[..s.batch.min(count)], s.seq_len);
    let probe = batch_of(&probe_x, &probe_y);
    let sequences = probe.batch() as f64;

    let mut cases = vec![(Scheme::Full, s.seq_len)];
    for scheme in Scheme::TRUNCATED {
        cases.extend(s.ks.iter().map(|&k| (scheme, k)));
    }
    let progress = ProgressBar::new(cases.len() as u64).with_style(
        ProgressStyle::with_template("{msg:>16} {bar:30} {pos}/{len} [{elapsed}]")
            .expect("valid template"),
    );

    // Full BPTT first: its trained weights are where every gradient is compared.
    let (reference_model, full_loss) =
        train(&initial, Truncation::full(), &data, &s, config.lr, held_out)?;
    let mut full_engine = Bptt::new(Truncation::full(), Reduction::Sum);
    let (reference_cell, reference_all) = gradient(&mut full_engine, &reference_model, probe)?;

    let mut rows = Vec::with_capacity(cases.len());
    for (scheme, k) in cases {
        let truncation = scheme.truncation(k)?;
        progress.set_message(truncation.to_string());
        let loss = if scheme == Scheme::Full {
            full_loss
        } else {
            train(&initial, truncation, &data, &s, config.lr, held_out)?.1
        };
        let mut engine = Bptt::new(truncation, Reduction::Sum);
        let (cell, all) = gradient(&mut engine, &reference_model, probe)?;
        let (cosine, relative_error) = compare(&cell, &reference_cell);
        let (cosine_all, relative_error_all) = compare(&all, &reference_all);
        let mut engine = Bptt::new(truncation, Reduction::Sum);
        let elapsed = time_accumulate(&mut engine, &reference_model, probe, s.min_timing)?;
        let streams = truncation.stride().is_some();
        let stream_workspace_bytes = if streams {
            Some(stream_bytes(&reference_model, truncation, probe)?)
        } else {
            None
        };
        rows.push(Row {
            scheme,
            k,
            seq_len: s.seq_len,
            cosine,
            relative_error,
            cosine_all,
            relative_error_all,
            backward_steps: scheme.backward_steps(k, s.seq_len),
            micros_per_sequence: elapsed.as_secs_f64() * 1e6 / sequences,
            cached_steps: s.seq_len,
            workspace_bytes: engine.workspace_bytes(),
            stream_cached_steps: truncation.window().filter(|_| streams),
            stream_workspace_bytes,
            loss,
            updates: s.updates,
            tokens: s.updates * s.batch * s.seq_len,
        });
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok(rows)
}

/// The rows as a markdown table.
pub fn markdown_table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| scheme | K | cos (cell) | rel. err (cell) | cos (all) | cell VJPs/seq | µs/seq \
         | cached steps: seq / stream | workspace KiB: seq / stream | held-out loss |\n\
         |---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    let kib = |b: usize| format!("{:.1}", b as f64 / 1024.0);
    for r in rows {
        let k = if r.scheme == Scheme::Full {
            "T".to_string()
        } else {
            r.k.to_string()
        };
        let stream_steps = r.stream_cached_steps.map_or("–".into(), |h| h.to_string());
        let stream_bytes = r.stream_workspace_bytes.map_or("–".into(), kib);
        let _ = writeln!(
            out,
            "| {} | {k} | {:.6} | {:.2e} | {:.6} | {} | {:.0} | {} / {stream_steps} | {} / {stream_bytes} | {:.4} |",
            r.scheme.name(),
            r.cosine,
            r.relative_error,
            r.cosine_all,
            r.backward_steps,
            r.micros_per_sequence,
            r.cached_steps,
            kib(r.workspace_bytes),
            r.loss,
        );
    }
    if let Some(r) = rows.first() {
        let _ = writeln!(
            out,
            "\nT = {}; fidelity on the weights after full-BPTT training; loss after {} Adam \
             updates ({} characters) per scheme.",
            r.seq_len, r.updates, r.tokens
        );
    }
    out
}

/// Writes the plot: cosine, relative error and time per sequence against K, one line per
/// scheme (full BPTT as a flat reference line).
///
/// # Errors
/// I/O and drawing errors.
pub fn plot(rows: &[Row], path: &Path) -> Result<(), BoxError> {
    use plotters::prelude::*;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let Some(full) = rows.iter().find(|r| r.scheme == Scheme::Full) else {
        return Err("no full-BPTT row to plot against".into());
    };
    let k_max = rows.iter().map(|r| r.k).max().unwrap_or(1).max(2) as f64;
    let t_min = rows
        .iter()
        .map(|r| r.micros_per_sequence)
        .fold(f64::INFINITY, f64::min);
    let t_max = rows
        .iter()
        .map(|r| r.micros_per_sequence)
        .fold(0.0, f64::max);
    // Errors at K ≥ T are rounding (~1e-16); clamp so the log axis stays readable.
    let floor = 1e-16;

    let root = SVGBackend::new(path, (1500, 460)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((1, 3));
    let colour = |scheme: Scheme| match scheme {
        Scheme::Full => BLACK,
        Scheme::PerOutput => RGBColor(31, 119, 180),
        Scheme::Chunked => RGBColor(214, 39, 40),
        Scheme::Last => RGBColor(44, 160, 44),
    };
    let series = |scheme: Scheme, value: &dyn Fn(&Row) -> f64| -> Vec<(f64, f64)> {
        if scheme == Scheme::Full {
            return vec![(1.0, value(full)), (k_max, value(full))];
        }
        rows.iter()
            .filter(|r| r.scheme == scheme)
            .map(|r| (r.k as f64, value(r)))
            .collect()
    };
    let all = [
        Scheme::Full,
        Scheme::PerOutput,
        Scheme::Chunked,
        Scheme::Last,
    ];

    let panels_spec = [
        Panel {
            caption: "gradient cosine vs full BPTT (cell)",
            y_desc: "cosine",
            log_y: false,
            range: {
                let axis = ticks::Axis::covering(
                    rows.iter().map(|r| r.cosine).fold(1.0, f64::min).min(0.0),
                    1.0,
                    6,
                );
                (axis.lo, axis.hi)
            },
            labels: 6,
            value: Box::new(|r: &Row| r.cosine),
        },
        Panel {
            caption: "relative gradient error (cell)",
            y_desc: "‖g_K − g‖ / ‖g‖",
            log_y: true,
            range: ticks::decades(floor, 2.0),
            labels: 5,
            value: Box::new(move |r: &Row| r.relative_error.max(floor)),
        },
        Panel {
            caption: "time per sequence (fwd + bwd)",
            y_desc: "µs",
            log_y: true,
            range: ticks::decades(t_min, t_max),
            labels: 5,
            value: Box::new(|r: &Row| r.micros_per_sequence),
        },
    ];
    // The linear and the logarithmic y axis are different types: one body for both.
    macro_rules! draw_panel {
        ($chart:expr, $panel:expr, $legend:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc("truncation length K")
                .y_desc($panel.y_desc)
                .x_label_formatter(&|v| ticks::log_label(*v))
                .y_labels($panel.labels)
                .y_label_formatter(&|v| $panel.label(*v))
                .draw()?;
            for scheme in all {
                let c = colour(scheme);
                chart
                    .draw_series(LineSeries::new(
                        series(scheme, &*$panel.value),
                        c.stroke_width(2),
                    ))?
                    .label(scheme.name())
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], c));
            }
            chart
                .configure_series_labels()
                .position($legend)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()?;
        }};
    }
    for (area, panel) in panels.iter().zip(panels_spec) {
        let mut builder = ChartBuilder::on(area);
        builder
            .caption(panel.caption, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(60);
        let (x_lo, x_hi) = ticks::decades(1.0, k_max);
        let x_range = (x_lo..x_hi).log_scale();
        let (lo, hi) = panel.range;
        if panel.log_y {
            let chart = builder.build_cartesian_2d(x_range, (lo..hi).log_scale())?;
            draw_panel!(chart, panel, SeriesLabelPosition::UpperRight);
        } else {
            let chart = builder.build_cartesian_2d(x_range, lo..hi)?;
            draw_panel!(chart, panel, SeriesLabelPosition::LowerRight);
        }
    }
    root.present()?;
    Ok(())
}

/// One panel of the plot: what to draw against K.
struct Panel<'a> {
    caption: &'a str,
    y_desc: &'a str,
    log_y: bool,
    range: (f64, f64),
    /// How many y labels (few on a log axis of many decades, so they do not overlap).
    labels: usize,
    value: Box<dyn Fn(&Row) -> f64 + 'a>,
}

impl Panel<'_> {
    /// A y tick's label: round, without float noise.
    fn label(&self, v: f64) -> String {
        if self.log_y {
            ticks::log_label(v)
        } else {
            ticks::Axis::covering(self.range.0, self.range.1, self.labels).label(v)
        }
    }
}

fn main() -> Result<(), BoxError> {
    let config = Config::parse();
    let started = Instant::now();
    let rows = run(&config)?;
    println!("{}", markdown_table(&rows));
    if !config.no_plot {
        plot(&rows, &config.plot)?;
        println!("plot: {}", config.plot.display());
    }
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
