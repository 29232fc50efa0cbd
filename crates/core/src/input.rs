//! One time step of input for a batch of sequences.

use ndarray::ArrayView2;

use crate::{Error, Result};

/// The input of one time step for a batch of `batch` sequences.
///
/// Token inputs are never expanded to one-hot rows: a cell reads the weight row of each
/// token (a gather) and its backward pass adds into those rows only (a scatter-add).
#[derive(Debug, Clone, Copy)]
pub enum Input<'a, F> {
    /// Dense features, shape `[batch, input_size]`.
    Dense(ArrayView2<'a, F>),
    /// One token id per sequence, each `< input_size` (the vocabulary size).
    Tokens(&'a [usize]),
}

impl<'a, F> Input<'a, F> {
    /// The same input with a shorter lifetime (array views are invariant in theirs), to put
    /// it beside shorter-lived views in one struct.
    pub fn reborrow<'b>(self) -> Input<'b, F>
    where
        'a: 'b,
    {
        match self {
            Input::Dense(x) => Input::Dense(x.reborrow()),
            Input::Tokens(ids) => Input::Tokens(ids),
        }
    }

    /// Number of sequences in the batch.
    pub fn batch(&self) -> usize {
        match self {
            Input::Dense(x) => x.nrows(),
            Input::Tokens(ids) => ids.len(),
        }
    }

    /// Checks the input against a layer of `input_size` inputs and a batch of `batch` rows.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when the batch or feature count differs,
    /// [`Error::TokenOutOfRange`] when a token id is not below `input_size`.
    pub fn check(&self, op: &'static str, batch: usize, input_size: usize) -> Result<()> {
        match self {
            Input::Dense(x) => {
                if x.dim() != (batch, input_size) {
                    return Err(Error::shape(op, &[batch, input_size], x.shape()));
                }
            }
            Input::Tokens(ids) => {
                if ids.len() != batch {
                    return Err(Error::shape(op, &[batch], &[ids.len()]));
                }
                if let Some(&token) = ids.iter().find(|&&t| t >= input_size) {
                    return Err(Error::TokenOutOfRange {
                        token,
                        vocab_size: input_size,
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn check_reports_shapes_and_tokens() {
        let x = Array2::<f64>::zeros((2, 3));
        assert!(Input::Dense(x.view()).check("t", 2, 3).is_ok());
        assert!(matches!(
            Input::Dense(x.view()).check("t", 2, 4),
            Err(Error::ShapeMismatch { .. })
        ));
        let ids = [0, 4];
        assert!(matches!(
            Input::<f64>::Tokens(&ids).check("t", 2, 4),
            Err(Error::TokenOutOfRange {
                token: 4,
                vocab_size: 4
            })
        ));
        assert_eq!(Input::<f64>::Tokens(&ids).batch(), 2);
    }
}
