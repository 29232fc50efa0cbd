//! How recur cells map onto PyTorch's recurrent modules: each cell says which module it is
//! one layer of, and one table per module names its slots.

use recur_cell::{Activation, Cell, Elman, Gru, GruVariant, Lstm, Stack};
use recur_core::{Error, Float, ParamSet, Result};

/// A PyTorch recurrent module that a recur layer can be one layer of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TorchModule {
    /// `nn.RNN(nonlinearity="tanh")`: an [`Elman`] cell with `Tanh`.
    RnnTanh,
    /// `nn.RNN(nonlinearity="relu")`: an [`Elman`] cell with `Relu`.
    RnnRelu,
    /// `nn.LSTM`: an [`Lstm`] with sigmoid gates and a tanh cell activation.
    Lstm,
    /// `nn.GRU`: a [`Gru`] with sigmoid gates, a tanh candidate and
    /// [`GruVariant::ResetAfter`].
    Gru,
}

/// Elman slot → PyTorch name stem (`_l{k}` follows). Matrices are transposed: recur
/// stores `[in, out]`, PyTorch `[out, in]`.
const RNN_NAMES: &[(&str, &str)] = &[
    ("w_xh", "weight_ih"),
    ("w_hh", "weight_hh"),
    ("b_h", "bias_ih"),
    ("b_hh", "bias_hh"),
];

/// Gated slot → PyTorch name stem. The gate blocks are in PyTorch's order already
/// (`i, f, g, o` and `r, z, n`), so no permutation is needed.
const GATED_NAMES: &[(&str, &str)] = &[
    ("w_ih", "weight_ih"),
    ("w_hh", "weight_hh"),
    ("b_ih", "bias_ih"),
    ("b_hh", "bias_hh"),
];

/// `Linear` readout slot → `nn.Linear` name.
pub(crate) const LINEAR_NAMES: &[(&str, &str)] = &[("w_hy", "weight"), ("b_y", "bias")];

/// PyTorch's two bias stems, in the order its state_dict lists them.
pub(crate) const BIASES: [&str; 2] = ["bias_ih", "bias_hh"];

impl TorchModule {
    /// The PyTorch class: `nn.RNN`, `nn.LSTM` or `nn.GRU`.
    pub fn class(self) -> &'static str {
        match self {
            TorchModule::RnnTanh | TorchModule::RnnRelu => "nn.RNN",
            TorchModule::Lstm => "nn.LSTM",
            TorchModule::Gru => "nn.GRU",
        }
    }

    /// `nn.RNN`'s `nonlinearity` argument, for the RNN modules.
    pub fn nonlinearity(self) -> Option<&'static str> {
        match self {
            TorchModule::RnnTanh => Some("tanh"),
            TorchModule::RnnRelu => Some("relu"),
            TorchModule::Lstm | TorchModule::Gru => None,
        }
    }

    /// recur slot name → PyTorch name stem, for this module's layers.
    pub(crate) fn names(self) -> &'static [(&'static str, &'static str)] {
        match self {
            TorchModule::RnnTanh | TorchModule::RnnRelu => RNN_NAMES,
            TorchModule::Lstm | TorchModule::Gru => GATED_NAMES,
        }
    }

    /// Whether one bias can stand for PyTorch's two: only where the step uses nothing but
    /// their sum. The GRU's candidate holds `b_hn` inside `r ⊙ (h·W_hn + b_hn)`.
    pub(crate) fn sums_biases(self) -> bool {
        !matches!(self, TorchModule::Gru)
    }
}

/// One layer of a PyTorch recurrent module. [`Elman`], [`Lstm`] and [`Gru`] implement it,
/// whatever their activations: [`TorchLayer::torch_module`] refuses those without a
/// PyTorch equivalent.
pub trait TorchLayer<F: Float> {
    /// The module this layer is one layer of.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming what PyTorch has no equivalent for: an Elman
    /// activation other than tanh or relu, gated activations other than sigmoid and tanh,
    /// or a GRU of [`GruVariant::ResetBefore`].
    fn torch_module(&self) -> Result<TorchModule>;

    /// The layer's parameters, whose slot names the module's table maps.
    fn torch_params(&self) -> &dyn ParamSet<F>;

    /// The layer's parameters, writable.
    fn torch_params_mut(&mut self) -> &mut dyn ParamSet<F>;
}

/// A recur cell with a PyTorch equivalent: one [`TorchLayer`] (`num_layers=1`), or a
/// [`Stack`] of them (`num_layers=N`).
pub trait TorchRecurrent<F: Float> {
    /// The layers, bottom first: layer `k` is PyTorch's `_l{k}`.
    fn torch_layers(&self) -> Vec<&dyn TorchLayer<F>>;

    /// The layers, writable.
    fn torch_layers_mut(&mut self) -> Vec<&mut dyn TorchLayer<F>>;
}

fn unmapped(what: String) -> Error {
    Error::config(
        "PyTorch mapping",
        format!("{what}; use a cell with a PyTorch equivalent (see docs/pytorch.md)"),
    )
}

fn elman_module<F: Float, A: Activation<F>>(cell: &Elman<F, A>) -> Result<TorchModule> {
    match cell.activation().name() {
        "tanh" => Ok(TorchModule::RnnTanh),
        "relu" => Ok(TorchModule::RnnRelu),
        other => Err(unmapped(format!(
            "an Elman cell with activation {other} has no PyTorch equivalent: nn.RNN offers \
             tanh and relu"
        ))),
    }
}

/// Checks PyTorch's fixed gated activations: sigmoid gates, tanh cell or candidate.
fn gated_activations<F: Float>(
    module: TorchModule,
    gate: &dyn Activation<F>,
    cell: &dyn Activation<F>,
) -> Result<TorchModule> {
    match (gate.name(), cell.name()) {
        ("sigmoid", "tanh") => Ok(module),
        (g, c) => Err(unmapped(format!(
            "{} computes sigmoid gates and tanh, this cell {g} gates and {c}",
            module.class()
        ))),
    }
}

fn lstm_module<F: Float, G: Activation<F>, C: Activation<F>>(
    cell: &Lstm<F, G, C>,
) -> Result<TorchModule> {
    gated_activations(
        TorchModule::Lstm,
        cell.gate_activation(),
        cell.cell_activation(),
    )
}

fn gru_module<F: Float, G: Activation<F>, C: Activation<F>>(
    cell: &Gru<F, G, C>,
) -> Result<TorchModule> {
    if cell.variant() != GruVariant::ResetAfter {
        return Err(unmapped(
            "a GRU of GruVariant::ResetBefore has no PyTorch equivalent: nn.GRU applies \
             the reset gate after the recurrent product (GruVariant::ResetAfter)"
                .to_string(),
        ));
    }
    gated_activations(
        TorchModule::Gru,
        cell.gate_activation(),
        cell.cell_activation(),
    )
}

/// Implements [`TorchLayer`] and the one-layer [`TorchRecurrent`] for a cell type generic
/// over its activations, given the function that checks its module.
macro_rules! torch_layer {
    ($cell:ident < $($act:ident),+ >, $module:ident) => {
        impl<F: Float, $($act: Activation<F>),+> TorchLayer<F> for $cell<F, $($act),+> {
            fn torch_module(&self) -> Result<TorchModule> {
                $module(self)
            }
            fn torch_params(&self) -> &dyn ParamSet<F> {
                Cell::params(self)
            }
            fn torch_params_mut(&mut self) -> &mut dyn ParamSet<F> {
                Cell::params_mut(self)
            }
        }

        impl<F: Float, $($act: Activation<F>),+> TorchRecurrent<F> for $cell<F, $($act),+> {
            fn torch_layers(&self) -> Vec<&dyn TorchLayer<F>> {
                vec![self]
            }
            fn torch_layers_mut(&mut self) -> Vec<&mut dyn TorchLayer<F>> {
                vec![self]
            }
        }
    };
}

torch_layer!(Elman<A>, elman_module);
torch_layer!(Lstm<G, C>, lstm_module);
torch_layer!(Gru<G, C>, gru_module);

impl<F: Float, C: TorchLayer<F>> TorchRecurrent<F> for Stack<C> {
    fn torch_layers(&self) -> Vec<&dyn TorchLayer<F>> {
        self.layers()
            .iter()
            .map(|layer| layer as &dyn TorchLayer<F>)
            .collect()
    }

    fn torch_layers_mut(&mut self) -> Vec<&mut dyn TorchLayer<F>> {
        self.layers_mut()
            .iter_mut()
            .map(|layer| layer as &mut dyn TorchLayer<F>)
            .collect()
    }
}
