//! A recurrent model: a cell and a linear readout, with their parameters as one set.

use ndarray::{Array2, ArrayView2};
use recur_cell::{Cell, Linear, LinearParams};
use recur_core::{Error, Float, Input, ParamSet, Result, Slot, SlotMut};
use serde::{Deserialize, Serialize};

/// A cell followed by a per-step [`Linear`] readout. The loss, which owns the output
/// function, is supplied when training or evaluating.
///
/// As a [`ParamSet`], its slots are the cell's slots followed by the readout's.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Model<F, C> {
    cell: C,
    readout: Linear<F>,
}

impl<F: Float, C: Cell<F>> Model<F, C> {
    /// Joins a cell and a readout.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when the readout's input size differs from the cell's
    /// hidden size.
    pub fn new(cell: C, readout: Linear<F>) -> Result<Self> {
        let model = Model { cell, readout };
        model.check()?;
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
    pub fn readout(&self) -> &Linear<F> {
        &self.readout
    }

    /// The readout, writable.
    pub fn readout_mut(&mut self) -> &mut Linear<F> {
        &mut self.readout
    }

    /// A zero gradient with this model's layout.
    pub fn zero_grads(&self) -> Gradients<F, C> {
        Gradients {
            cell: self.cell.zero_grads(),
            readout: self.readout.zero_grads(),
        }
    }

    /// The cell and the readout, both writable at once.
    pub(crate) fn parts_mut(&mut self) -> (&mut C, &mut Linear<F>) {
        (&mut self.cell, &mut self.readout)
    }

    /// Checks that the parts still fit together (their parameters are writable).
    pub(crate) fn check(&self) -> Result<()> {
        if self.readout.hidden_size() != self.cell.hidden_size() {
            return Err(Error::shape(
                "Model readout",
                &[self.cell.hidden_size(), self.readout.output_size()],
                self.readout.params().w_hy.shape(),
            ));
        }
        Ok(())
    }
}

/// The gradient of a [`Model`]: same slots, same order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Gradients<F: Float, C: Cell<F>> {
    /// Gradient of the cell's parameters.
    pub cell: C::Params,
    /// Gradient of the readout's parameters.
    pub readout: LinearParams<F>,
}

/// Slot `index` of the concatenation of two sets.
fn concat_slot<'a, F: Float>(
    first: &'a dyn ParamSet<F>,
    second: &'a dyn ParamSet<F>,
    index: usize,
) -> Slot<'a, F> {
    match index.checked_sub(first.slot_count()) {
        None => first.slot(index),
        Some(i) => second.slot(i),
    }
}

/// Writable slot `index` of the concatenation of two sets.
fn concat_slot_mut<'a, F: Float>(
    first: &'a mut dyn ParamSet<F>,
    second: &'a mut dyn ParamSet<F>,
    index: usize,
) -> SlotMut<'a, F> {
    match index.checked_sub(first.slot_count()) {
        None => first.slot_mut(index),
        Some(i) => second.slot_mut(i),
    }
}

impl<F: Float, C: Cell<F>> ParamSet<F> for Model<F, C> {
    fn slot_count(&self) -> usize {
        self.cell.params().slot_count() + self.readout.params().slot_count()
    }
    fn slot(&self, index: usize) -> Slot<'_, F> {
        concat_slot(self.cell.params(), self.readout.params(), index)
    }
    fn slot_mut(&mut self, index: usize) -> SlotMut<'_, F> {
        concat_slot_mut(self.cell.params_mut(), self.readout.params_mut(), index)
    }
}

impl<F: Float, C: Cell<F>> ParamSet<F> for Gradients<F, C> {
    fn slot_count(&self) -> usize {
        self.cell.slot_count() + self.readout.slot_count()
    }
    fn slot(&self, index: usize) -> Slot<'_, F> {
        concat_slot(&self.cell, &self.readout, index)
    }
    fn slot_mut(&mut self, index: usize) -> SlotMut<'_, F> {
        concat_slot_mut(&mut self.cell, &mut self.readout, index)
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
pub struct Predictor<F: Float, C: Cell<F>> {
    state: Array2<F>,
    next: Array2<F>,
    cache: C::Cache,
    logits: Array2<F>,
}

impl<F: Float, C: Cell<F>> Predictor<F, C> {
    /// A predictor for `batch` sequences starting from the zero state.
    pub fn new(model: &Model<F, C>, batch: usize) -> Self {
        Predictor {
            state: model.cell.zero_state(batch),
            next: model.cell.zero_state(batch),
            cache: model.cell.new_cache(batch),
            logits: Array2::zeros((batch, model.readout.output_size())),
        }
    }

    /// Feeds one step of input; returns the readout's logits `[batch, output_size]`
    /// (turn them into probabilities with the loss's `predict`).
    ///
    /// # Errors
    /// Shape or token errors from the cell; [`Error::ShapeMismatch`] when the model is not
    /// the one this predictor was made for.
    pub fn step(&mut self, model: &Model<F, C>, x: Input<'_, F>) -> Result<ArrayView2<'_, F>> {
        model.check()?;
        model
            .cell
            .forward(x, self.state.view(), self.next.view_mut(), &mut self.cache)?;
        std::mem::swap(&mut self.state, &mut self.next);
        model
            .readout
            .forward(model.cell.hidden(self.state.view()), self.logits.view_mut())?;
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
