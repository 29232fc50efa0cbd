//! A cell and its readout as a PyTorch `state_dict` in safetensors: PyTorch's names and
//! layout on the way out, checked tensor by tensor on the way in.

use std::collections::HashMap;
use std::path::Path;

use ndarray::{ArrayD, IxDyn, Zip};
use recur_cell::{Linear, Readout};
use recur_core::{Error, Float, Result};

use super::mapping::{TorchLayer, TorchModule, TorchRecurrent, BIASES, LINEAR_NAMES};
use crate::archive::{invalid, Archive, ArchiveWriter};

/// Value of the `format` metadata key of a file written by [`export_torch`]. Its `module`
/// (and, with a readout, `readout`) keys hold the PyTorch constructor the tensors load
/// into, as Python text.
pub const TORCH_FORMAT: &str = "pytorch-state-dict";

/// The module prefixes of the cell and the readout in the `state_dict`, prepended verbatim
/// (dot included). A PyTorch module holding `self.rnn = nn.LSTM(…)` and
/// `self.decoder = nn.Linear(…)` names its tensors `rnn.weight_ih_l0`, …, `decoder.weight`:
/// prefixes `"rnn."` and `"decoder."`. A bare `nn.LSTM` has the empty prefix, the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TorchPrefixes<'a> {
    /// Before each of the cell's names (`weight_ih_l0`, …).
    pub cell: &'a str,
    /// Before each of the readout's names (`weight`, `bias`).
    pub readout: &'a str,
}

/// Where a `state_dict` tensor lives in recur.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Cell { layer: usize, slot: usize },
    Readout { slot: usize },
}

/// One tensor of the `state_dict`.
#[derive(Debug)]
struct Entry {
    name: String,
    stem: &'static str,
    /// In PyTorch's layout: recur's shape reversed.
    shape: Vec<usize>,
    place: Place,
    /// A bias PyTorch has and the layer has not: zeros on export, added into the layer's
    /// other bias (at `place`) on import.
    folded: bool,
    /// The slot's index in the whole model (cell slots, then readout slots), for errors.
    index: usize,
}

/// Every tensor of the `state_dict` and the PyTorch modules they load into.
#[derive(Debug)]
struct Plan {
    entries: Vec<Entry>,
    module: String,
    readout: Option<String>,
}

fn reversed(shape: &[usize]) -> Vec<usize> {
    shape.iter().rev().copied().collect()
}

fn lookup(table: &[(&str, &'static str)], slot: &str, owner: &str) -> Result<&'static str> {
    table
        .iter()
        .find(|(name, _)| *name == slot)
        .map(|(_, stem)| *stem)
        .ok_or_else(|| {
            Error::config(
                "PyTorch mapping",
                format!("{owner} slot {slot:?} has no PyTorch name"),
            )
        })
}

/// The entries of layer `k`. PyTorch has both biases or neither: a layer with one gets the
/// other as a folded entry, where its module only uses their sum.
fn layer_entries<F: Float>(
    layer: &dyn TorchLayer<F>,
    module: TorchModule,
    k: usize,
    prefix: &str,
    index: &mut usize,
) -> Result<Vec<Entry>> {
    let params = layer.torch_params();
    let mut entries = Vec::with_capacity(params.slot_count() + 1);
    for slot in 0..params.slot_count() {
        let s = params.slot(slot);
        let stem = lookup(module.names(), s.name, module.class())?;
        entries.push(Entry {
            name: format!("{prefix}{stem}_l{k}"),
            stem,
            shape: reversed(s.value.shape()),
            place: Place::Cell { layer: k, slot },
            folded: false,
            index: *index,
        });
        *index += 1;
    }
    let bias = |stem| entries.iter().find(|e| e.stem == stem);
    let lone = match (bias(BIASES[0]), bias(BIASES[1])) {
        (Some(e), None) => Some((e, BIASES[1])),
        (None, Some(e)) => Some((e, BIASES[0])),
        _ => None,
    };
    if let Some((present, missing)) = lone {
        if !module.sums_biases() {
            return Err(Error::config(
                "PyTorch mapping",
                format!(
                    "layer {k} has {} but not {missing}; {} needs both or neither, since \
                     its candidate does not use their sum",
                    present.stem,
                    module.class()
                ),
            ));
        }
        let folded = Entry {
            name: format!("{prefix}{missing}_l{k}"),
            stem: missing,
            shape: present.shape.clone(),
            place: present.place,
            folded: true,
            index: present.index,
        };
        entries.push(folded);
    }
    Ok(entries)
}

/// The PyTorch constructor of `layers` layers like `first`, as Python text.
fn module_text(module: TorchModule, first: &[Entry], layers: usize) -> String {
    let shape = |stem| first.iter().find(|e| e.stem == stem).map(|e| e.shape[1]);
    let bias = if first.iter().any(|e| e.stem == BIASES[0]) {
        "True"
    } else {
        "False"
    };
    let nonlinearity = module
        .nonlinearity()
        .map(|n| format!(", nonlinearity=\"{n}\""))
        .unwrap_or_default();
    format!(
        "{}(input_size={}, hidden_size={}, num_layers={layers}, bias={bias}{nonlinearity})",
        module.class(),
        shape("weight_ih").unwrap_or_default(),
        shape("weight_hh").unwrap_or_default(),
    )
}

/// Checks that layer `k` matches layer 0 as PyTorch's `num_layers` needs.
fn check_like_first(k: usize, first: &[Entry], module: TorchModule, layer: &[Entry]) -> Result<()> {
    let stems = |entries: &[Entry]| {
        let mut s: Vec<&str> = entries.iter().map(|e| e.stem).collect();
        s.sort_unstable();
        s
    };
    let hidden = |entries: &[Entry]| {
        entries
            .iter()
            .find(|e| e.stem == "weight_hh")
            .map(|e| e.shape[1])
    };
    let reason = if stems(layer) != stems(first) {
        "has biases where layer 0 has none, or none where it has them; PyTorch's bias flag \
         covers all layers"
    } else if hidden(layer) != hidden(first) {
        "has another hidden size than layer 0; PyTorch's layers share one hidden_size"
    } else {
        return Ok(());
    };
    Err(Error::config(
        "PyTorch mapping",
        format!("layer {k} of this {} stack {reason}", module.class()),
    ))
}

fn plan<F: Float>(
    cell: &dyn TorchRecurrent<F>,
    readout: Option<&Linear<F>>,
    prefixes: TorchPrefixes<'_>,
) -> Result<Plan> {
    let layers = cell.torch_layers();
    let mut entries: Vec<Entry> = Vec::new();
    let mut first: Option<(TorchModule, usize)> = None;
    let mut index = 0;
    for (k, layer) in layers.iter().enumerate() {
        let module = layer.torch_module()?;
        let own = layer_entries(*layer, module, k, prefixes.cell, &mut index)?;
        match first {
            None => first = Some((module, own.len())),
            Some((m, count)) if m == module => {
                check_like_first(k, &entries[..count], module, &own)?;
            }
            Some((m, _)) => {
                return Err(Error::config(
                    "PyTorch mapping",
                    format!("layer {k} is one of {module:?}, layer 0 of {m:?}"),
                ))
            }
        }
        entries.extend(own);
    }
    let Some((module, count)) = first else {
        return Err(Error::Empty {
            op: "PyTorch mapping",
            what: "list of layers",
        });
    };
    let module = module_text(module, &entries[..count], layers.len());
    let hidden = entries[..count]
        .iter()
        .find(|e| e.stem == "weight_hh")
        .map_or(0, |e| e.shape[1]);
    let readout = match readout {
        Some(r) => Some(readout_entries(
            r,
            hidden,
            prefixes.readout,
            index,
            &mut entries,
        )?),
        None => None,
    };
    Ok(Plan {
        entries,
        module,
        readout,
    })
}

/// Appends the readout's entries; returns its `nn.Linear` constructor.
fn readout_entries<F: Float>(
    readout: &Linear<F>,
    hidden: usize,
    prefix: &str,
    mut index: usize,
    entries: &mut Vec<Entry>,
) -> Result<String> {
    if readout.input_size() != hidden {
        return Err(Error::shape(
            "PyTorch mapping: readout input",
            &[hidden],
            &[readout.input_size()],
        ));
    }
    let params = readout.params();
    for slot in 0..params.slot_count() {
        let s = params.slot(slot);
        let stem = lookup(LINEAR_NAMES, s.name, "nn.Linear")?;
        entries.push(Entry {
            name: format!("{prefix}{stem}"),
            stem,
            shape: reversed(s.value.shape()),
            place: Place::Readout { slot },
            folded: false,
            index,
        });
        index += 1;
    }
    let bias = if params.slot_count() > 1 {
        "True"
    } else {
        "False"
    };
    Ok(format!(
        "nn.Linear(in_features={hidden}, out_features={}, bias={bias})",
        readout.output_size()
    ))
}

/// Writes `cell` (and `readout`) to a safetensors file at `path` as the `state_dict` of the
/// equivalent PyTorch modules, atomically: names `{prefixes.cell}weight_ih_l{k}`,
/// `weight_hh_l{k}`, `bias_ih_l{k}`, `bias_hh_l{k}` for layer `k`, and
/// `{prefixes.readout}weight`, `bias`; matrices transposed to PyTorch's `[out, in]`. A layer
/// with one bias where PyTorch has two (an [`Elman`](recur_cell::Elman) without the
/// recurrent bias) writes the second as zeros. The metadata's `module` and `readout` keys
/// hold the PyTorch constructors, e.g. `nn.LSTM(input_size=5, hidden_size=3, num_layers=2,
/// bias=True)`.
///
/// In Python, the bare cell loads with
/// `nn.LSTM(…).load_state_dict(safetensors.torch.load_file(path), strict=True)`.
///
/// ```
/// use rand::{rngs::StdRng, SeedableRng};
/// use recur_cell::{GruConfig, Sigmoid, Tanh};
/// use recur_io::{export_torch, import_torch, TorchPrefixes};
///
/// # fn main() -> recur_core::Result<()> {
/// let dir = std::env::temp_dir().join(format!("recur-io-doc-torch-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("gru.safetensors");
///
/// let gru = GruConfig::new(4, 3).init::<f32, _, _>(Sigmoid, Tanh, &mut StdRng::seed_from_u64(1))?;
/// export_torch(&gru, None, TorchPrefixes::default(), &path)?; // loads into nn.GRU(4, 3)
///
/// let mut back = GruConfig::new(4, 3).init::<f32, _, _>(Sigmoid, Tanh, &mut StdRng::seed_from_u64(2))?;
/// import_torch(&mut back, None, TorchPrefixes::default(), &path)?;
/// assert_eq!(back.weights().w_hh, gru.weights().w_hh);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// - [`Error::InvalidConfig`] when the cell has no PyTorch equivalent (see
///   [`TorchLayer::torch_module`]), its layers differ in hidden size or biases, or a GRU
///   layer has one bias only.
/// - [`Error::ShapeMismatch`] when the readout does not read the cell's hidden size.
/// - [`Error::Checkpoint`] when `F` is neither `f32` nor `f64`, or two tensors get one name.
/// - [`Error::Io`] when the file cannot be written (a previous file is then intact).
pub fn export_torch<F: Float>(
    cell: &dyn TorchRecurrent<F>,
    readout: Option<&Linear<F>>,
    prefixes: TorchPrefixes<'_>,
    path: impl AsRef<Path>,
) -> Result<()> {
    let path = path.as_ref();
    let plan = plan(cell, readout, prefixes)?;
    let layers = cell.torch_layers();
    let mut writer = ArchiveWriter::new::<F>(path)?;
    for entry in &plan.entries {
        let value = match (entry.folded, entry.place) {
            (true, _) => ArrayD::zeros(IxDyn(&entry.shape)),
            (false, Place::Cell { layer, slot }) => layers[layer]
                .torch_params()
                .slot(slot)
                .value
                .reversed_axes()
                .to_owned(),
            (false, Place::Readout { slot }) => readout
                .map(|r| r.params().slot(slot).value.reversed_axes().to_owned())
                .unwrap_or_default(),
        };
        writer.push(entry.name.clone(), &value.view())?;
    }
    let mut metadata = HashMap::from([
        ("format".to_string(), TORCH_FORMAT.to_string()),
        ("dtype".to_string(), F::NAME.to_string()),
        ("module".to_string(), plan.module),
    ]);
    if let Some(text) = plan.readout {
        metadata.insert("readout".to_string(), text);
    }
    writer.finish(metadata)
}

/// Reads a PyTorch `state_dict` in safetensors (as `safetensors.torch.save_file` writes
/// it, or [`export_torch`]) into `cell` (and `readout`), all or nothing: every tensor the
/// equivalent PyTorch modules have must be present under its name (with `prefixes`), with
/// its PyTorch shape and `F`'s dtype, and the file may hold no other tensor. A layer with
/// one bias where PyTorch has two (an [`Elman`](recur_cell::Elman) without the recurrent
/// bias) receives their sum, so it steps exactly as the two-bias cell would (see
/// [`ElmanConfig::recurrent_bias`](recur_cell::ElmanConfig::recurrent_bias)); when the
/// second bias is zero, as [`export_torch`] writes it, the first is kept bit for bit.
///
/// See [`export_torch`] for an example.
///
/// # Errors
/// - As [`export_torch`] for cells without a PyTorch equivalent.
/// - [`Error::Io`] when the file cannot be read.
/// - [`Error::Checkpoint`] naming every missing tensor, or every tensor that is not a
///   parameter of the modules, or the first tensor of another dtype or holding a NaN or an
///   infinity; also for a file that is not valid safetensors.
/// - [`Error::LayoutMismatch`] naming the first tensor of another shape.
///
/// `cell` and `readout` are unchanged whenever an error is returned.
pub fn import_torch<F: Float>(
    cell: &mut dyn TorchRecurrent<F>,
    mut readout: Option<&mut Linear<F>>,
    prefixes: TorchPrefixes<'_>,
    path: impl AsRef<Path>,
) -> Result<()> {
    let path = path.as_ref();
    let plan = plan(&*cell, readout.as_deref(), prefixes)?;
    let mut archive = Archive::read(path)?;
    let wanted = plan.readout.as_deref().map_or_else(
        || plan.module.clone(),
        |r| format!("{} and {r}", plan.module),
    );
    let mut missing: Vec<&str> = plan
        .entries
        .iter()
        .filter(|e| !archive.contains(&e.name))
        .map(|e| e.name.as_str())
        .collect();
    missing.sort_unstable();
    let prefixes = format!(
        "cell prefix {:?}, readout prefix {:?}",
        prefixes.cell, prefixes.readout
    );
    if !missing.is_empty() {
        return Err(invalid(
            path,
            format!(
                "tensors {missing:?} of {wanted} are missing; check the module prefixes \
                 ({prefixes}) and that the file holds that module"
            ),
        ));
    }
    let (mut values, mut folds) = (Vec::new(), Vec::new());
    for entry in &plan.entries {
        let value = archive.take::<F>(&entry.name)?;
        if value.shape() != entry.shape.as_slice() {
            return Err(Error::LayoutMismatch {
                slot: entry.index,
                name: entry.name.clone(),
                reason: format!(
                    "the file {} has shape {:?}, {wanted} has {:?} (PyTorch's [out, in] layout)",
                    path.display(),
                    value.shape(),
                    entry.shape
                ),
            });
        }
        let into = if entry.folded {
            &mut folds
        } else {
            &mut values
        };
        into.push((entry.place, value.reversed_axes()));
    }
    let extra = archive.leftovers();
    if !extra.is_empty() {
        return Err(invalid(
            path,
            format!(
                "tensors {extra:?} are not parameters of {wanted}; check the module prefixes \
                 ({prefixes}) and the cell's configuration (layers, biases)"
            ),
        ));
    }
    fold(&mut values, folds);
    let mut layers = cell.torch_layers_mut();
    for (place, value) in values {
        let params = match place {
            Place::Cell { layer, .. } => layers[layer].torch_params_mut(),
            Place::Readout { .. } => match readout.as_deref_mut() {
                Some(r) => r.params_mut(),
                None => continue,
            },
        };
        let (Place::Cell { slot, .. } | Place::Readout { slot }) = place;
        params.slot_mut(slot).value.assign(&value);
    }
    Ok(())
}

/// Adds each folded bias into the value at its place; a zero adds nothing, so a bias
/// written beside zeros comes back bit for bit (even `-0.0`).
fn fold<F: Float>(values: &mut [(Place, ArrayD<F>)], folds: Vec<(Place, ArrayD<F>)>) {
    for (place, other) in folds {
        if let Some((_, value)) = values.iter_mut().find(|(p, _)| *p == place) {
            Zip::from(value).and(&other).for_each(|v, &o| {
                if !o.is_zero() {
                    *v += o;
                }
            });
        }
    }
}
