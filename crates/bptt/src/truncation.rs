//! Truncation schemes: Williams & Peng's BPTT(h; h′) and its named special cases.

use recur_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// Which gradient paths the backward pass keeps: every `stride` (h′) steps it
/// back-propagates through the last `window` (h) steps, injecting the errors of the outputs
/// seen since the previous backward pass that lie inside the window.
///
/// | constructor | window h | stride h′ | meaning |
/// |---|---|---|---|
/// | [`Truncation::full`] | T | T | exact gradient of the whole sequence |
/// | [`Truncation::chunked`]`(k)` | k | k | "detach every k steps" |
/// | [`Truncation::per_output`]`(k)` | k + 1 | 1 | each output reaches back k steps besides its own (the language-model tutorial's `bptt_truncate = k`) |
/// | [`Truncation::last`]`(k)` | k | T | only the last k steps, and their outputs, get gradient |
/// | [`Truncation::new`]`(h, h′)` | h | h′ | the general scheme, `h ≥ h′` |
///
/// When the sequence length is not a multiple of the stride, a last backward pass runs at
/// the final step, reaching back as far as a pass at the next multiple of the stride would
/// (so the passes of `chunked(k)` cut the sequence at multiples of k).
///
/// ```
/// use recur_bptt::Truncation;
/// let t = Truncation::per_output(4).unwrap();
/// assert_eq!((t.window(), t.stride()), (Some(5), Some(1)));
/// assert!(Truncation::chunked(0).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truncation {
    window: Option<usize>,
    stride: Option<usize>,
}

/// One backward pass of a scheme over a sequence: it starts at step `end`, reaches back to
/// step `start` (both inclusive, 0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pass {
    pub start: usize,
    pub end: usize,
}

impl Truncation {
    /// Full backpropagation through time: the exact gradient.
    pub fn full() -> Self {
        Truncation {
            window: None,
            stride: None,
        }
    }

    /// Chunked truncation: the sequence is cut into chunks of `k` steps and each chunk is
    /// back-propagated on its own (h = h′ = k).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `k == 0`.
    pub fn chunked(k: usize) -> Result<Self> {
        Self::new(k, k)
    }

    /// Per-output truncation: each output's error is pushed back through its own step and
    /// at most `k` earlier ones (h′ = 1, h = k + 1). `per_output(k)` reproduces the
    /// language-model tutorial's `bptt_truncate = k`. `k = 0` keeps only each output's own step.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `k + 1` overflows.
    pub fn per_output(k: usize) -> Result<Self> {
        let window = k
            .checked_add(1)
            .ok_or_else(|| Error::config("truncation", "per_output(k): k is too large"))?;
        Self::new(window, 1)
    }

    /// Only the last `k` steps of each sequence are back-propagated, and only their outputs
    /// contribute (what the tutorial's Theano version computes with `truncate_gradient`).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `k == 0`.
    pub fn last(k: usize) -> Result<Self> {
        if k == 0 {
            return Err(Error::config("truncation", "last(k) needs k >= 1"));
        }
        Ok(Truncation {
            window: Some(k),
            stride: None,
        })
    }

    /// The general scheme BPTT(h; h′): every `stride` steps, back-propagate through the
    /// last `window` steps.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `stride == 0` or `window < stride` (outputs between
    /// passes would be skipped).
    pub fn new(window: usize, stride: usize) -> Result<Self> {
        if stride == 0 {
            return Err(Error::config(
                "truncation",
                "the stride h' must be at least 1",
            ));
        }
        if window < stride {
            return Err(Error::config(
                "truncation",
                format!("window h = {window} must be at least the stride h' = {stride}"),
            ));
        }
        Ok(Truncation {
            window: Some(window),
            stride: Some(stride),
        })
    }

    /// Window h, or `None` for "the whole sequence".
    pub fn window(&self) -> Option<usize> {
        self.window
    }

    /// Stride h′, or `None` for "once, at the end of the sequence".
    pub fn stride(&self) -> Option<usize> {
        self.stride
    }

    /// The backward passes over a sequence of `seq_len` steps, in increasing `end` order,
    /// written into `out` (cleared first; reusing it avoids allocation).
    pub(crate) fn passes(&self, seq_len: usize, out: &mut Vec<Pass>) {
        out.clear();
        if seq_len == 0 {
            return;
        }
        // Not clipped to the length: a remainder pass's window is measured from a step past
        // the end.
        let window = self.window.unwrap_or(seq_len);
        let pass = |end: usize| Pass {
            start: (end + 1).saturating_sub(window),
            end,
        };
        match self.stride {
            Some(stride) => {
                let mut end = stride - 1;
                while end < seq_len {
                    out.push(pass(end));
                    end += stride;
                }
                if out.last().map(|p| p.end) != Some(seq_len - 1) {
                    // The remainder pass keeps the stride grid: it reaches back as far as a
                    // pass at the next multiple of the stride would, so `chunked(k)` cuts
                    // the last, shorter chunk at a multiple of k.
                    let virtual_end = end;
                    out.push(Pass {
                        start: (virtual_end + 1).saturating_sub(window),
                        end: seq_len - 1,
                    });
                }
            }
            None => out.push(pass(seq_len - 1)),
        }
    }

    /// Greatest number of passes alive at one step (the height of the stack of gradients the
    /// backward sweep carries).
    pub(crate) fn max_live(&self, seq_len: usize) -> usize {
        let window = self.window.unwrap_or(seq_len).min(seq_len).max(1);
        match self.stride {
            Some(stride) => window.div_ceil(stride) + 1,
            None => 1,
        }
    }
}

impl std::fmt::Display for Truncation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.window, self.stride) {
            (None, _) => write!(f, "full"),
            (Some(k), None) => write!(f, "last:{k}"),
            (Some(h), Some(1)) => write!(f, "per-output:{}", h - 1),
            (Some(h), Some(s)) if h == s => write!(f, "chunked:{h}"),
            (Some(h), Some(s)) => write!(f, "bptt:{h}:{s}"),
        }
    }
}

impl std::str::FromStr for Truncation {
    type Err = Error;

    /// Parses `full`, `chunked:K`, `per-output:K`, `last:K` or `bptt:H:H'` (the
    /// [`Display`](std::fmt::Display) form).
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::config(
                "truncation",
                format!("'{s}': expected full, chunked:K, per-output:K, last:K or bptt:H:H'"),
            )
        };
        let mut parts = s.trim().split(':');
        let name = parts.next().ok_or_else(bad)?;
        let mut number = || -> Result<usize> {
            parts
                .next()
                .ok_or_else(bad)?
                .trim()
                .parse()
                .map_err(|_| bad())
        };
        let t = match name {
            "full" => Truncation::full(),
            "chunked" => Truncation::chunked(number()?)?,
            "per-output" | "per_output" => Truncation::per_output(number()?)?,
            "last" => Truncation::last(number()?)?,
            "bptt" => {
                let h = number()?;
                Truncation::new(h, number()?)?
            }
            _ => return Err(bad()),
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passes(t: Truncation, n: usize) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        t.passes(n, &mut out);
        out.iter().map(|p| (p.start, p.end)).collect()
    }

    #[test]
    fn pass_schedules() {
        assert_eq!(passes(Truncation::full(), 5), vec![(0, 4)]);
        assert_eq!(
            passes(Truncation::chunked(2).unwrap(), 5),
            vec![(0, 1), (2, 3), (4, 4)]
        );
        assert_eq!(
            passes(Truncation::chunked(5).unwrap(), 23),
            vec![(0, 4), (5, 9), (10, 14), (15, 19), (20, 22)]
        );
        assert_eq!(
            passes(Truncation::per_output(1).unwrap(), 3),
            vec![(0, 0), (0, 1), (1, 2)]
        );
        assert_eq!(passes(Truncation::last(2).unwrap(), 5), vec![(3, 4)]);
        assert_eq!(
            passes(Truncation::new(3, 2).unwrap(), 5),
            vec![(0, 1), (1, 3), (3, 4)]
        );
    }

    #[test]
    fn invalid_settings_are_errors() {
        assert!(Truncation::chunked(0).is_err());
        assert!(Truncation::last(0).is_err());
        assert!(Truncation::new(2, 3).is_err());
        assert!(Truncation::per_output(usize::MAX).is_err());
        assert!(Truncation::per_output(0).is_ok());
    }

    #[test]
    fn parse_and_display_round_trip() {
        for s in ["full", "chunked:25", "per-output:4", "last:3", "bptt:6:2"] {
            let t: Truncation = s.parse().unwrap();
            assert_eq!(t.to_string(), s);
        }
        for s in ["", "chunked", "chunked:x", "per-output:4:1", "half:2"] {
            assert!(s.parse::<Truncation>().is_err(), "{s}");
        }
    }
}
