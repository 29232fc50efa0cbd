//! Weights-only safetensors files, named by slot, for other tools (PyTorch, numpy) and back.

use std::collections::HashMap;
use std::path::Path;

use recur_core::{params, Error, Float, ParamSet, Result};

use crate::archive::{invalid, Archive, ArchiveWriter};
use crate::checkpoint::{FORMAT_VERSION, WEIGHTS_FORMAT};

/// Writes the parameters of `params` to a safetensors file at `path`, one tensor per slot
/// named exactly as the slot (`w_xh`, `w_hh`, `w_hy`, …), atomically.
///
/// The file is plain safetensors that any reader opens; its metadata also records
/// `format` ([`WEIGHTS_FORMAT`](crate::WEIGHTS_FORMAT)), `version`, `dtype`, `slots`
/// (the slot names in order, as JSON) and `checksum` (as in a
/// [`Checkpoint`](crate::Checkpoint), verified by [`import_safetensors`]). In Python:
/// `safetensors.numpy.load_file(path)["w_xh"]`.
///
/// ```
/// use ndarray::array;
/// use recur_io::{export_safetensors, import_safetensors};
///
/// # fn main() -> recur_core::Result<()> {
/// let dir = std::env::temp_dir().join(format!("recur-io-doc-export-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("weights.safetensors");
///
/// // A bare array is a one-slot parameter set whose slot is named "tensor".
/// let weights = array![[0.25_f32, -1.5], [3.0, 0.125]];
/// export_safetensors(&weights, &path)?;
///
/// let mut loaded = ndarray::Array2::<f32>::zeros((2, 2));
/// import_safetensors(&mut loaded, &path)?;
/// assert_eq!(loaded, weights);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`Error::Checkpoint`] when two slots share a name or `F` is neither `f32` nor `f64`;
/// [`Error::Io`] when the file cannot be written (a previous file is then intact).
pub fn export_safetensors<F: Float>(
    params: &dyn ParamSet<F>,
    path: impl AsRef<Path>,
) -> Result<()> {
    let path = path.as_ref();
    let mut writer = ArchiveWriter::new::<F>(path)?;
    let names = params::paths(params);
    for (i, name) in names.iter().enumerate() {
        writer.push(name.clone(), &params.slot(i).value)?;
    }
    let metadata = HashMap::from([
        ("format".to_string(), WEIGHTS_FORMAT.to_string()),
        ("version".to_string(), FORMAT_VERSION.to_string()),
        ("dtype".to_string(), F::NAME.to_string()),
        (
            "slots".to_string(),
            serde_json::to_string(&names).unwrap_or_default(),
        ),
    ]);
    writer.finish(metadata)
}

/// Reads a safetensors file of weights into `params`, all or nothing: every slot must be
/// present under its name with its shape and `F`'s dtype, and the file may hold no other
/// tensor. Metadata is not required, so files written by other tools (PyTorch's
/// `safetensors.torch.save_file`, numpy's `safetensors.numpy.save_file`) load as long as
/// names, shapes and dtype match.
///
/// See [`export_safetensors`] for an example.
///
/// # Errors
/// - [`Error::Io`] when the file cannot be read.
/// - [`Error::Checkpoint`] when it is not a valid safetensors file, its checksum (if it
///   has one) does not match, or a tensor is missing, has another dtype, holds a NaN or an
///   infinity, or is not a slot of `params`.
/// - [`Error::LayoutMismatch`] when a tensor's shape differs from its slot's.
///
/// `params` is unchanged whenever an error is returned.
pub fn import_safetensors<F: Float>(
    params: &mut dyn ParamSet<F>,
    path: impl AsRef<Path>,
) -> Result<()> {
    let mut archive = Archive::read(path.as_ref())?;
    let mut values = Vec::with_capacity(params.slot_count());
    for i in 0..params.slot_count() {
        let slot = params.slot(i);
        let name = params::path(params, i);
        if !archive.contains(&name) && archive.contains(&format!("model.{name}")) {
            return Err(invalid(
                archive.path(),
                "this is a checkpoint, not a weights export; read it with Checkpoint::load \
                 and Checkpoint::restore",
            ));
        }
        // Files exported before names were paths hold each slot under its own name.
        let legacy = slot.name;
        let key = if !archive.contains(&name) && archive.contains(legacy) {
            legacy.to_string()
        } else {
            name.clone()
        };
        let value = archive.take::<F>(&key)?;
        if value.shape() != slot.value.shape() {
            return Err(Error::LayoutMismatch {
                slot: i,
                name,
                reason: format!(
                    "the file {} has shape {:?}, the parameter set {:?}",
                    archive.path().display(),
                    value.shape(),
                    slot.value.shape()
                ),
            });
        }
        values.push(value);
    }
    if let Some(extra) = archive.leftover() {
        return Err(invalid(
            archive.path(),
            format!("tensor {extra:?} is not a slot of the parameter set"),
        ));
    }
    for (i, value) in values.iter().enumerate() {
        params.slot_mut(i).value.assign(value);
    }
    Ok(())
}
