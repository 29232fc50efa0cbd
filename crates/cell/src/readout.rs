//! The `Readout` trait: the per-step output head, applied to all steps at once.

use std::fmt::Debug;

use ndarray::{ArrayView2, ArrayViewMut2};
use recur_core::{Error, Float, ParamSet, Result};

/// The output head of a recurrent model: logits `z_t = g(h_t)` for every step. It is not
/// recurrent, so the engine hands it the hidden states of all steps as one matrix
/// `[rows, input_size]` (row `t·batch + b`) and it answers with one matrix of logits; the
/// loss owns the output function (softmax, sigmoid) and gives back `∂L/∂z`.
///
/// [`Linear`](crate::Linear) (`z = h·W_hy + b_y`) is the usual head; a user's own (two
/// layers, tied embeddings, …) implements this trait and trains through the same engine.
///
/// **Fused SGD, optional.** A readout whose gradient includes `hᵀ·∂L/∂z` for one of its
/// slots (as `Linear`'s weights) may offer to leave that product unformed: it names the slot
/// in [`Readout::deferrable_slot`], skips it in [`Readout::backward_deferred`] and applies
/// it, scaled, straight to its weights in [`Readout::add_deferred`]. With plain SGD the
/// trainer then updates those weights inside the product that computes their gradient.
/// The defaults offer nothing.
pub trait Readout<F: Float>: Send + Sync + Debug {
    /// The type of the readout's gradients, with the layout of [`Readout::params`].
    type Params: ParamSet<F> + Clone + Debug + Send + Sync;
    /// What [`Readout::forward`] keeps for [`Readout::backward`] (`()` for an affine head).
    /// The readout sizes it itself, and should reuse its buffers from call to call.
    type Cache: Default + Debug + Send + Sync;

    /// Columns of the input `h` (the cell's hidden size).
    fn input_size(&self) -> usize;

    /// Columns of the logits.
    fn output_size(&self) -> usize;

    /// The parameters, as a set whose slots match [`Readout::Params`] one for one.
    fn params(&self) -> &dyn ParamSet<F>;

    /// The parameters, writable.
    fn params_mut(&mut self) -> &mut dyn ParamSet<F>;

    /// A zero gradient with the layout of [`Readout::params`].
    fn zero_grads(&self) -> Self::Params;

    /// Writes `logits = g(h)` for `h` of shape `[rows, input_size]`, keeping in `cache` what
    /// the backward pass needs.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when `h` or `logits` have the wrong shape.
    fn forward(
        &self,
        h: ArrayView2<'_, F>,
        logits: ArrayViewMut2<'_, F>,
        cache: &mut Self::Cache,
    ) -> Result<()>;

    /// Given `d_logits = ∂L/∂z` for the rows of the last [`Readout::forward`], adds the
    /// parameter gradients into `grads` and writes `d_h = ∂L/∂h`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] on inconsistent shapes.
    fn backward(
        &self,
        h: ArrayView2<'_, F>,
        cache: &Self::Cache,
        d_logits: ArrayView2<'_, F>,
        d_h: ArrayViewMut2<'_, F>,
        grads: &mut Self::Params,
    ) -> Result<()>;

    /// The slot of [`Readout::Params`] whose gradient is `hᵀ·d_logits` and which this
    /// readout can leave unformed (see the trait's docs). Default: none.
    fn deferrable_slot(&self) -> Option<usize> {
        None
    }

    /// [`Readout::backward`] without the gradient of [`Readout::deferrable_slot`], which is
    /// left untouched. Default: the full backward pass.
    ///
    /// # Errors
    /// As [`Readout::backward`].
    fn backward_deferred(
        &self,
        h: ArrayView2<'_, F>,
        cache: &Self::Cache,
        d_logits: ArrayView2<'_, F>,
        d_h: ArrayViewMut2<'_, F>,
        grads: &mut Self::Params,
    ) -> Result<()> {
        self.backward(h, cache, d_logits, d_h, grads)
    }

    /// Adds `alpha·hᵀ·d_logits` to the parameters of [`Readout::deferrable_slot`].
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] from the default, which defers nothing; shape errors.
    fn add_deferred(
        &mut self,
        alpha: F,
        h: ArrayView2<'_, F>,
        d_logits: ArrayView2<'_, F>,
    ) -> Result<()> {
        let _ = (alpha, h, d_logits);
        Err(Error::config(
            "Readout::add_deferred",
            "this readout defers no gradient (its deferrable_slot is None)",
        ))
    }
}
