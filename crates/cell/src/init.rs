//! Seeded weight initialisation.

use ndarray::{Array1, Array2};
use rand::Rng;
use rand_distr::{Distribution, Normal, Uniform};
use recur_core::{Error, Float, Result};
use serde::{Deserialize, Serialize};

/// How to draw initial weights. All schemes are reproducible from the caller's seeded RNG.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub enum Init {
    /// Uniform in `[low, high)`; the classic binary-addition network uses `[−1, 1)`.
    Uniform {
        /// Lower bound (inclusive).
        low: f64,
        /// Upper bound (exclusive).
        high: f64,
    },
    /// Uniform in `[−1/√fan_in, 1/√fan_in)`, where `fan_in` is the number of rows of the
    /// weight matrix (inputs feeding one unit): the language-model tutorial's scheme.
    #[default]
    UniformFanIn,
    /// Normal with mean 0 and the given standard deviation.
    Normal {
        /// Standard deviation.
        std: f64,
    },
    /// All zeros (biases, tests).
    Zeros,
}

impl Init {
    /// Draws a `[rows, cols]` matrix; `rows` is the fan-in.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for empty or non-finite ranges or a negative deviation.
    pub fn matrix<F: Float, R: Rng + ?Sized>(
        self,
        rows: usize,
        cols: usize,
        rng: &mut R,
    ) -> Result<Array2<F>> {
        let values = self.draw(rows, rows * cols, rng)?;
        Ok(Array2::from_shape_vec((rows, cols), values).expect("length is rows * cols"))
    }

    /// Draws a vector of `len` entries with the given fan-in.
    ///
    /// # Errors
    /// As [`Init::matrix`].
    pub fn vector<F: Float, R: Rng + ?Sized>(
        self,
        fan_in: usize,
        len: usize,
        rng: &mut R,
    ) -> Result<Array1<F>> {
        Ok(Array1::from_vec(self.draw(fan_in, len, rng)?))
    }

    fn draw<F: Float, R: Rng + ?Sized>(
        self,
        fan_in: usize,
        len: usize,
        rng: &mut R,
    ) -> Result<Vec<F>> {
        let uniform = |low: f64, high: f64, rng: &mut R| -> Result<Vec<F>> {
            let dist = Uniform::new(low, high)
                .map_err(|e| Error::config("init", format!("uniform [{low}, {high}): {e}")))?;
            Ok((0..len)
                .map(|_| F::from_f64_lossy(dist.sample(rng)))
                .collect())
        };
        match self {
            Init::Uniform { low, high } => uniform(low, high, rng),
            Init::UniformFanIn => {
                let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
                uniform(-bound, bound, rng)
            }
            Init::Normal { std } => {
                if !(std.is_finite() && std >= 0.0) {
                    return Err(Error::config(
                        "init",
                        format!("normal std {std} must be finite and >= 0"),
                    ));
                }
                let dist = Normal::new(0.0, std)
                    .map_err(|e| Error::config("init", format!("normal std {std}: {e}")))?;
                Ok((0..len)
                    .map(|_| F::from_f64_lossy(dist.sample(rng)))
                    .collect())
            }
            Init::Zeros => Ok(vec![F::zero(); len]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn fan_in_bounds_and_reproducibility() {
        let draw = |seed| {
            Init::UniformFanIn
                .matrix::<f64, _>(100, 3, &mut StdRng::seed_from_u64(seed))
                .unwrap()
        };
        let a = draw(1);
        assert!(a.iter().all(|v| v.abs() < 0.1));
        assert_eq!(a, draw(1));
        assert_ne!(a, draw(2));
    }

    #[test]
    fn invalid_ranges_are_errors() {
        let mut rng = StdRng::seed_from_u64(0);
        let bad = Init::Uniform {
            low: 1.0,
            high: -1.0,
        };
        assert!(bad.matrix::<f32, _>(2, 2, &mut rng).is_err());
        assert!(Init::Normal { std: -1.0 }
            .vector::<f32, _>(2, 2, &mut rng)
            .is_err());
    }
}
