//! Axis ticks people can read: ranges that start and end on round steps (1, 2 or 5 times a
//! power of ten), labels without float noise (`0.01`, not `0.009999999999999998`), and log
//! axes that span whole decades so they never show a lone tick; and the frame of a loss
//! chart drawn on such axes. Shared by the language model's, the truncation study's and
//! the loss-curves example's plots.

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

/// A chart of losses on an SVG, its axes in data coordinates.
pub type LossChart<'b, 'a> =
    ChartContext<'b, SVGBackend<'a>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The frame every loss plot of these examples draws on: a white page, `title`, the round
/// axes `x` and `y` named `x_name` and `y_name`, and a grid at their ticks.
///
/// # Errors
/// The backend cannot draw.
pub fn loss_chart<'b, 'a>(
    root: &'b DrawingArea<SVGBackend<'a>, Shift>,
    title: &str,
    (x, x_name): (&Axis, &str),
    (y, y_name): (&Axis, &str),
) -> Result<LossChart<'b, 'a>, Box<dyn std::error::Error + Send + Sync>> {
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(x.lo..x.hi, y.lo..y.hi)?;
    chart
        .configure_mesh()
        .x_desc(x_name)
        .y_desc(y_name)
        .x_labels(x.count)
        .y_labels(y.count)
        .x_label_formatter(&|v| x.label(*v))
        .y_label_formatter(&|v| y.label(*v))
        .draw()?;
    Ok(chart)
}

/// A linear axis: from `lo` to `hi` in `count − 1` steps of `step`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Axis {
    /// First tick.
    pub lo: f64,
    /// Last tick.
    pub hi: f64,
    /// Distance between ticks.
    pub step: f64,
    /// Number of ticks (at least 3).
    pub count: usize,
}

impl Axis {
    /// The round axis covering `[lo, hi]` with about `target` ticks (at least 3).
    pub fn covering(lo: f64, hi: f64, target: usize) -> Axis {
        let (lo, hi) = if hi > lo {
            (lo, hi)
        } else {
            (lo - 0.5, lo + 0.5)
        };
        let rough = (hi - lo) / target.max(2) as f64;
        let power = 10f64.powf(rough.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0]
            .iter()
            .map(|m| m * power)
            .find(|&s| s >= rough)
            .unwrap_or(10.0 * power);
        let first = (lo / step).floor();
        let last = (hi / step).ceil().max(first + 2.0);
        Axis {
            lo: first * step,
            hi: last * step,
            step,
            count: (last - first) as usize + 1,
        }
    }

    /// The label of a tick of this axis: as many decimals as the step needs.
    pub fn label(&self, v: f64) -> String {
        let decimals = (-self.step.log10().floor()).max(0.0) as usize;
        // Round away float noise, and never print "-0".
        let text = format!("{:.*}", decimals, v);
        if text
            .trim_start_matches('-')
            .chars()
            .all(|c| c == '0' || c == '.')
        {
            format!("{:.*}", decimals, 0.0)
        } else {
            text
        }
    }
}

/// The whole decades around `[lo, hi]` (both > 0), at least one decade wide.
pub fn decades(lo: f64, hi: f64) -> (f64, f64) {
    let first = lo.log10().floor();
    let last = hi.log10().ceil().max(first + 1.0);
    (10f64.powf(first), 10f64.powf(last))
}

/// The label of a tick on a log axis: `1e-6`, `0.01`, `20`, `5000`; three significant
/// digits at most.
pub fn log_label(v: f64) -> String {
    if v == 0.0 {
        return "0".to_owned();
    }
    let mut exponent = v.abs().log10().floor();
    let mut mantissa = v / 10f64.powf(exponent);
    // log10 may land just below a power of ten.
    if mantissa.abs() >= 9.995 {
        mantissa /= 10.0;
        exponent += 1.0;
    }
    if !(-3.0..5.0).contains(&exponent) {
        let mantissa = format!("{mantissa:.2}");
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        return match mantissa {
            "1" => format!("1e{exponent}"),
            m => format!("{m}e{exponent}"),
        };
    }
    let decimals = (2.0 - exponent).max(0.0) as usize;
    let text = format!("{:.*}", decimals, v);
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_are_round_and_have_at_least_three_ticks() {
        let a = Axis::covering(1.62, 4.81, 6);
        assert_eq!((a.step, a.count), (1.0, 5));
        assert_eq!(
            (a.label(a.lo), a.label(a.hi)),
            ("1".to_owned(), "5".to_owned())
        );
        let b = Axis::covering(1.62, 2.31, 6);
        assert_eq!(
            (b.label(b.lo), b.label(b.hi), b.count),
            ("1.6".to_owned(), "2.4".to_owned(), 5)
        );
        let flat = Axis::covering(2.0, 2.0, 6);
        assert!(
            flat.count >= 3 && flat.lo < 2.0 && flat.hi > 2.0,
            "{flat:?}"
        );
        let narrow = Axis::covering(0.0, 0.03, 5);
        assert_eq!(narrow.label(0.1 * 0.1), "0.01");
        assert_eq!(narrow.label(-1e-17), "0.00");
    }

    #[test]
    fn log_axes_span_whole_decades_with_clean_labels() {
        let close = |(a, b): (f64, f64), (c, d): (f64, f64)| {
            assert!(
                (a / c - 1.0).abs() < 1e-9 && (b / d - 1.0).abs() < 1e-9,
                "{a} {b}"
            );
        };
        close(decades(120.0, 480.0), (100.0, 1000.0));
        close(decades(1e-16, 2.0), (1e-16, 10.0));
        close(decades(100.0, 100.0), (100.0, 1000.0));
        assert_eq!(log_label(0.1 * 0.1), "0.01");
        assert_eq!(log_label(1e-16), "1e-16");
        assert_eq!(log_label(2.5e-7), "2.5e-7");
        assert_eq!(log_label(20.0), "20");
        assert_eq!(log_label(1000.0), "1000");
        assert_eq!(log_label(0.125), "0.125");
    }
}
