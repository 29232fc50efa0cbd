//! Binary-addition samples: two random operands, their sum, and all three as bit vectors.
//!
//! Bit vectors are least-significant bit first, which is the order a recurrent network
//! reads them in (the carry flows from one step to the next).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{DataError, Result};

/// Largest width [`AdditionSampler`] accepts.
pub const MAX_SAMPLER_BITS: u32 = 32;

/// One addition problem: `a + b = sum`, each also as `bits` bits, least significant first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdditionSample {
    /// First operand.
    pub a: u64,
    /// Second operand.
    pub b: u64,
    /// `a + b`.
    pub sum: u64,
    /// Bits of `a`, least significant first.
    pub a_bits: Vec<u8>,
    /// Bits of `b`, least significant first.
    pub b_bits: Vec<u8>,
    /// Bits of `sum`, least significant first.
    pub sum_bits: Vec<u8>,
}

impl AdditionSample {
    /// The time steps a network sees: `([a_t, b_t], sum_t)` for `t` from the least
    /// significant bit up.
    ///
    /// ```
    /// use recur_data::AdditionSampler;
    /// let sample = AdditionSampler::new(4, 0)?.sample();
    /// for (t, ([a, b], c)) in sample.steps().enumerate() {
    ///     assert_eq!(u64::from(a), (sample.a >> t) & 1);
    ///     assert_eq!(u64::from(b), (sample.b >> t) & 1);
    ///     assert_eq!(u64::from(c), (sample.sum >> t) & 1);
    /// }
    /// # Ok::<(), recur_data::DataError>(())
    /// ```
    pub fn steps(&self) -> impl Iterator<Item = ([u8; 2], u8)> + '_ {
        self.a_bits
            .iter()
            .zip(&self.b_bits)
            .zip(&self.sum_bits)
            .map(|((&a, &b), &c)| ([a, b], c))
    }
}

/// A seeded source of [`AdditionSample`]s: `a` and `b` are drawn uniformly from
/// `0..2^(bits-1)`, so the sum always fits in `bits` bits (for 8 bits, operands below 128
/// as in the classic program). The same seed gives the same samples.
///
/// It is also an endless [`Iterator`].
///
/// ```
/// use recur_data::AdditionSampler;
///
/// let mut sampler = AdditionSampler::new(8, 42)?;
/// let s = sampler.sample();
/// assert!(s.a < 128 && s.b < 128);
/// assert_eq!(s.sum, s.a + s.b);
/// assert_eq!(s.sum_bits.len(), 8);
/// let again: Vec<_> = AdditionSampler::new(8, 42)?.take(1).collect();
/// assert_eq!(again[0], s);
/// # Ok::<(), recur_data::DataError>(())
/// ```
#[derive(Clone, Debug)]
pub struct AdditionSampler {
    bits: u32,
    rng: StdRng,
}

impl AdditionSampler {
    /// A sampler of `bits`-bit problems seeded with `seed`.
    ///
    /// # Errors
    /// [`DataError::InvalidConfig`] unless `1 <= bits <= 32`.
    pub fn new(bits: u32, seed: u64) -> Result<Self> {
        if !(1..=MAX_SAMPLER_BITS).contains(&bits) {
            return Err(DataError::InvalidConfig {
                name: "bits",
                reason: format!("{bits} is outside 1..={MAX_SAMPLER_BITS}"),
            });
        }
        Ok(Self {
            bits,
            rng: StdRng::seed_from_u64(seed),
        })
    }

    /// The width of every bit vector.
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// Exclusive upper bound of each operand: `2^(bits-1)`.
    pub fn operand_limit(&self) -> u64 {
        1 << (self.bits - 1)
    }

    /// Draws the next problem.
    pub fn sample(&mut self) -> AdditionSample {
        let limit = self.operand_limit();
        let a = self.rng.random_range(0..limit);
        let b = self.rng.random_range(0..limit);
        let sum = a + b;
        // All three fit by construction (each operand < 2^(bits-1)), so no error is possible.
        let bits = |v: u64| (0..self.bits).map(|i| ((v >> i) & 1) as u8).collect();
        AdditionSample {
            a,
            b,
            sum,
            a_bits: bits(a),
            b_bits: bits(b),
            sum_bits: bits(sum),
        }
    }
}

impl Iterator for AdditionSampler {
    type Item = AdditionSample;

    fn next(&mut self) -> Option<AdditionSample> {
        Some(self.sample())
    }
}

/// `value` as `bits` bits, least significant first.
///
/// ```
/// assert_eq!(recur_data::to_bits(6, 4)?, [0, 1, 1, 0]);
/// # Ok::<(), recur_data::DataError>(())
/// ```
///
/// # Errors
/// [`DataError::InvalidConfig`] if `bits` is not in `1..=64` or `value` does not fit.
pub fn to_bits(value: u64, bits: u32) -> Result<Vec<u8>> {
    if !(1..=64).contains(&bits) {
        return Err(DataError::InvalidConfig {
            name: "bits",
            reason: format!("{bits} is outside 1..=64"),
        });
    }
    if bits < 64 && value >> bits != 0 {
        return Err(DataError::InvalidConfig {
            name: "value",
            reason: format!("{value} does not fit in {bits} bits"),
        });
    }
    Ok((0..bits).map(|i| ((value >> i) & 1) as u8).collect())
}

/// Something that can stand for one bit: `u8` and `bool` exactly, floats (network
/// outputs) rounded at 0.5.
pub trait Bit: Copy + std::fmt::Debug {
    /// The bit, or `None` if the value is not one (a `u8` other than 0/1, a NaN).
    fn to_bit(self) -> Option<bool>;
}

impl Bit for bool {
    fn to_bit(self) -> Option<bool> {
        Some(self)
    }
}

impl Bit for u8 {
    fn to_bit(self) -> Option<bool> {
        match self {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
}

impl Bit for f64 {
    fn to_bit(self) -> Option<bool> {
        (!self.is_nan()).then_some(self >= 0.5)
    }
}

impl Bit for f32 {
    fn to_bit(self) -> Option<bool> {
        f64::from(self).to_bit()
    }
}

/// The number whose bits (least significant first) are `bits`. Accepts exact bits or
/// network outputs, which are rounded like the classic program's `np.round`.
///
/// ```
/// use recur_data::from_bits;
/// assert_eq!(from_bits(&[0u8, 1, 1, 0])?, 6);
/// assert_eq!(from_bits(&[0.1_f64, 0.9, 0.7, 0.2])?, 6);
/// # Ok::<(), recur_data::DataError>(())
/// ```
///
/// # Errors
/// [`DataError::InvalidBit`] for a value that is not a bit; [`DataError::InvalidConfig`] for
/// more than 64 bits.
pub fn from_bits<B: Bit>(bits: &[B]) -> Result<u64> {
    if bits.len() > 64 {
        return Err(DataError::InvalidConfig {
            name: "bits",
            reason: format!("{} bits do not fit in a u64", bits.len()),
        });
    }
    bits.iter()
        .enumerate()
        .try_fold(0u64, |acc, (position, &bit)| match bit.to_bit() {
            Some(set) => Ok(acc | (u64::from(set) << position)),
            None => Err(DataError::InvalidBit {
                position,
                value: format!("{bit:?}"),
            }),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn same_seed_same_samples_other_seed_differs() {
        let a: Vec<_> = AdditionSampler::new(8, 7).unwrap().take(50).collect();
        let b: Vec<_> = AdditionSampler::new(8, 7).unwrap().take(50).collect();
        let c: Vec<_> = AdditionSampler::new(8, 8).unwrap().take(50).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn classic_eight_bit_samples_are_correct() {
        let mut sampler = AdditionSampler::new(8, 0).unwrap();
        assert_eq!(sampler.operand_limit(), 128);
        for s in sampler.by_ref().take(1000) {
            assert!(s.a < 128 && s.b < 128);
            assert_eq!(s.sum, s.a + s.b);
            assert_eq!(from_bits(&s.a_bits).unwrap(), s.a);
            assert_eq!(from_bits(&s.b_bits).unwrap(), s.b);
            assert_eq!(from_bits(&s.sum_bits).unwrap(), s.sum);
            assert_eq!(s.steps().count(), 8);
        }
        assert_eq!(sampler.bits(), 8);
    }

    #[test]
    fn widths_at_the_edges() {
        let s = AdditionSampler::new(1, 3).unwrap().sample();
        assert_eq!((s.a, s.b, s.sum_bits), (0, 0, vec![0]));
        let mut wide = AdditionSampler::new(32, 3).unwrap();
        for s in wide.by_ref().take(100) {
            assert!(s.sum < 1 << 32);
            assert_eq!(from_bits(&s.sum_bits).unwrap(), s.sum);
        }
        assert!(AdditionSampler::new(0, 0).is_err());
        assert!(AdditionSampler::new(33, 0).is_err());
    }

    #[test]
    fn bit_conversion_errors() {
        assert!(to_bits(16, 4).is_err());
        assert!(to_bits(0, 0).is_err());
        assert!(to_bits(0, 65).is_err());
        assert_eq!(to_bits(u64::MAX, 64).unwrap(), vec![1; 64]);
        assert!(matches!(
            from_bits(&[1u8, 2]),
            Err(DataError::InvalidBit { position: 1, .. })
        ));
        assert!(matches!(
            from_bits(&[f64::NAN]),
            Err(DataError::InvalidBit { position: 0, .. })
        ));
        assert!(from_bits(&[0u8; 65]).is_err());
        assert_eq!(from_bits::<u8>(&[]).unwrap(), 0);
        assert_eq!(from_bits(&[true, false, true]).unwrap(), 5);
        assert_eq!(from_bits(&[0.5_f32, 0.49]).unwrap(), 1);
    }

    proptest! {
        #[test]
        fn bits_round_trip(value in any::<u64>(), extra in 0u32..64) {
            let needed = (64 - value.leading_zeros()).max(1);
            let bits = (needed + extra).min(64);
            let v = to_bits(value, bits).unwrap();
            prop_assert_eq!(v.len(), bits as usize);
            prop_assert_eq!(from_bits(&v).unwrap(), value);
            if needed > 1 {
                prop_assert!(to_bits(value, needed - 1).is_err());
            }
        }
    }
}
