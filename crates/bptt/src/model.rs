//! A recurrent model: a cell and a readout, with their parameters as one set.

use std::marker::PhantomData;

use ndarray::{Array2, ArrayView2};
use recur_cell::{Cell, Linear, Readout};
use recur_core::params::{check_unique_paths, concat_slot, concat_slot_mut, concat_write_path};
use recur_core::{Error, Float, Input, ParamSet, Result, Slot, SlotMut};

/// The path prefixes of a model's two parts.
const PARTS: [&str; 2] = ["cell", "readout"];

/// A cell followed by a per-step [`Readout`] ([`Linear`] unless chosen otherwise). The
/// loss, which owns the output function, is supplied when training or evaluating.
///
/// As a [`ParamSet`], its slots are the cell's followed by the readout's, named
/// `cell.<path>` and `readout.<path>` (`cell.w_xh`, `cell.layers.1.w_hh`, `readout.w_hy`).
#[derive(Debug, Clone)]
pub struct Model<F, C, R = Linear<F>> {
    cell: C,
    readout: R,
    float: PhantomData<fn() -> F>,
}

impl<F: Float, C: Cell<F>, R: Readout<F>> Model<F, C, R> {
    /// Joins a cell and a readout.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when the readout's input size differs from the cell's
    /// hidden size; [`Error::DuplicateName`] when two parameter slots share a path name.
    pub fn new(cell: C, readout: R) -> Result<Self> {
        let model = Model {
            cell,
            readout,
            float: PhantomData,
        };
        model.check()?;
        check_unique_paths(&model)?;
        Ok(model)
    }

    /// The cell.
    pub fn cell(&self) -> &C {
        &self.cell
    }

    /// The cell, writable.
    pub fn cell_mut(&mut self) -> &mut C {
        &mut self.cell
    }

    /// The readout.
    pub fn readout(&self) -> &R {
        &self.readout
    }

    /// The readout, writable.
    pub fn readout_mut(&mut self) -> &mut R {
        &mut self.readout
    }

    /// A zero gradient with this model's layout.
    pub fn zero_grads(&self) -> Gradients<F, C, R> {
        Gradients {
            cell: self.cell.zero_grads(),
            readout: self.readout.zero_grads(),
        }
    }

    /// The cell and the readout, both writable at once.
    pub(crate) fn parts_mut(&mut self) -> (&mut C, &mut R) {
        (&mut self.cell, &mut self.readout)
    }

    /// Checks that the parts still fit together (their parameters are writable).
    pub(crate) fn check(&self) -> Result<()> {
        if self.readout.input_size() != self.cell.hidden_size() {
            return Err(Error::shape(
                "Model readout input",
                &[self.cell.hidden_size()],
                &[self.readout.input_size()],
            ));
        }
        Ok(())
    }
}

/// The gradient of a [`Model`]: same slots, same order, same names.
#[derive(Debug, Clone)]
pub struct Gradients<F: Float, C: Cell<F>, R: Readout<F> = Linear<F>> {
    /// Gradient of the cell's parameters.
    pub cell: C::Params,
    /// Gradient of the readout's parameters.
    pub readout: R::Params,
}

impl<F: Float, C: Cell<F>, R: Readout<F>> ParamSet<F> for Model<F, C, R> {
    fn slot_count(&self) -> usize {
        self.cell.params().slot_count() + self.readout.params().slot_count()
    }
    fn slot(&self, index: usize) -> Slot<'_, F> {
        concat_slot([self.cell.params(), self.readout.params()], index)
    }
    fn slot_mut(&mut self, index: usize) -> SlotMut<'_, F> {
        concat_slot_mut([self.cell.params_mut(), self.readout.params_mut()], index)
    }
    fn write_path(&self, index: usize, out: &mut String) {
        let parts = [self.cell.params(), self.readout.params()];
        concat_write_path(parts, |i| PARTS[i], index, out);
    }
}

impl<F: Float, C: Cell<F>, R: Readout<F>> ParamSet<F> for Gradients<F, C, R> {
    fn slot_count(&self) -> usize {
        self.cell.slot_count() + self.readout.slot_count()
    }
    fn slot(&self, index: usize) -> Slot<'_, F> {
        concat_slot([&self.cell as &dyn ParamSet<F>, &self.readout], index)
    }
    fn slot_mut(&mut self, index: usize) -> SlotMut<'_, F> {
        concat_slot_mut(
            [&mut self.cell as &mut dyn ParamSet<F>, &mut self.readout],
            index,
        )
    }
    fn write_path(&self, index: usize, out: &mut String) {
        let parts = [&self.cell as &dyn ParamSet<F>, &self.readout];
        concat_write_path(parts, |i| PARTS[i], index, out);
    }
    fn zero(&mut self) {
        self.cell.zero();
        self.readout.zero();
    }
}

/// Runs a model one step at a time, for generation and interactive use: keeps the state
/// and buffers of a batch, so each step allocates nothing.
///
/// ```
/// use rand::{rngs::StdRng, SeedableRng};
/// use recur_bptt::{Model, Predictor};
/// use recur_cell::{ElmanConfig, Input, LinearConfig, Tanh};
///
/// let mut rng = StdRng::seed_from_u64(1);
/// let cell = ElmanConfig::new(10, 4).init::<f32, _>(Tanh, &mut rng).unwrap();
/// let model = Model::new(cell, LinearConfig::new(4, 10).init(&mut rng).unwrap()).unwrap();
/// let mut predictor = Predictor::new(&model, 1);
/// let logits = predictor.step(&model, Input::Tokens(&[3])).unwrap();
/// assert_eq!(logits.shape(), &[1, 10]);
/// ```
#[derive(Debug)]
pub struct Predictor<F: Float, C: Cell<F>, R: Readout<F> = Linear<F>> {
    state: Array2<F>,
    next: Array2<F>,
    cache: C::Cache,
    readout_cache: R::Cache,
    logits: Array2<F>,
}

impl<F: Float, C: Cell<F>, R: Readout<F>> Predictor<F, C, R> {
    /// A predictor for `batch` sequences starting from the zero state.
    pub fn new(model: &Model<F, C, R>, batch: usize) -> Self {
        Predictor {
            state: model.cell.zero_state(batch),
            next: model.cell.zero_state(batch),
            cache: model.cell.new_cache(batch),
            readout_cache: R::Cache::default(),
            logits: Array2::zeros((batch, model.readout.output_size())),
        }
    }

    /// Feeds one step of input; returns the readout's logits `[batch, output_size]`
    /// (turn them into probabilities with the loss's `predict`).
    ///
    /// # Errors
    /// Shape or token errors from the cell; [`Error::ShapeMismatch`] when the model is not
    /// the one this predictor was made for.
    pub fn step(&mut self, model: &Model<F, C, R>, x: Input<'_, F>) -> Result<ArrayView2<'_, F>> {
        model.check()?;
        model
            .cell
            .forward(x, self.state.view(), self.next.view_mut(), &mut self.cache)?;
        std::mem::swap(&mut self.state, &mut self.next);
        let hidden = model.cell.hidden(self.state.view());
        let logits = self.logits.view_mut();
        model
            .readout
            .forward(hidden, logits, &mut self.readout_cache)?;
        Ok(self.logits.view())
    }

    /// The current state `[batch, state_size]`.
    pub fn state(&self) -> ArrayView2<'_, F> {
        self.state.view()
    }

    /// Sets every sequence back to the zero state.
    pub fn reset(&mut self) {
        self.state.fill(F::zero());
    }
}
