//! Fixtures shared by the integration tests.
#![allow(dead_code)]

use ndarray::{array, Array1, Array2};
use recur_core::{params, ParamSet, Slot, SlotMut};

/// A weight matrix and a bias: the smallest two-slot parameter set.
pub type Pair = (Array2<f64>, Array1<f64>);

pub fn params0() -> Pair {
    (array![[1.0, -2.0], [0.5, 3.0]], array![0.25, -1.5])
}

pub fn grads1() -> Pair {
    (array![[0.5, -1.0], [2.0, 0.0]], array![4.0, -0.1])
}

pub fn grads2() -> Pair {
    (array![[-0.25, 0.5], [1.0, 3.0]], array![-2.0, 0.3])
}

/// The bit patterns of every entry, for exact comparisons.
pub fn bits<F: recur_core::Float>(set: &dyn ParamSet<F>) -> Vec<u64> {
    params::flatten(set)
        .into_iter()
        .map(|v| v.to_f64_lossless().to_bits())
        .collect()
}

pub fn assert_close(found: &[f64], expected: &[f64], tol: f64) {
    assert_eq!(found.len(), expected.len());
    for (i, (f, e)) in found.iter().zip(expected).enumerate() {
        assert!((f - e).abs() <= tol, "entry {i}: found {f}, expected {e}");
    }
}

/// A parameter set whose first slot may carry sparse rows, as the input weights of a
/// token-id input do.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseSet {
    pub w: Array2<f64>,
    pub b: Array1<f64>,
    pub rows: Option<Vec<usize>>,
}

impl ParamSet<f64> for SparseSet {
    fn slot_count(&self) -> usize {
        2
    }

    fn slot(&self, index: usize) -> Slot<'_, f64> {
        match index {
            0 => Slot {
                name: "w",
                value: self.w.view().into_dyn(),
                rows: self.rows.as_deref(),
            },
            1 => Slot {
                name: "b",
                value: self.b.view().into_dyn(),
                rows: None,
            },
            _ => panic!("slot {index} of 2"),
        }
    }

    fn slot_mut(&mut self, index: usize) -> SlotMut<'_, f64> {
        match index {
            0 => SlotMut {
                name: "w",
                value: self.w.view_mut().into_dyn(),
            },
            1 => SlotMut {
                name: "b",
                value: self.b.view_mut().into_dyn(),
            },
            _ => panic!("slot {index} of 2"),
        }
    }
}
