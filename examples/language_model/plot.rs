//! The loss curves of a run as a picture: training and validation loss per token against
//! updates.

use std::path::Path;

use plotters::prelude::*;
use recur::Evaluation;

use super::ticks::{loss_chart, Axis};
use super::BoxError;

/// Draws the curves of `evaluations` into an SVG at `path`; nothing, and `false`, with
/// fewer than two evaluations.
pub fn loss_curves(path: &Path, evaluations: &[Evaluation]) -> Result<bool, BoxError> {
    let train: Vec<(f64, f64)> = points(evaluations, |e| e.train_loss);
    let valid: Vec<(f64, f64)> = points(evaluations, |e| e.valid_loss);
    if train.len().max(valid.len()) < 2 {
        return Ok(false);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let all = train.iter().chain(&valid);
    let x_max = all.clone().map(|p| p.0).fold(1.0, f64::max);
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
        (lo.min(p.1), hi.max(p.1))
    });
    let (x, y) = (Axis::covering(0.0, x_max, 6), Axis::covering(lo, hi, 6));
    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    let title = "training and validation loss";
    let mut chart = loss_chart(&root, title, (&x, "updates"), (&y, "loss per token (nats)"))?;
    for (series, color, label) in [(&train, BLUE, "training"), (&valid, RED, "validation")] {
        if series.len() >= 2 {
            chart
                .draw_series(LineSeries::new(series.iter().copied(), color))?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(true)
}

fn points(
    evaluations: &[Evaluation],
    loss: impl Fn(&Evaluation) -> Option<f64>,
) -> Vec<(f64, f64)> {
    evaluations
        .iter()
        .filter_map(|e| loss(e).map(|l| (e.update as f64, l)))
        .collect()
}
