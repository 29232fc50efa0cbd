//! The affine readout `z = h·W_hy + b_y`, applied to many rows (all time steps) at once.

use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2};
use rand::Rng;
use recur_core::linalg::gemm;
use recur_core::{params, Error, Float, ParamSet, Result, Slot, SlotMut};
use serde::{Deserialize, Serialize};

use crate::{Init, Readout};

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

    /// The weights, by name (the [`Readout`] trait gives them as a [`ParamSet`]).
    pub fn weights(&self) -> &LinearParams<F> {
        &self.params
    }

    /// The weights, writable. Shapes must stay as they are: every call checks them.
    pub fn weights_mut(&mut self) -> &mut LinearParams<F> {
        &mut self.params
    }

    /// Checks that `h` and `d_logits` are rows of this layer's inputs and outputs, as many
    /// of each.
    fn check_rows(
        &self,
        op: &'static str,
        h: ArrayView2<'_, F>,
        d_logits: ArrayView2<'_, F>,
    ) -> Result<()> {
        check_cols(op, h, self.input_size())?;
        check_cols(op, d_logits, self.output_size())?;
        if h.nrows() != d_logits.nrows() {
            return Err(Error::shape(
                op,
                &[h.nrows(), self.output_size()],
                d_logits.shape(),
            ));
        }
        Ok(())
    }
}

fn check_cols<F: Float>(op: &'static str, m: ArrayView2<'_, F>, cols: usize) -> Result<()> {
    if m.ncols() != cols {
        return Err(Error::shape(op, &[m.nrows(), cols], m.shape()));
    }
    Ok(())
}

impl<F: Float> Readout<F> for Linear<F> {
    type Params = LinearParams<F>;
    type Cache = ();

    fn input_size(&self) -> usize {
        self.params.w_hy.nrows()
    }

    fn output_size(&self) -> usize {
        self.params.w_hy.ncols()
    }

    fn params(&self) -> &dyn ParamSet<F> {
        &self.params
    }

    fn params_mut(&mut self) -> &mut dyn ParamSet<F> {
        &mut self.params
    }

    fn zero_grads(&self) -> LinearParams<F> {
        params::zeroed(&self.params)
    }

    /// `logits = h·W_hy + b_y`.
    fn forward(
        &self,
        h: ArrayView2<'_, F>,
        mut logits: ArrayViewMut2<'_, F>,
        _: &mut (),
    ) -> Result<()> {
        let rows = h.nrows();
        check_cols("Linear::forward h", h, self.input_size())?;
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

    /// Adds `hᵀ·d_logits` (and the bias gradient) into `grads` and writes
    /// `d_h = d_logits·W_hyᵀ`.
    fn backward(
        &self,
        h: ArrayView2<'_, F>,
        cache: &(),
        d_logits: ArrayView2<'_, F>,
        d_h: ArrayViewMut2<'_, F>,
        grads: &mut LinearParams<F>,
    ) -> Result<()> {
        self.check_rows("Linear::backward", h, d_logits)?;
        gemm(F::one(), h.t(), d_logits, F::one(), grads.w_hy.view_mut())?;
        self.backward_deferred(h, cache, d_logits, d_h, grads)
    }

    /// The weights `w_hy` (slot 0): their gradient is `hᵀ·d_logits`.
    fn deferrable_slot(&self) -> Option<usize> {
        Some(0)
    }

    /// Adds the bias gradient into `grads.b_y` and writes `d_h = d_logits·W_hyᵀ`;
    /// `grads.w_hy` is not touched.
    fn backward_deferred(
        &self,
        _h: ArrayView2<'_, F>,
        _: &(),
        d_logits: ArrayView2<'_, F>,
        d_h: ArrayViewMut2<'_, F>,
        grads: &mut LinearParams<F>,
    ) -> Result<()> {
        check_cols("Linear::backward d_logits", d_logits, self.output_size())?;
        if d_h.dim() != (d_logits.nrows(), self.input_size()) {
            return Err(Error::shape(
                "Linear::backward d_h",
                &[d_logits.nrows(), self.input_size()],
                d_h.shape(),
            ));
        }
        if let Some(b) = &mut grads.b_y {
            for row in d_logits.rows() {
                *b += &row;
            }
        }
        gemm(F::one(), d_logits, self.params.w_hy.t(), F::zero(), d_h)?;
        Ok(())
    }

    /// `W_hy ← W_hy + alpha·hᵀ·d_logits`: a weight gradient, scaled (for SGD, by minus the
    /// learning rate), added to the weights in one matrix product. On a shape error the
    /// weights are unchanged.
    ///
    /// ```
    /// use ndarray::array;
    /// use recur_cell::{Linear, LinearParams, Readout};
    ///
    /// let mut lin = Linear::from_params(LinearParams { w_hy: array![[1.0_f64, 2.0]], b_y: None })?;
    /// lin.add_deferred(-0.5, array![[2.0]].view(), array![[1.0, -1.0]].view())?;
    /// assert_eq!(lin.weights().w_hy, array![[0.0, 3.0]]);
    /// # Ok::<(), recur_core::Error>(())
    /// ```
    fn add_deferred(
        &mut self,
        alpha: F,
        h: ArrayView2<'_, F>,
        d_logits: ArrayView2<'_, F>,
    ) -> Result<()> {
        self.check_rows("Linear::add_deferred", h, d_logits)?;
        gemm(
            alpha,
            h.t(),
            d_logits,
            F::one(),
            self.params.w_hy.view_mut(),
        )?;
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
        lin.forward(h.view(), z.view_mut(), &mut ()).unwrap();
        assert_eq!(z, array![[-3.5, -4.5]]);
        let mut g = lin.zero_grads();
        let mut d_h = Array2::zeros((1, 3));
        lin.backward(
            h.view(),
            &(),
            array![[1.0, 2.0]].view(),
            d_h.view_mut(),
            &mut g,
        )
        .unwrap();
        assert_eq!(d_h, array![[5.0, 11.0, 17.0]]);
        assert_eq!(g.w_hy, array![[1.0, 2.0], [0.0, 0.0], [-1.0, -2.0]]);
        assert_eq!(g.b_y, Some(array![1.0, 2.0]));
    }

    #[test]
    fn split_backward_equals_backward() {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(3);
        let mut lin = LinearConfig::new(4, 6)
            .with_bias(true)
            .init::<f64>(&mut rng)
            .unwrap();
        let h = Array2::from_shape_fn((5, 4), |(i, j)| (i as f64 - 2.0) * 0.3 + j as f64 * 0.1);
        let d_logits = Array2::from_shape_fn((5, 6), |(i, j)| ((i * 7 + j) % 5) as f64 - 2.0);
        let (mut whole, mut split) = (lin.zero_grads(), lin.zero_grads());
        let (mut d_h, mut d_h_split) = (Array2::zeros((5, 4)), Array2::zeros((5, 4)));
        lin.backward(h.view(), &(), d_logits.view(), d_h.view_mut(), &mut whole)
            .unwrap();
        lin.backward_deferred(
            h.view(),
            &(),
            d_logits.view(),
            d_h_split.view_mut(),
            &mut split,
        )
        .unwrap();
        assert_eq!(d_h, d_h_split);
        assert_eq!(whole.b_y, split.b_y);
        assert!(split.w_hy.iter().all(|&g| g == 0.0));
        let expected = &lin.weights().w_hy - &(0.25 * &whole.w_hy);
        lin.add_deferred(-0.25, h.view(), d_logits.view()).unwrap();
        let diff = (&lin.weights().w_hy - &expected).mapv(f64::abs);
        assert!(diff.iter().all(|&d| d < 1e-14), "{diff}");
        assert!(lin
            .add_deferred(1.0, h.view(), d_logits.slice(ndarray::s![..4, ..]))
            .is_err());
    }

    #[test]
    fn wrong_shapes_are_errors() {
        let lin = LinearConfig::new(3, 2)
            .init::<f64>(&mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0))
            .unwrap();
        let mut z = Array2::zeros((1, 3));
        assert!(lin
            .forward(Array2::zeros((1, 3)).view(), z.view_mut(), &mut ())
            .is_err());
        assert!(LinearConfig::new(0, 2)
            .init::<f64>(&mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0))
            .is_err());
    }
}
