//! Several `--log` files of the language model on one chart: the held-out loss of each run
//! (and, with `--train`, its training loss, dashed) against wall-clock seconds, updates or
//! training tokens. It also prints, for each log, where the run ended and its best
//! held-out loss.
//!
//! ```text
//! cargo run --release --example loss_curves -- --out target/curves.svg --x seconds \
//!     elman=elman.csv lstm=lstm.csv gru=gru.csv
//! cargo run --release --example loss_curves -- --x updates --train --y-max 3 lstm=lstm.csv
//! ```
//!
//! The logs are read by column name, so the columns may come in any order; `--x seconds`
//! needs the `elapsed_s` column.

use std::error::Error as StdError;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use plotters::prelude::*;

// The language model's tick logic: a file, not a crate, as both are examples.
#[path = "language_model/ticks.rs"]
#[allow(dead_code)]
mod ticks;

use ticks::{loss_chart, Axis};

/// Errors of this program: bad logs, I/O, plotting.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// What the horizontal axis counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum XAxis {
    /// Wall-clock seconds of training (the `elapsed_s` column).
    Seconds,
    /// Updates (the `update` column).
    Updates,
    /// Training tokens seen (the `tokens` column).
    Tokens,
}

impl XAxis {
    /// The log column this axis reads.
    pub fn column(self) -> &'static str {
        match self {
            XAxis::Seconds => "elapsed_s",
            XAxis::Updates => "update",
            XAxis::Tokens => "tokens",
        }
    }
}

/// One log to draw: its legend label and its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogArg {
    /// The legend's name for the run.
    pub label: String,
    /// The CSV written by `--log`.
    pub path: PathBuf,
}

/// Reads `LABEL=PATH`.
///
/// # Errors
/// No `=`, or an empty label or path.
pub fn parse_log_arg(text: &str) -> Result<LogArg, String> {
    match text.split_once('=') {
        Some((label, path)) if !label.is_empty() && !path.is_empty() => Ok(LogArg {
            label: label.to_owned(),
            path: PathBuf::from(path),
        }),
        _ => Err(format!(
            "'{text}' is not LABEL=PATH (for instance lstm=target/lstm.csv)"
        )),
    }
}

/// Command-line settings.
#[derive(Debug, Clone, Parser)]
#[command(about = "Draw the loss curves of several language-model logs on one chart")]
pub struct Config {
    /// Where to write the SVG.
    #[arg(long, default_value = "target/loss_curves.svg")]
    pub out: PathBuf,
    /// The horizontal axis.
    #[arg(long, value_enum, default_value_t = XAxis::Seconds)]
    pub x: XAxis,
    /// Also draw each run's training loss (the mean since the previous row), dashed.
    #[arg(long)]
    pub train: bool,
    /// Cut the loss axis at this value: the loss before training can dwarf the rest.
    #[arg(long)]
    pub y_max: Option<f64>,
    /// The chart's title.
    #[arg(long, default_value = "held-out loss")]
    pub title: String,
    /// The logs, each `LABEL=PATH`.
    #[arg(required = true, value_name = "LABEL=PATH", value_parser = parse_log_arg)]
    pub logs: Vec<LogArg>,
}

/// The curves of one log, as (x, loss) points in row order.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// The legend's name.
    pub label: String,
    /// Held-out loss per token.
    pub valid: Vec<(f64, f64)>,
    /// Training loss per token since the previous row (absent from the first row).
    pub train: Vec<(f64, f64)>,
    /// The update count of the last row.
    pub updates: u64,
}

impl Curve {
    /// The point of the lowest held-out loss.
    pub fn best(&self) -> Option<(f64, f64)> {
        self.valid
            .iter()
            .copied()
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }
}

/// Reads the log at `arg.path` with `x` as its horizontal axis.
///
/// # Errors
/// The file cannot be read, lacks a needed column, has a row of another width or a cell
/// that is not a number.
pub fn read_log(arg: &LogArg, x: XAxis) -> Result<Curve, BoxError> {
    let path = &arg.path;
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the log {}: {e}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let column = |name: &str| {
        header.iter().position(|h| *h == name).ok_or_else(|| {
            let hint = if name == "elapsed_s" {
                "; logs without it can be drawn with --x updates or --x tokens"
            } else {
                "; is it a --log of the language model?"
            };
            format!("{} has no '{name}' column{hint}", path.display())
        })
    };
    let (at_x, at_valid, at_train, at_update) = (
        column(x.column())?,
        column("valid_loss")?,
        column("train_loss")?,
        column("update")?,
    );
    let mut curve = Curve {
        label: arg.label.clone(),
        valid: Vec::new(),
        train: Vec::new(),
        updates: 0,
    };
    for (index, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        // Line numbers as an editor shows them: the header is line 1.
        let number = index + 2;
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() != header.len() {
            return Err(format!(
                "{} line {number}: {} cells, the header has {}",
                path.display(),
                cells.len(),
                header.len()
            )
            .into());
        }
        let value = |at: usize| -> Result<Option<f64>, BoxError> {
            let cell = cells[at].trim();
            if cell.is_empty() {
                return Ok(None);
            }
            let v: f64 = cell.parse().map_err(|_| {
                format!(
                    "{} line {number}: '{cell}' in column '{}' is not a number",
                    path.display(),
                    header[at]
                )
            })?;
            Ok(Some(v))
        };
        let Some(x) = value(at_x)? else { continue };
        if let Some(loss) = value(at_valid)? {
            curve.valid.push((x, loss));
        }
        if let Some(loss) = value(at_train)? {
            curve.train.push((x, loss));
        }
        curve.updates = value(at_update)?.unwrap_or_default() as u64;
    }
    Ok(curve)
}

/// How an axis's numbers are shown: divided by `divisor`, named `name`.
struct Scale {
    divisor: f64,
    name: &'static str,
}

fn scale(x: XAxis, max: f64) -> Scale {
    let (divisor, name) = match x {
        XAxis::Seconds => (1.0, "wall-clock seconds"),
        XAxis::Updates if max >= 1e5 => (1e3, "updates (thousands)"),
        XAxis::Updates => (1.0, "updates"),
        XAxis::Tokens if max >= 1e6 => (1e6, "training tokens (millions)"),
        XAxis::Tokens => (1.0, "training tokens"),
    };
    Scale { divisor, name }
}

/// The pieces of a line that stay at or below `cap`, cut where it crosses `cap`.
fn below(points: &[(f64, f64)], cap: f64) -> Vec<Vec<(f64, f64)>> {
    let mut pieces: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current = Vec::new();
    for (i, &(x, y)) in points.iter().enumerate() {
        let previous = i.checked_sub(1).map(|j| points[j]);
        let crossing = |(x0, y0): (f64, f64)| (x0 + (x - x0) * (cap - y0) / (y - y0), cap);
        match previous {
            Some(p) if (p.1 > cap) != (y > cap) => {
                current.push(crossing(p));
                if y > cap {
                    pieces.push(std::mem::take(&mut current));
                }
            }
            _ => {}
        }
        if y <= cap {
            current.push((x, y));
        }
    }
    pieces.push(current);
    pieces.retain(|p| p.len() >= 2);
    pieces
}

/// Distinct colours, dark enough on white.
const COLOURS: [RGBColor; 6] = [
    RGBColor(200, 30, 30),
    RGBColor(30, 80, 200),
    RGBColor(20, 140, 40),
    RGBColor(150, 60, 170),
    RGBColor(220, 130, 0),
    RGBColor(0, 0, 0),
];

/// Draws `curves` into an SVG at `config.out`.
///
/// # Errors
/// Nothing to draw (every curve shorter than two points), a folder or file that cannot be
/// written.
pub fn plot(config: &Config, curves: &[Curve]) -> Result<(), BoxError> {
    let cap = config.y_max.unwrap_or(f64::INFINITY);
    let drawn = |c: &Curve| {
        let train = if config.train { &c.train[..] } else { &[] };
        c.valid.iter().chain(train).copied().collect::<Vec<_>>()
    };
    let all: Vec<(f64, f64)> = curves.iter().flat_map(drawn).collect();
    if curves.iter().all(|c| drawn(c).len() < 2) {
        return Err("nothing to draw: every log has fewer than two points".into());
    }
    let x_max = all.iter().map(|p| p.0).fold(0.0, f64::max);
    let shown = scale(config.x, x_max);
    let (lo, hi) = all
        .iter()
        .map(|p| p.1)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| {
            (lo.min(y), hi.max(y))
        });
    let x = Axis::covering(0.0, x_max.max(1.0) / shown.divisor, 6);
    let y = Axis::covering(lo, hi.min(cap), 6);
    if let Some(dir) = config.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let root = SVGBackend::new(&config.out, (720, 420)).into_drawing_area();
    let mut chart = loss_chart(
        &root,
        &config.title,
        (&x, shown.name),
        (&y, "loss per token (nats)"),
    )?;
    let fit = |points: &[(f64, f64)]| -> Vec<(f64, f64)> {
        points
            .iter()
            .map(|&(px, py)| (px / shown.divisor, py))
            .collect()
    };
    for (i, curve) in curves.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        for (n, piece) in below(&fit(&curve.valid), cap).into_iter().enumerate() {
            let series = chart.draw_series(LineSeries::new(piece, colour.stroke_width(2)))?;
            if n == 0 {
                series.label(curve.label.as_str()).legend(move |(lx, ly)| {
                    PathElement::new(vec![(lx, ly), (lx + 16, ly)], colour.stroke_width(2))
                });
            }
        }
        if !config.train {
            continue;
        }
        for (n, piece) in below(&fit(&curve.train), cap).into_iter().enumerate() {
            let style = colour.stroke_width(1);
            let series = chart.draw_series(DashedLineSeries::new(piece, 6, 4, style))?;
            if n == 0 {
                series
                    .label(format!("{}, training", curve.label))
                    .legend(move |(lx, ly)| {
                        PathElement::new(vec![(lx, ly), (lx + 16, ly)], colour.stroke_width(1))
                    });
            }
        }
    }
    // Top right: descending curves leave that corner empty.
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Reads every log of `config`, draws them, and returns the curves.
///
/// # Errors
/// As [`read_log`] and [`plot`].
pub fn run(config: &Config) -> Result<Vec<Curve>, BoxError> {
    let curves = config
        .logs
        .iter()
        .map(|arg| read_log(arg, config.x))
        .collect::<Result<Vec<_>, _>>()?;
    plot(config, &curves)?;
    Ok(curves)
}

fn main() {
    let config = Config::parse();
    match run(&config) {
        Ok(curves) => {
            let unit = config.x.column();
            for c in &curves {
                let last = c.valid.last();
                match (last, c.best()) {
                    (Some(&(x, loss)), Some((best_x, best))) => println!(
                        "{}: {} updates; last row at {unit} {x}: held-out loss {loss:.4} (perplexity {:.3}); best {best:.4} (perplexity {:.3}) at {unit} {best_x}",
                        c.label, c.updates, loss.exp(), best.exp()
                    ),
                    _ => println!("{}: {} updates; no held-out loss", c.label, c.updates),
                }
            }
            println!("wrote {}", config.out.display());
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
