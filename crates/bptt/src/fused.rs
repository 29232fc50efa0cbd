//! The part of a model's parameters (or gradients) that a fused SGD step leaves to the
//! optimizer: everything but the readout's weight matrix, whose update the trainer applies
//! inside the product that computes its gradient.

use ndarray::Array1;
use recur_cell::Cell;
use recur_core::{Float, ParamSet, Slot, SlotMut};

use crate::{Gradients, Model};

/// A cell's parameter set followed by the readout's bias, if any: a [`ParamSet`] of a
/// model (or of its gradients) without the readout weight slot.
pub(crate) struct WithoutReadoutWeight<'a, F, P: ?Sized> {
    pub(crate) cell: &'a mut P,
    pub(crate) bias: Option<&'a mut Array1<F>>,
}

impl<'a, F: Float, P: ?Sized> WithoutReadoutWeight<'a, F, P> {
    /// A model's parameters without its readout weights.
    pub(crate) fn of_model<C: Cell<F, Params = P>>(model: &'a mut Model<F, C>) -> Self {
        let (cell, readout) = model.parts_mut();
        WithoutReadoutWeight {
            cell: cell.params_mut(),
            bias: readout.params_mut().b_y.as_mut(),
        }
    }

    /// A model's gradients without the readout weights' gradient.
    pub(crate) fn of_grads<C: Cell<F, Params = P>>(grads: &'a mut Gradients<F, C>) -> Self {
        WithoutReadoutWeight {
            cell: &mut grads.cell,
            bias: grads.readout.b_y.as_mut(),
        }
    }
}

impl<F: Float, P: ParamSet<F> + ?Sized> ParamSet<F> for WithoutReadoutWeight<'_, F, P> {
    fn slot_count(&self) -> usize {
        self.cell.slot_count() + usize::from(self.bias.is_some())
    }

    fn slot(&self, index: usize) -> Slot<'_, F> {
        match (index.checked_sub(self.cell.slot_count()), &self.bias) {
            (None, _) => self.cell.slot(index),
            (Some(0), Some(bias)) => Slot {
                name: "b_y",
                value: bias.view().into_dyn(),
                rows: None,
            },
            _ => panic!("no slot {index} in the parameters without the readout weight"),
        }
    }

    fn slot_mut(&mut self, index: usize) -> SlotMut<'_, F> {
        match (index.checked_sub(self.cell.slot_count()), &mut self.bias) {
            (None, _) => self.cell.slot_mut(index),
            (Some(0), Some(bias)) => SlotMut {
                name: "b_y",
                value: bias.view_mut().into_dyn(),
            },
            _ => panic!("no slot {index} in the parameters without the readout weight"),
        }
    }

    /// Zeroes the cell's part its own way (which may clear only the rows it touched).
    fn zero(&mut self) {
        self.cell.zero();
        if let Some(bias) = &mut self.bias {
            bias.fill(F::zero());
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::array;
    use recur_core::params;

    use super::*;

    #[test]
    fn lists_the_cell_slots_then_the_bias() {
        let mut cell = (array![1.0_f64, 2.0], array![[3.0_f64]]);
        let mut bias = array![4.0_f64];
        let mut view = WithoutReadoutWeight {
            cell: &mut cell,
            bias: Some(&mut bias),
        };
        assert_eq!(view.slot_count(), 3);
        assert_eq!(view.slot(2).name, "b_y");
        assert_eq!(params::flatten(&view), vec![1.0, 2.0, 3.0, 4.0]);
        view.slot_mut(2).value[[0]] = 5.0;
        view.zero();
        assert_eq!(params::flatten(&view), vec![0.0; 4]);
        let without_bias = WithoutReadoutWeight::<f64, _> {
            cell: &mut cell,
            bias: None,
        };
        assert_eq!(without_bias.slot_count(), 2);
    }
}
