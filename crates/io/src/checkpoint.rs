//! Training checkpoints: parameters, optimizer state and caller metadata in one
//! safetensors file.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use recur_core::{params, Error, Float, ParamSet, Result};
use recur_optim::{OptimizerState, SlotState};
use serde::{Deserialize, Serialize};

use crate::archive::{check_version, invalid, Archive, ArchiveWriter};

/// Value of the `format` metadata key of a checkpoint file.
pub const CHECKPOINT_FORMAT: &str = "recur-checkpoint";

/// Value of the `format` metadata key of a weights-only file written by
/// [`export_safetensors`](crate::export_safetensors).
pub const WEIGHTS_FORMAT: &str = "recur-weights";

/// The layout version this build writes (the `version` metadata key). Version 2 added the
/// `checksum` entry; version 1 files (without it) still load.
pub const FORMAT_VERSION: &str = "2";

/// Prefix of caller metadata keys in the file (`user.<key>`).
const USER_PREFIX: &str = "user.";

/// The optimizer state minus its floats, stored as JSON in the `optimizer` metadata key;
/// the floats themselves are tensors, so they stay exact.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OptimizerHeader {
    kind: String,
    float: String,
    steps: u64,
    slots: Vec<SlotHeader>,
    hyper: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SlotHeader {
    name: String,
    buffers: usize,
}

fn model_tensor(name: &str) -> String {
    format!("model.{name}")
}

fn buffer_tensor(slot: usize, name: &str, buffer: usize) -> String {
    format!("optim.{slot}.{name}.{buffer}")
}

fn hyper_tensor(name: &str) -> String {
    format!("optim.hyper.{name}")
}

/// A training checkpoint: a model's parameters, optionally the optimizer's state, and
/// string metadata of the caller's choosing (configuration, vocabulary, epoch, RNG
/// position, …).
///
/// # File format
/// One [safetensors](https://huggingface.co/docs/safetensors) file, so the weights open
/// directly in PyTorch or numpy and every float round-trips bit for bit:
///
/// | tensor | content |
/// | --- | --- |
/// | `model.<slot name>` | one per parameter slot |
/// | `optim.<slot index>.<slot name>.<buffer index>` | optimizer buffers (velocities, moments) |
/// | `optim.hyper.<name>` | optimizer hyper-parameters, as 0-d tensors |
///
/// The `__metadata__` map holds `format` ([`CHECKPOINT_FORMAT`]), `version`
/// ([`FORMAT_VERSION`]), `dtype` (`"f32"` or `"f64"`), `slots` (a JSON list of the slot
/// names in order, since safetensors does not keep tensor order), `optimizer` (JSON with
/// kind, float type, step count, slot names, buffer counts and hyper-parameter names; absent
/// without optimizer), each caller entry `key` as `user.<key>`, and `checksum`.
///
/// | metadata key | content |
/// | --- | --- |
/// | `format`, `version`, `dtype` | [`CHECKPOINT_FORMAT`], [`FORMAT_VERSION`], `"f32"` or `"f64"` |
/// | `slots` | JSON list of the slot names, in slot order |
/// | `optimizer` | JSON header of the optimizer state (absent without optimizer) |
/// | `user.<key>` | caller metadata |
/// | `checksum` | `crc32c:<8 hex digits>`: CRC-32C of the whole file, computed with these 8 digits as `0`s (since version 2) |
///
/// The header's keys are written in sorted order, so saving the same state twice gives
/// byte-identical files. Loading verifies the checksum before anything else, so a file
/// damaged on disk or in transit is refused rather than read as different weights; a file
/// of version 1 (which has no checksum) still loads. Weights or optimizer buffers that are
/// NaN or infinite are refused on load, naming the tensor.
///
/// Files are written atomically ([`write_atomic`](crate::write_atomic)): a crash during
/// [`Checkpoint::save`] leaves the previous checkpoint intact, and the next save into the
/// same folder removes the temporary file the crash left.
///
/// # Example
/// ```
/// use std::collections::BTreeMap;
/// use rand::{rngs::StdRng, SeedableRng};
/// use recur_bptt::Model;
/// use recur_cell::{ElmanConfig, LinearConfig, Tanh};
/// use recur_core::ParamSet;
/// use recur_io::Checkpoint;
/// use recur_optim::{Adam, Optimizer};
///
/// # fn main() -> recur_core::Result<()> {
/// let mut rng = StdRng::seed_from_u64(7);
/// let cell = ElmanConfig::new(5, 3).init::<f32, _>(Tanh, &mut rng)?;
/// let mut model = Model::new(cell, LinearConfig::new(3, 5).init(&mut rng)?)?;
/// let mut adam = Adam::new(0.01, 0.9, 0.999, 1e-8)?;
/// let grads = model.zero_grads();
/// adam.step(&mut model, &grads)?;
///
/// let dir = std::env::temp_dir().join(format!("recur-io-doc-ckpt-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("model.safetensors");
/// let metadata = BTreeMap::from([("epoch".to_string(), "3".to_string())]);
/// Checkpoint::capture(&model, Some(adam.state()), metadata).save(&path)?;
///
/// // Later, possibly in another process: a model of the same configuration…
/// let mut rng = StdRng::seed_from_u64(99);
/// let cell = ElmanConfig::new(5, 3).init::<f32, _>(Tanh, &mut rng)?;
/// let mut resumed = Model::new(cell, LinearConfig::new(3, 5).init(&mut rng)?)?;
/// // …takes the saved parameters, and the optimizer continues where it stopped.
/// let checkpoint = Checkpoint::<f32>::load(&path)?;
/// checkpoint.restore(&mut resumed)?;
/// let optimizer = checkpoint.optimizer.clone().expect("saved with state").into_optimizer()?;
/// assert_eq!(optimizer.steps_taken(), 1);
/// assert_eq!(checkpoint.metadata["epoch"], "3");
/// assert_eq!(resumed.slot(0).value, model.slot(0).value);
///
/// // Loading with the wrong float type is an error, not garbage.
/// assert!(Checkpoint::<f64>::load(&path).is_err());
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint<F> {
    /// The parameters, one `(slot name, values)` pair per slot, in slot order.
    pub tensors: Vec<(String, ArrayD<F>)>,
    /// The optimizer's state, if it was saved.
    pub optimizer: Option<OptimizerState<F>>,
    /// Caller metadata (stored as `user.<key>` in the file).
    pub metadata: BTreeMap<String, String>,
}

impl<F: Float> Checkpoint<F> {
    /// Copies the parameters of `params` (in slot order) and bundles them with an optimizer
    /// state (from [`Optimizer::state`](recur_optim::Optimizer::state)) and metadata.
    pub fn capture(
        params: &dyn ParamSet<F>,
        optimizer: Option<OptimizerState<F>>,
        metadata: BTreeMap<String, String>,
    ) -> Self {
        let tensors = (0..params.slot_count())
            .map(|i| (params::path(params, i), params.slot(i).value.to_owned()))
            .collect();
        Checkpoint {
            tensors,
            optimizer,
            metadata,
        }
    }

    /// Writes the checkpoint to `path` atomically (see [`write_atomic`](crate::write_atomic)),
    /// replacing any previous file there.
    ///
    /// # Errors
    /// - [`Error::Checkpoint`] when two slots (or two buffers) share a name, so the file
    ///   could not tell them apart, or when `F` is neither `f32` nor `f64`.
    /// - [`Error::Io`] when the file cannot be written; a previous file is then intact.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let mut writer = ArchiveWriter::new::<F>(path)?;
        for (name, value) in &self.tensors {
            writer.push(model_tensor(name), &value.view())?;
        }
        let slot_names: Vec<&str> = self.tensors.iter().map(|(n, _)| n.as_str()).collect();
        let mut metadata = HashMap::from([
            ("format".to_string(), CHECKPOINT_FORMAT.to_string()),
            ("version".to_string(), FORMAT_VERSION.to_string()),
            ("dtype".to_string(), F::NAME.to_string()),
            ("slots".to_string(), to_json(&slot_names)),
        ]);
        if let Some(state) = &self.optimizer {
            for (i, slot) in state.slots.iter().enumerate() {
                for (j, buffer) in slot.buffers.iter().enumerate() {
                    writer.push(buffer_tensor(i, &slot.name, j), &buffer.view())?;
                }
            }
            for (name, &value) in &state.hyper {
                writer.push(
                    hyper_tensor(name),
                    &ArrayD::from_elem(IxDyn(&[]), value).view(),
                )?;
            }
            let header = OptimizerHeader {
                kind: state.kind.clone(),
                float: state.float.clone(),
                steps: state.steps,
                slots: state
                    .slots
                    .iter()
                    .map(|s| SlotHeader {
                        name: s.name.clone(),
                        buffers: s.buffers.len(),
                    })
                    .collect(),
                hyper: state.hyper.keys().cloned().collect(),
            };
            metadata.insert("optimizer".to_string(), to_json(&header));
        }
        for (key, value) in &self.metadata {
            metadata.insert(format!("{USER_PREFIX}{key}"), value.clone());
        }
        writer.finish(metadata)
    }

    /// Reads a checkpoint written by [`Checkpoint::save`].
    ///
    /// Everything is validated: the file must be a complete safetensors file whose checksum
    /// matches its content, whose metadata says it is a recur checkpoint of a readable
    /// version (1 or [`FORMAT_VERSION`]) holding `F` values, and whose tensors are exactly
    /// those the metadata lists, no more, no fewer, all finite.
    ///
    /// # Errors
    /// - [`Error::Io`] when the file cannot be read (missing, unreadable).
    /// - [`Error::Checkpoint`] saying what is wrong and what to do: not a safetensors file,
    ///   truncated or corrupt; a checksum that does not match (the file was damaged); no
    ///   recur metadata; a weights export or another format; an unknown version; another
    ///   float type (naming both); missing, extra or mistyped tensors; a NaN or infinite
    ///   value (naming the tensor and index); malformed metadata.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let mut archive = Archive::read(path.as_ref())?;
        let path = archive.path().to_path_buf();
        let path = path.as_path();
        let mut meta = archive.metadata();
        check_header::<F>(path, &mut meta, CHECKPOINT_FORMAT)?;

        let slot_names: Vec<String> = take_json(path, &mut meta, "slots")?;
        let mut tensors = Vec::with_capacity(slot_names.len());
        let mut seen = BTreeSet::new();
        for name in slot_names {
            if !seen.insert(name.clone()) {
                return Err(invalid(path, format!("slot {name:?} is listed twice")));
            }
            let value = archive.take::<F>(&model_tensor(&name))?;
            tensors.push((name, value));
        }

        let optimizer = match meta.contains_key("optimizer") {
            false => None,
            true => {
                let header: OptimizerHeader = take_json(path, &mut meta, "optimizer")?;
                Some(read_optimizer(&mut archive, header)?)
            }
        };

        let mut metadata = BTreeMap::new();
        for (key, value) in meta {
            match key.strip_prefix(USER_PREFIX) {
                Some(user) => {
                    metadata.insert(user.to_string(), value);
                }
                None => {
                    return Err(invalid(
                        path,
                        format!(
                            "unknown metadata key {key:?} for version {FORMAT_VERSION} \
                             (caller metadata is stored as {USER_PREFIX}<key>)"
                        ),
                    ))
                }
            }
        }
        if let Some(extra) = archive.leftover() {
            return Err(invalid(
                path,
                format!("tensor {extra:?} is not part of the checkpoint's layout"),
            ));
        }
        Ok(Checkpoint {
            tensors,
            optimizer,
            metadata,
        })
    }

    /// Checks that the checkpoint fits `params`: the same slot names with the same shapes
    /// in the same order, and an optimizer state (if any) built for that layout.
    ///
    /// # Errors
    /// [`Error::LayoutMismatch`] naming the first slot that differs.
    pub fn check_layout(&self, params: &dyn ParamSet<F>) -> Result<()> {
        if self.tensors.len() != params.slot_count() {
            return Err(Error::LayoutMismatch {
                slot: self.tensors.len().min(params.slot_count()),
                name: String::new(),
                reason: format!(
                    "the checkpoint has {} slots, the parameter set {}; build the model \
                     with the configuration the checkpoint was saved with",
                    self.tensors.len(),
                    params.slot_count()
                ),
            });
        }
        for (i, (name, value)) in self.tensors.iter().enumerate() {
            let slot = params.slot(i);
            if !params::saved_name_matches(name, params, i) || value.shape() != slot.value.shape() {
                let path = params::path(params, i);
                return Err(Error::LayoutMismatch {
                    slot: i,
                    reason: format!(
                        "the checkpoint has {name} {:?}, the parameter set {path} {:?}; build \
                         the model with the configuration the checkpoint was saved with",
                        value.shape(),
                        slot.value.shape()
                    ),
                    name: path,
                });
            }
        }
        match &self.optimizer {
            Some(state) => state.check_layout(params),
            None => Ok(()),
        }
    }

    /// Copies the saved parameters into `params`, all or nothing.
    ///
    /// # Errors
    /// [`Error::LayoutMismatch`] when [`Checkpoint::check_layout`] fails; `params` is then
    /// untouched.
    pub fn restore(&self, params: &mut dyn ParamSet<F>) -> Result<()> {
        self.check_layout(params)?;
        for (i, (_, value)) in self.tensors.iter().enumerate() {
            params.slot_mut(i).value.assign(value);
        }
        Ok(())
    }
}

/// Checks `format`, `version` and `dtype` (removing them from `meta`).
pub(crate) fn check_header<F: Float>(
    path: &Path,
    meta: &mut HashMap<String, String>,
    expected_format: &str,
) -> Result<()> {
    match meta.remove("format").as_deref() {
        Some(format) if format == expected_format => {}
        Some(WEIGHTS_FORMAT) => {
            return Err(invalid(
                path,
                "this is a weights-only export, not a checkpoint; read it with \
                 import_safetensors",
            ))
        }
        Some(other) => {
            return Err(invalid(
                path,
                format!("format is {other:?}, expected {expected_format:?}"),
            ))
        }
        None => {
            return Err(invalid(
                path,
                format!(
                    "a safetensors file without recur metadata (no \"format\" key), not a \
                     {expected_format} file; plain weight files are read with import_safetensors"
                ),
            ))
        }
    }
    match meta.remove("version") {
        Some(v) => check_version(path, &v)?,
        None => return Err(invalid(path, "the \"version\" metadata key is missing")),
    }
    match meta.remove("dtype") {
        Some(d) if d == F::NAME => Ok(()),
        Some(d) => Err(invalid(
            path,
            format!(
                "the file holds {d} values but was loaded as {}; load it with the {d} \
                 type parameter",
                F::NAME
            ),
        )),
        None => Err(invalid(path, "the \"dtype\" metadata key is missing")),
    }
}

/// Rebuilds an optimizer state from its header and tensors.
fn read_optimizer<F: Float>(
    archive: &mut Archive,
    header: OptimizerHeader,
) -> Result<OptimizerState<F>> {
    let mut slots = Vec::with_capacity(header.slots.len());
    for (i, slot) in header.slots.into_iter().enumerate() {
        let buffers = (0..slot.buffers)
            .map(|j| archive.take::<F>(&buffer_tensor(i, &slot.name, j)))
            .collect::<Result<Vec<_>>>()?;
        slots.push(SlotState {
            name: slot.name,
            buffers,
        });
    }
    let mut hyper = BTreeMap::new();
    for name in header.hyper {
        let tensor = hyper_tensor(&name);
        let value = archive.take::<F>(&tensor)?;
        let scalar = match value.len() {
            1 => value.iter().next().copied(),
            _ => None,
        }
        .ok_or_else(|| {
            invalid(
                archive.path(),
                format!(
                    "hyper-parameter tensor {tensor:?} has shape {:?}, expected a scalar",
                    value.shape()
                ),
            )
        })?;
        if hyper.insert(name.clone(), scalar).is_some() {
            return Err(invalid(
                archive.path(),
                format!("hyper-parameter {name:?} is listed twice"),
            ));
        }
    }
    Ok(OptimizerState {
        kind: header.kind,
        float: header.float,
        hyper,
        steps: header.steps,
        slots,
    })
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    // Serialising plain strings, numbers and vectors of them cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

/// Removes metadata key `key` and parses it as JSON.
pub(crate) fn take_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    meta: &mut HashMap<String, String>,
    key: &str,
) -> Result<T> {
    let text = meta
        .remove(key)
        .ok_or_else(|| invalid(path, format!("the {key:?} metadata key is missing")))?;
    serde_json::from_str(&text)
        .map_err(|e| invalid(path, format!("the {key:?} metadata is malformed: {e}")))
}
