//! The [`Optimizer`] trait.

use recur_core::{Float, ParamSet, Result};

use crate::OptimizerState;

/// Expands, inside an `impl Optimizer<F>`, to the three methods every optimizer of this
/// crate implements alike from its `lr` and `steps` fields: `learning_rate`,
/// `set_learning_rate` (refusing a rate that is not finite and positive) and `steps_taken`.
macro_rules! rate_and_steps {
    () => {
        fn learning_rate(&self) -> F {
            self.lr
        }

        fn set_learning_rate(&mut self, lr: F) -> recur_core::Result<()> {
            crate::kernel::check_positive("learning rate", lr)?;
            self.lr = lr;
            Ok(())
        }

        fn steps_taken(&self) -> u64 {
            self.steps
        }
    };
}
pub(crate) use rate_and_steps;

/// An update rule for any [`ParamSet`]: `params ← params − update(grads)`.
///
/// Object safe, so a trainer can hold a `Box<dyn Optimizer<F>>` chosen at run time (see
/// [`OptimizerConfig`](crate::OptimizerConfig)). Optimizers know nothing about cells or
/// models: they walk the slots of the parameter set and of its gradient, which must have
/// the same layout (names and shapes, in order).
///
/// Optimizers that keep per-slot buffers allocate them at the first [`step`](Self::step),
/// with the gradients' shapes, and reuse them afterwards; from then on they only accept
/// parameter sets of that layout, until [`reset`](Self::reset).
///
/// ```
/// use ndarray::array;
/// use recur_optim::{Optimizer, OptimizerConfig};
///
/// # fn main() -> recur_core::Result<()> {
/// let mut opt = "momentum:0.1:0.9".parse::<OptimizerConfig>()?.build::<f64>()?;
/// let mut params = array![1.0_f64, -2.0];
/// let grads = array![0.5_f64, 0.5];
/// opt.step(&mut params, &grads)?;
/// assert_eq!(opt.steps_taken(), 1);
/// assert!((params[0] - 0.95).abs() < 1e-12); // 1 − 0.1 · 0.5
///
/// // A gradient of another shape is refused and leaves the parameters alone.
/// assert!(opt.step(&mut params, &array![0.5_f64]).is_err());
/// assert!((params[1] + 2.05).abs() < 1e-12);
/// # Ok(())
/// # }
/// ```
pub trait Optimizer<F: Float>: std::fmt::Debug + Send {
    /// Short name of the update rule, also the `kind` of its [`OptimizerState`]:
    /// `"sgd"`, `"momentum"`, `"nesterov"`, `"adagrad"`, `"rmsprop"` or `"adam"`.
    fn name(&self) -> &'static str;

    /// Applies one update: `params ← params − update(grads)`.
    ///
    /// Gradient slots that list sparse `rows` are updated row by row wherever that gives
    /// exactly the dense result (SGD, Adagrad); the other rules update densely.
    ///
    /// # Errors
    /// Nothing is changed (parameters, buffers, step count) when an error is returned.
    /// - [`Error::LayoutMismatch`](recur_core::Error::LayoutMismatch): `params` and `grads`
    ///   differ in slot count, names or shapes; the optimizer's buffers were built for
    ///   another layout; or a sparse row index is out of range.
    /// - [`Error::NonFinite`](recur_core::Error::NonFinite) with `what = "gradient"`: a
    ///   gradient entry the update would read is NaN or infinite; `update` is the number of
    ///   the refused update (`steps_taken() + 1`).
    fn step(&mut self, params: &mut dyn ParamSet<F>, grads: &dyn ParamSet<F>) -> Result<()>;

    /// [`step`](Self::step) for a caller that has already established what `step` checks
    /// before it changes anything: `grads` has the layout of `params`, and every gradient
    /// entry is finite (as a trainer has, that built the gradients for these parameters and
    /// found their global norm finite). Rules that can skip those checks do; the default
    /// calls [`step`](Self::step).
    ///
    /// For a small model the checks cost as much as the update itself (plain SGD on a
    /// 16-unit cell).
    ///
    /// ```
    /// use ndarray::array;
    /// use recur_optim::{Optimizer, Sgd};
    ///
    /// let mut sgd = Sgd::new(0.5_f64)?;
    /// let mut params = array![1.0, 2.0];
    /// sgd.step_prechecked(&mut params, &array![0.2, -0.4])?;
    /// assert!((params[0] - 0.9).abs() < 1e-12);
    /// // Shapes are still compared: a mismatch is an error, never a panic.
    /// assert!(sgd.step_prechecked(&mut params, &array![0.2]).is_err());
    /// # Ok::<(), recur_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`step`](Self::step) for what is still checked; a layout mismatch that the caller
    /// missed is still an error, but slots before the mismatching one may have been updated.
    fn step_prechecked(
        &mut self,
        params: &mut dyn ParamSet<F>,
        grads: &dyn ParamSet<F>,
    ) -> Result<()> {
        self.step(params, grads)
    }

    /// `Some(rate)` when every step is exactly `θ ← θ − rate·g` on each entry, with no
    /// other state than the step count (plain SGD); `None` for every other rule (the
    /// default).
    ///
    /// A trainer may then apply part of the update itself, inside the matrix product that
    /// computes that part of the gradient, instead of storing the gradient and walking it
    /// again (see `recur_bptt::Trainer`). It still calls [`step`](Self::step) for the rest.
    ///
    /// ```
    /// use recur_optim::{Optimizer, OptimizerConfig};
    ///
    /// let sgd = "sgd:0.25".parse::<OptimizerConfig>()?.build::<f64>()?;
    /// assert_eq!(sgd.plain_step_rate(), Some(0.25));
    /// let momentum = "momentum:0.25:0.9".parse::<OptimizerConfig>()?.build::<f64>()?;
    /// assert_eq!(momentum.plain_step_rate(), None);
    /// # Ok::<(), recur_core::Error>(())
    /// ```
    fn plain_step_rate(&self) -> Option<F> {
        None
    }

    /// The current learning rate.
    fn learning_rate(&self) -> F;

    /// Sets the learning rate used from the next step on (schedules call this).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](recur_core::Error::InvalidConfig) when `lr` is not finite
    /// or not positive; the learning rate is then unchanged.
    fn set_learning_rate(&mut self, lr: F) -> Result<()>;

    /// Number of successful [`step`](Self::step)s since construction or [`reset`](Self::reset)
    /// (Adam's bias correction counts from it).
    fn steps_taken(&self) -> u64;

    /// Forgets the step count and every per-slot buffer, keeping the hyper-parameters, so
    /// the optimizer can start over (possibly on a parameter set of another layout).
    fn reset(&mut self);

    /// Snapshot of everything needed to resume bit-identically: kind, hyper-parameters,
    /// step count and per-slot buffers.
    fn state(&self) -> OptimizerState<F>;

    /// Replaces hyper-parameters, step count and buffers with those of `state`, the inverse
    /// of [`state`](Self::state). Whether the buffers fit a parameter set is checked at the
    /// next [`step`](Self::step) (or earlier with [`OptimizerState::check_layout`]).
    ///
    /// # Errors
    /// Nothing is changed when an error is returned.
    /// - [`Error::InvalidConfig`](recur_core::Error::InvalidConfig): the state is of
    ///   another kind or float type, or its hyper-parameters are missing, unknown or out of
    ///   range.
    /// - [`Error::LayoutMismatch`](recur_core::Error::LayoutMismatch): the buffers do not
    ///   fit this kind (wrong number per slot, shapes differing within a slot).
    fn load_state(&mut self, state: OptimizerState<F>) -> Result<()>;
}
