//! Drawing the next token from the model's probabilities: temperature, top-k and top-p
//! (nucleus) filtering, and tokens that must never be drawn. Pure functions over one row.

use clap::Args;

use super::BoxError;

/// How the next token is drawn from a probability row.
#[derive(Debug, Clone, Copy, PartialEq, Args)]
pub struct Sampling {
    /// Divides the log-probabilities: below 1 sharper, above 1 flatter; 0 always takes
    /// the most likely token.
    #[arg(long, default_value_t = 1.0, help_heading = "Generation")]
    pub temperature: f64,
    /// Draw only among the K most likely tokens.
    #[arg(long, help_heading = "Generation")]
    pub top_k: Option<usize>,
    /// Draw only among the most likely tokens whose probabilities add up to P (nucleus).
    #[arg(long, help_heading = "Generation")]
    pub top_p: Option<f64>,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            temperature: 1.0,
            top_k: None,
            top_p: None,
        }
    }
}

impl Sampling {
    /// Checks the settings.
    ///
    /// # Errors
    /// A negative or non-finite temperature, `--top-k 0`, or `--top-p` outside (0, 1].
    pub fn validate(&self) -> Result<(), BoxError> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(format!("--temperature {} must be ≥ 0", self.temperature).into());
        }
        if self.top_k == Some(0) {
            return Err("--top-k 0 leaves nothing to draw; use at least 1".into());
        }
        if let Some(p) = self.top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
            return Err(format!("--top-p {p} must be in (0, 1]").into());
        }
        Ok(())
    }

    /// The weights to draw from (not normalised): `probabilities` with the `banned` ids
    /// at zero, sharpened by the temperature, cut to the top k and the top-p nucleus.
    ///
    /// # Errors
    /// When no token is left to draw (every one banned or of probability zero).
    pub fn weights(&self, probabilities: &[f64], banned: &[usize]) -> Result<Vec<f64>, BoxError> {
        let mut w: Vec<f64> = probabilities
            .iter()
            .enumerate()
            .map(|(i, &p)| if banned.contains(&i) { 0.0 } else { p.max(0.0) })
            .collect();
        let top = w.iter().copied().fold(0.0, f64::max);
        if top <= 0.0 {
            return Err("no token can be drawn: every allowed one has probability 0".into());
        }
        if self.temperature == 0.0 {
            let best = argmax(&w);
            w.iter_mut()
                .enumerate()
                .for_each(|(i, x)| *x = f64::from(u8::from(i == best)));
            return Ok(w);
        }
        // p^(1/T) relative to the largest, in logs, so a small T does not underflow all.
        for x in &mut w {
            if *x > 0.0 {
                *x = ((x.ln() - top.ln()) / self.temperature).exp();
            }
        }
        let order = descending(&w);
        if let Some(k) = self.top_k {
            order.iter().skip(k).for_each(|&i| w[i] = 0.0);
        }
        if let Some(p) = self.top_p {
            let total: f64 = w.iter().sum();
            let mut kept = 0.0;
            for &i in &order {
                if kept >= p * total {
                    w[i] = 0.0;
                }
                kept += w[i];
            }
        }
        Ok(w)
    }
}

/// The index of the largest weight (the first of equals).
pub fn argmax(w: &[f64]) -> usize {
    w.iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |(bi, bw), (i, &x)| {
            if x > bw {
                (i, x)
            } else {
                (bi, bw)
            }
        })
        .0
}

/// Indices by weight, largest first (ties by index).
fn descending(w: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..w.len()).collect();
    order.sort_by(|&a, &b| w[b].total_cmp(&w[a]).then(a.cmp(&b)));
    order
}

/// Draws an index with probability proportional to its weight, `u` uniform in [0, 1).
pub fn draw(weights: &[f64], u: f64) -> usize {
    let mut left = u * weights.iter().sum::<f64>();
    for (i, &w) in weights.iter().enumerate() {
        if w > 0.0 && left < w {
            return i;
        }
        left -= w;
    }
    // Rounding left a sliver: the last token that can be drawn.
    weights.iter().rposition(|&w| w > 0.0).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: [f64; 5] = [0.1, 0.4, 0.05, 0.3, 0.15];

    fn sampling(temperature: f64, top_k: Option<usize>, top_p: Option<f64>) -> Sampling {
        Sampling {
            temperature,
            top_k,
            top_p,
        }
    }

    fn normalised(w: &[f64]) -> Vec<f64> {
        let total: f64 = w.iter().sum();
        w.iter().map(|x| x / total).collect()
    }

    #[test]
    fn temperature_one_keeps_the_distribution() {
        let w = normalised(&sampling(1.0, None, None).weights(&P, &[]).unwrap());
        for (a, b) in w.iter().zip(P) {
            assert!((a - b).abs() < 1e-12, "{w:?}");
        }
    }

    #[test]
    fn temperature_sharpens_and_zero_is_the_argmax() {
        let cold = normalised(&sampling(0.5, None, None).weights(&P, &[]).unwrap());
        assert!(cold[1] > P[1] && cold[2] < P[2], "{cold:?}");
        let tiny = normalised(&sampling(1e-4, None, None).weights(&P, &[]).unwrap());
        assert!((tiny[1] - 1.0).abs() < 1e-12, "{tiny:?}");
        let zero = sampling(0.0, None, None).weights(&P, &[]).unwrap();
        assert_eq!(zero, [0.0, 1.0, 0.0, 0.0, 0.0]);
        for u in [0.0, 0.5, 0.999] {
            assert_eq!(draw(&zero, u), 1);
        }
    }

    #[test]
    fn top_k_keeps_the_k_most_likely() {
        let w = sampling(1.0, Some(2), None).weights(&P, &[]).unwrap();
        let kept: Vec<usize> = (0..5).filter(|&i| w[i] > 0.0).collect();
        assert_eq!(kept, [1, 3]);
    }

    #[test]
    fn top_p_keeps_the_smallest_nucleus() {
        // 0.4 + 0.3 = 0.7 < 0.75, so the third most likely (0.15) is needed too.
        let w = sampling(1.0, None, Some(0.75)).weights(&P, &[]).unwrap();
        let kept: Vec<usize> = (0..5).filter(|&i| w[i] > 0.0).collect();
        assert_eq!(kept, [1, 3, 4]);
    }

    #[test]
    fn banned_tokens_are_never_drawn() {
        let w = sampling(1.0, None, None).weights(&P, &[1, 3]).unwrap();
        assert_eq!((w[1], w[3]), (0.0, 0.0));
        assert_eq!(argmax(&w), 4);
        assert!(sampling(1.0, None, None)
            .weights(&[0.0, 1.0], &[1])
            .is_err());
    }

    #[test]
    fn draw_follows_the_cumulative_weights() {
        let w = [0.0, 2.0, 0.0, 1.0, 1.0];
        assert_eq!(draw(&w, 0.0), 1);
        assert_eq!(draw(&w, 0.49), 1);
        assert_eq!(draw(&w, 0.5), 3);
        assert_eq!(draw(&w, 0.99), 4);
    }

    #[test]
    fn bad_settings_are_errors() {
        assert!(sampling(-1.0, None, None).validate().is_err());
        assert!(sampling(1.0, Some(0), None).validate().is_err());
        assert!(sampling(1.0, None, Some(0.0)).validate().is_err());
        assert!(sampling(1.0, None, Some(1.5)).validate().is_err());
        assert!(sampling(0.0, Some(3), Some(1.0)).validate().is_ok());
    }
}
