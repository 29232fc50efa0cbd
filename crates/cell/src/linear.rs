//! The affine readout `z = h·W_hy + b_y`, applied to many rows (all time steps) at once.

use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2};
use rand::Rng;
use recur_core::linalg::gemm;
use recur_core::{Error, Float, ParamSet, Result, Slot, SlotMut};
use serde::{Deserialize, Serialize};

use crate::Init;

/// Parameters (or gradients) of a [`Linear`] readout. Slot order: `w_hy`, then `b_y`.
///
/// In the language-model tutorial's notation `V = W_hyᵀ`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinearParams<F> {
    /// Weights, `[hidden_size, output_size]`.
    pub w_hy: Array2<F>,
    /// Bias, `[output_size]`, if present.
    pub b_y: Option<Array1<F>>,
}

impl<F: Float> ParamSet<F> for LinearParams<F> {
    fn slot_count(&self) -> usize {
        1 + usize::from(self.b_y.is_some())
    }

    fn slot(&self, index: usize) -> Slot<'_, F> {
        let (name, value) = match (index, &self.b_y) {
            (0, _) => ("w_hy", self.w_hy.view().into_dyn()),
            (1, Some(b)) => ("b_y", b.view().into_dyn()),
            _ => panic!("LinearParams has no slot {index}"),
        };
        Slot {
            name,
            value,
            rows: None,
        }
    }

    fn slot_mut(&mut self, index: usize) -> SlotMut<'_, F> {
        let (name, value) = match (index, &mut self.b_y) {
            (0, _) => ("w_hy", self.w_hy.view_mut().into_dyn()),
            (1, Some(b)) => ("b_y", b.view_mut().into_dyn()),
            _ => panic!("LinearParams has no slot {index}"),
        };
        SlotMut { name, value }
    }
}

/// Sizes and options of a [`Linear`] readout.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LinearConfig {
    /// Inputs (the cell's hidden size).
    pub hidden_size: usize,
    /// Outputs (classes, or output units).
    pub output_size: usize,
    /// Whether there is a bias `b_y`.
    pub bias: bool,
    /// Initialisation of `w_hy` (the bias starts at zero).
    pub init: Init,
}

impl LinearConfig {
    /// A configuration without bias and with [`Init::UniformFanIn`].
    pub fn new(hidden_size: usize, output_size: usize) -> Self {
        LinearConfig {
            hidden_size,
            output_size,
            bias: false,
            init: Init::UniformFanIn,
        }
    }

    /// Sets whether there is a bias.
    pub fn with_bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// Sets the initialisation.
    pub fn with_init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }

    /// Draws the weights from `rng` and builds the readout.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a zero size or an invalid initialisation.
    pub fn init<F: Float>(&self, rng: &mut (impl Rng + ?Sized)) -> Result<Linear<F>> {
        if self.hidden_size == 0 || self.output_size == 0 {
            return Err(Error::config(
                "LinearConfig",
                format!(
                    "hidden_size ({}) and output_size ({}) must be at least 1",
                    self.hidden_size, self.output_size
                ),
            ));
        }
        let w_hy = self.init.matrix(self.hidden_size, self.output_size, rng)?;
        let b_y = self.bias.then(|| Array1::zeros(self.output_size));
        Linear::from_params(LinearParams { w_hy, b_y })
    }
}

/// The readout `z = h·W_hy + b_y`. It is not recurrent, so the engine applies it to the
/// hidden states of all time steps in one matrix product; the loss owns the output
/// function (softmax, sigmoid) and returns `∂L/∂z`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Linear<F> {
    params: LinearParams<F>,
}

impl<F: Float> Linear<F> {
    /// A readout from explicit weights.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when the bias length differs from the output count,
    /// [`Error::InvalidConfig`] for an empty weight matrix.
    pub fn from_params(params: LinearParams<F>) -> Result<Self> {
        if params.w_hy.is_empty() {
            return Err(Error::config("Linear", "w_hy must not be empty"));
        }
        if let Some(b) = &params.b_y {
            if b.len() != params.w_hy.ncols() {
                return Err(Error::shape(
                    "Linear b_y",
                    &[params.w_hy.ncols()],
                    b.shape(),
                ));
            }
        }
        Ok(Linear { params })
    }

    /// Number of inputs (hidden units).
    pub fn hidden_size(&self) -> usize {
        self.params.w_hy.nrows()
    }

    /// Number of outputs.
    pub fn output_size(&self) -> usize {
        self.params.w_hy.ncols()
    }

    /// The parameters.
    pub fn params(&self) -> &LinearParams<F> {
        &self.params
    }

    /// The parameters, writable.
    pub fn params_mut(&mut self) -> &mut LinearParams<F> {
        &mut self.params
    }

    /// A zero gradient with the parameters' layout.
    pub fn zero_grads(&self) -> LinearParams<F> {
        LinearParams {
            w_hy: Array2::zeros(self.params.w_hy.raw_dim()),
            b_y: self.params.b_y.as_ref().map(|b| Array1::zeros(b.raw_dim())),
        }
    }

    /// `logits = h·W_hy + b_y` for `h` of shape `[rows, hidden_size]`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when `h` or `logits` have the wrong shape.
    pub fn forward(&self, h: ArrayView2<'_, F>, mut logits: ArrayViewMut2<'_, F>) -> Result<()> {
        let rows = h.nrows();
        self.check("Linear::forward h", h, self.hidden_size())?;
        if logits.dim() != (rows, self.output_size()) {
            return Err(Error::shape(
                "Linear::forward logits",
                &[rows, self.output_size()],
                logits.shape(),
            ));
        }
        gemm(
            F::one(),
            h,
            self.params.w_hy.view(),
            F::zero(),
            logits.view_mut(),
        )?;
        if let Some(b) = &self.params.b_y {
            logits += b;
        }
        Ok(())
    }

    /// Given `d_logits = ∂L/∂z`, adds `hᵀ·d_logits` (and the bias gradient) into `grads` and
    /// writes `d_h = d_logits·W_hyᵀ`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] on inconsistent shapes.
    pub fn backward(
        &self,
        h: ArrayView2<'_, F>,
        d_logits: ArrayView2<'_, F>,
        d_h: ArrayViewMut2<'_, F>,
        grads: &mut LinearParams<F>,
    ) -> Result<()> {
        self.check("Linear::backward h", h, self.hidden_size())?;
        self.check("Linear::backward d_logits", d_logits, self.output_size())?;
        self.check("Linear::backward d_h", d_h.view(), self.hidden_size())?;
        if h.nrows() != d_logits.nrows() || h.nrows() != d_h.nrows() {
            return Err(Error::shape(
                "Linear::backward",
                &[h.nrows(), self.output_size()],
                d_logits.shape(),
            ));
        }
        gemm(F::one(), h.t(), d_logits, F::one(), grads.w_hy.view_mut())?;
        if let Some(b) = &mut grads.b_y {
            for row in d_logits.rows() {
                *b += &row;
            }
        }
        gemm(F::one(), d_logits, self.params.w_hy.t(), F::zero(), d_h)?;
        Ok(())
    }

    fn check(&self, op: &'static str, m: ArrayView2<'_, F>, cols: usize) -> Result<()> {
        if m.ncols() != cols {
            return Err(Error::shape(op, &[m.nrows(), cols], m.shape()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn forward_and_backward_by_hand() {
        let lin = Linear::from_params(LinearParams {
            w_hy: array![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]],
            b_y: Some(array![0.5, -0.5]),
        })
        .unwrap();
        let h = array![[1.0, 0.0, -1.0]];
        let mut z = Array2::zeros((1, 2));
        lin.forward(h.view(), z.view_mut()).unwrap();
        assert_eq!(z, array![[-3.5, -4.5]]);
        let mut g = lin.zero_grads();
        let mut d_h = Array2::zeros((1, 3));
        lin.backward(h.view(), array![[1.0, 2.0]].view(), d_h.view_mut(), &mut g)
            .unwrap();
        assert_eq!(d_h, array![[5.0, 11.0, 17.0]]);
        assert_eq!(g.w_hy, array![[1.0, 2.0], [0.0, 0.0], [-1.0, -2.0]]);
        assert_eq!(g.b_y, Some(array![1.0, 2.0]));
    }

    #[test]
    fn wrong_shapes_are_errors() {
        let lin = LinearConfig::new(3, 2)
            .init::<f64>(&mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0))
            .unwrap();
        let mut z = Array2::zeros((1, 3));
        assert!(lin
            .forward(Array2::zeros((1, 3)).view(), z.view_mut())
            .is_err());
        assert!(LinearConfig::new(0, 2)
            .init::<f64>(&mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0))
            .is_err());
    }
}
