//! The network's shape: which cell (`--cell`), how many layers (`--layers`), how wide
//! (`--hidden`), and the one place that turns that runtime choice into a cell type.

use clap::ValueEnum;
use rand::rngs::StdRng;
use recur::prelude::*;
use serde::{Deserialize, Serialize};

/// The recurrent cell of the model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CellKind {
    /// tanh Elman cell, the classic tutorial's.
    #[default]
    Elman,
    /// LSTM (σ gates, tanh cell), the forget-gate bias starting at 1.
    Lstm,
    /// GRU, PyTorch's reset-after variant.
    Gru,
}

/// What shapes the model; stored in checkpoints, so a resumed run rebuilds the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    /// The cell.
    #[serde(default)]
    pub cell: CellKind,
    /// Cells stacked, each feeding the next.
    #[serde(default = "one")]
    pub layers: usize,
    /// Hidden units of every layer.
    pub hidden: usize,
}

fn one() -> usize {
    1
}

/// Builds cells of one type: `input` wide in, `hidden` wide out.
pub trait Build<F: Float>: Copy {
    /// The cell built.
    type Cell: Cell<F>;
    /// A cell with weights drawn from `rng`.
    fn build(self, input: usize, hidden: usize, rng: &mut StdRng) -> recur::Result<Self::Cell>;
}

/// Work to do once the cell type is known: the program's body, generic over the cell.
pub trait Job<F: Float> {
    /// What the work returns.
    type Output;
    /// Does the work with cells from `build`.
    fn run<B: Build<F>>(self, build: B) -> Self::Output;
}

/// Runs `job` with the cell type `shape` names: one bare cell for one layer (so parameter
/// names stay `cell.w_hh`), a [`Stack`] otherwise.
pub fn dispatch<F: Float, J: Job<F>>(shape: Shape, job: J) -> J::Output {
    match (shape.cell, shape.layers) {
        (CellKind::Elman, 1) => job.run(ElmanTanh),
        (CellKind::Lstm, 1) => job.run(LstmCell),
        (CellKind::Gru, 1) => job.run(GruCell),
        (CellKind::Elman, n) => job.run(Stacked(n, ElmanTanh)),
        (CellKind::Lstm, n) => job.run(Stacked(n, LstmCell)),
        (CellKind::Gru, n) => job.run(Stacked(n, GruCell)),
    }
}

/// `Elman<F, Tanh>`.
#[derive(Debug, Clone, Copy)]
pub struct ElmanTanh;

impl<F: Float> Build<F> for ElmanTanh {
    type Cell = Elman<F, Tanh>;
    fn build(self, input: usize, hidden: usize, rng: &mut StdRng) -> recur::Result<Self::Cell> {
        ElmanConfig::new(input, hidden).init(Tanh, rng)
    }
}

/// `Lstm<F>` with the forget-gate bias at 1, so early gradients flow through the cell state.
#[derive(Debug, Clone, Copy)]
pub struct LstmCell;

impl<F: Float> Build<F> for LstmCell {
    type Cell = Lstm<F>;
    fn build(self, input: usize, hidden: usize, rng: &mut StdRng) -> recur::Result<Self::Cell> {
        LstmConfig::new(input, hidden)
            .with_forget_bias(true)
            .init(Sigmoid, Tanh, rng)
    }
}

/// `Gru<F>`, reset after the product.
#[derive(Debug, Clone, Copy)]
pub struct GruCell;

impl<F: Float> Build<F> for GruCell {
    type Cell = Gru<F>;
    fn build(self, input: usize, hidden: usize, rng: &mut StdRng) -> recur::Result<Self::Cell> {
        GruConfig::new(input, hidden).init(Sigmoid, Tanh, rng)
    }
}

/// `n` cells from the inner builder, stacked: the first reads the input, the others the
/// layer below.
#[derive(Debug, Clone, Copy)]
pub struct Stacked<B>(pub usize, pub B);

impl<F: Float, B: Build<F>> Build<F> for Stacked<B> {
    type Cell = Stack<B::Cell>;
    fn build(self, input: usize, hidden: usize, rng: &mut StdRng) -> recur::Result<Self::Cell> {
        let Stacked(layers, inner) = self;
        let cells = (0..layers)
            .map(|i| inner.build(if i == 0 { input } else { hidden }, hidden, rng))
            .collect::<recur::Result<Vec<_>>>()?;
        Stack::new(cells)
    }
}
