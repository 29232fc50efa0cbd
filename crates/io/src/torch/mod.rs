//! Weights both ways between recur and PyTorch: a cell ([`TorchRecurrent`]) and its
//! `Linear` readout as the `state_dict` of `nn.RNN`/`nn.LSTM`/`nn.GRU` and `nn.Linear`,
//! in safetensors. docs/pytorch.md has the name, layout and gate-order table.

mod mapping;
mod state_dict;

pub use mapping::{TorchLayer, TorchModule, TorchRecurrent};
pub use state_dict::{export_torch, import_torch, TorchPrefixes, TORCH_FORMAT};
