//! Safetensors archives of float tensors: encoding `f32`/`f64` arrays as little-endian
//! bytes and back, with every failure reported as a recur [`Error`] naming the file.

use std::any::{Any, TypeId};
use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use recur_core::{Error, Float, Result};
use safetensors::tensor::{Metadata, TensorView};
use safetensors::{Dtype, SafeTensorError, SafeTensors};

use crate::write_atomic;

/// An [`Error::Checkpoint`] for `path`.
pub(crate) fn invalid(path: &Path, reason: impl Into<String>) -> Error {
    Error::Checkpoint {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The safetensors dtype of `F`, if it has one.
fn dtype_of<F: Float>() -> Option<Dtype> {
    let id = TypeId::of::<F>();
    if id == TypeId::of::<f32>() {
        Some(Dtype::F32)
    } else if id == TypeId::of::<f64>() {
        Some(Dtype::F64)
    } else {
        None
    }
}

fn checked_dtype<F: Float>(path: &Path) -> Result<Dtype> {
    dtype_of::<F>().ok_or_else(|| {
        invalid(
            path,
            format!(
                "scalar type {} has no safetensors dtype; use f32 or f64",
                F::NAME
            ),
        )
    })
}

/// Little-endian bytes of `values` in row-major order. Going through `Any` instead of a
/// numeric conversion keeps every bit, NaN payloads included.
fn encode<F: Float>(values: &ArrayViewD<'_, F>) -> Option<Vec<u8>> {
    let values: Box<dyn Any> = Box::new(values.iter().copied().collect::<Vec<F>>());
    match values.downcast::<Vec<f32>>() {
        Ok(v) => Some(v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        Err(values) => values
            .downcast::<Vec<f64>>()
            .ok()
            .map(|v| v.iter().flat_map(|x| x.to_le_bytes()).collect()),
    }
}

/// The inverse of [`encode`]; `None` when `F` is neither `f32` nor `f64`.
fn decode<F: Float>(bytes: &[u8]) -> Option<Vec<F>> {
    let values: Box<dyn Any> = match dtype_of::<F>()? {
        Dtype::F32 => Box::new(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect::<Vec<f32>>(),
        ),
        _ => Box::new(
            bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect::<Vec<f64>>(),
        ),
    };
    values.downcast::<Vec<F>>().ok().map(|v| *v)
}

/// Says what a safetensors parse error means for someone holding the file.
fn describe(e: &SafeTensorError) -> String {
    match e {
        SafeTensorError::HeaderTooSmall => {
            "it is shorter than the 8-byte header length (empty or truncated file)".into()
        }
        SafeTensorError::HeaderTooLarge => {
            "its header length is implausibly large (not a safetensors file?)".into()
        }
        SafeTensorError::InvalidHeaderLength => {
            "its header runs past the end of the file (truncated, or not a safetensors file)".into()
        }
        SafeTensorError::InvalidHeader
        | SafeTensorError::InvalidHeaderStart
        | SafeTensorError::InvalidHeaderDeserialization => {
            "its header is not a valid safetensors JSON header (corrupt, or not a safetensors file)"
                .into()
        }
        SafeTensorError::MetadataIncompleteBuffer => {
            "its tensor data does not end where the file ends (truncated or extended)".into()
        }
        SafeTensorError::InvalidOffset(name) => {
            format!("tensor {name:?} has invalid data offsets (corrupt header)")
        }
        SafeTensorError::TensorInvalidInfo | SafeTensorError::ValidationOverflow => {
            "a tensor's shape does not match its data size (corrupt header)".into()
        }
        other => format!("{other}"),
    }
}

/// Collects named tensors, then writes them with string metadata as one safetensors file.
#[derive(Debug)]
pub(crate) struct ArchiveWriter {
    path: PathBuf,
    dtype: Dtype,
    entries: Vec<(String, Vec<usize>, Vec<u8>)>,
    names: BTreeSet<String>,
}

impl ArchiveWriter {
    /// A writer for tensors of type `F`, to be saved at `path`.
    pub(crate) fn new<F: Float>(path: &Path) -> Result<Self> {
        Ok(ArchiveWriter {
            path: path.to_path_buf(),
            dtype: checked_dtype::<F>(path)?,
            entries: Vec::new(),
            names: BTreeSet::new(),
        })
    }

    /// Adds a tensor; names must be unique within the file.
    pub(crate) fn push<F: Float>(&mut self, name: String, value: &ArrayViewD<'_, F>) -> Result<()> {
        if !self.names.insert(name.clone()) {
            return Err(invalid(
                &self.path,
                format!("two tensors are named {name:?}; every slot needs a unique name"),
            ));
        }
        let bytes = encode(value).ok_or_else(|| invalid(&self.path, "unsupported scalar type"))?;
        self.entries.push((name, value.shape().to_vec(), bytes));
        Ok(())
    }

    /// Serialises everything and replaces the file atomically.
    pub(crate) fn finish(self, metadata: HashMap<String, String>) -> Result<()> {
        let views = self
            .entries
            .iter()
            .map(|(name, shape, bytes)| {
                TensorView::new(self.dtype, shape.clone(), bytes).map(|view| (name.as_str(), view))
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| invalid(&self.path, format!("cannot encode a tensor: {e}")))?;
        let bytes = safetensors::serialize(views, &Some(metadata))
            .map_err(|e| invalid(&self.path, format!("cannot encode the file: {e}")))?;
        write_atomic(&self.path, &bytes)
    }
}

/// A safetensors file read into memory and validated, from which tensors are taken by
/// name; [`Archive::leftover`] then reports any tensor nobody asked for.
#[derive(Debug)]
pub(crate) struct Archive {
    path: PathBuf,
    bytes: Vec<u8>,
    data_start: usize,
    header: Metadata,
    taken: BTreeSet<String>,
}

impl Archive {
    /// Reads and validates the file's structure (header, offsets, sizes).
    pub(crate) fn read(path: &Path) -> Result<Self> {
        let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
        let (header_len, header) = SafeTensors::read_metadata(&bytes).map_err(|e| {
            invalid(
                path,
                format!("not a readable safetensors file: {}", describe(&e)),
            )
        })?;
        Ok(Archive {
            path: path.to_path_buf(),
            bytes,
            data_start: 8 + header_len,
            header,
            taken: BTreeSet::new(),
        })
    }

    /// The file this archive was read from.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The `__metadata__` string map (empty when the file has none).
    pub(crate) fn metadata(&self) -> HashMap<String, String> {
        self.header.metadata().clone().unwrap_or_default()
    }

    /// Whether the file has a tensor called `name`.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.header.info(name).is_some()
    }

    /// Decodes tensor `name` as `F`.
    ///
    /// # Errors
    /// When the tensor is missing, has another dtype, or `F` is unsupported.
    pub(crate) fn take<F: Float>(&mut self, name: &str) -> Result<ArrayD<F>> {
        let want = checked_dtype::<F>(&self.path)?;
        let info = self
            .header
            .info(name)
            .ok_or_else(|| invalid(&self.path, format!("tensor {name:?} is missing")))?;
        if info.dtype != want {
            return Err(invalid(
                &self.path,
                format!(
                    "tensor {name:?} holds {:?} values, but it was read as {} ({want:?})",
                    info.dtype,
                    F::NAME
                ),
            ));
        }
        // `read_metadata` checked that the offsets tile the data section exactly.
        let (start, end) = info.data_offsets;
        let data = self
            .bytes
            .get(self.data_start + start..self.data_start + end)
            .ok_or_else(|| invalid(&self.path, format!("tensor {name:?} lies outside the file")))?;
        let values = decode::<F>(data)
            .ok_or_else(|| invalid(&self.path, "unsupported scalar type".to_string()))?;
        let array = ArrayD::from_shape_vec(IxDyn(&info.shape), values).map_err(|e| {
            invalid(
                &self.path,
                format!("tensor {name:?} does not fit its shape: {e}"),
            )
        })?;
        self.taken.insert(name.to_string());
        Ok(array)
    }

    /// The first tensor (by name) that was never taken, if any.
    pub(crate) fn leftover(&self) -> Option<String> {
        let mut names: Vec<String> = self.header.tensors().into_keys().collect();
        names.sort();
        names.into_iter().find(|n| !self.taken.contains(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn encode_decode_keep_every_bit() {
        let a = array![
            1.5_f32,
            -0.0,
            f32::from_bits(0x7fc0_1234),
            f32::MIN_POSITIVE / 2.0
        ];
        let bytes = encode(&a.view().into_dyn()).unwrap();
        assert_eq!(bytes.len(), 16);
        let back = decode::<f32>(&bytes).unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back), bits(a.as_slice().unwrap()));

        let b = array![[1.0_f64 / 3.0, f64::INFINITY], [-1e-310, 2.0]];
        // A transposed view is encoded in its logical (row-major) order.
        let t = b.t().into_dyn();
        let back = decode::<f64>(&encode(&t).unwrap()).unwrap();
        let expected: Vec<u64> = t.iter().map(|x| x.to_bits()).collect();
        assert_eq!(
            back.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            expected
        );
    }

    #[test]
    fn dtypes() {
        assert_eq!(dtype_of::<f32>(), Some(Dtype::F32));
        assert_eq!(dtype_of::<f64>(), Some(Dtype::F64));
    }
}
