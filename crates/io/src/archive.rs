//! Safetensors archives of float tensors: encoding `f32`/`f64` arrays as little-endian
//! bytes and back, with every failure reported as a recur [`Error`] naming the file.
//!
//! Files are written byte-for-byte reproducibly (the header's keys sorted) and sealed with
//! a CRC-32C of the whole file, kept in the `checksum` metadata entry as `crc32c:<8 hex
//! digits>` and computed with those 8 digits as `0`s; reading verifies it before trusting
//! anything else in the file.

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use recur_core::{Error, Float, Result};
use safetensors::tensor::{Metadata, TensorView};
use safetensors::{Dtype, SafeTensorError, SafeTensors};

use crate::checkpoint::{CHECKPOINT_FORMAT, FORMAT_VERSION, WEIGHTS_FORMAT};
use crate::write_atomic;

/// Metadata key of the file's checksum.
const CHECKSUM_KEY: &str = "checksum";
/// How the checksum value starts; 8 lowercase hex digits follow.
const CHECKSUM_PREFIX: &str = "crc32c:";
/// The checksum's digits while the checksum is computed.
const CHECKSUM_ZEROS: &[u8; 8] = b"00000000";

/// Format versions this build reads: version 1 files have no checksum and load unverified.
const READABLE_VERSIONS: [&str; 2] = ["1", FORMAT_VERSION];

/// Advice for a file whose bytes are not what was written.
const DAMAGED: &str = "the file was damaged after it was written (disk, copy or transfer); \
                       restore it from a backup or use an earlier checkpoint";

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

    /// Serialises everything, seals it with a checksum and replaces the file atomically.
    pub(crate) fn finish(self, metadata: HashMap<String, String>) -> Result<()> {
        let mut metadata: BTreeMap<String, String> = metadata.into_iter().collect();
        let zeros = String::from_utf8_lossy(CHECKSUM_ZEROS);
        metadata.insert(
            CHECKSUM_KEY.to_string(),
            format!("{CHECKSUM_PREFIX}{zeros}"),
        );
        let views = self
            .entries
            .iter()
            .map(|(name, shape, bytes)| {
                TensorView::new(self.dtype, shape.clone(), bytes).map(|view| (name.as_str(), view))
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| invalid(&self.path, format!("cannot encode a tensor: {e}")))?;
        let unsorted = metadata.clone().into_iter().collect();
        let bytes = safetensors::serialize(views, &Some(unsorted))
            .map_err(|e| invalid(&self.path, format!("cannot encode the file: {e}")))?;
        let bytes = sorted_header(bytes, &metadata)
            .and_then(seal)
            .map_err(|e| invalid(&self.path, format!("cannot encode the file: {e}")))?;
        write_atomic(&self.path, &bytes)
    }
}

/// The header length a safetensors file declares (its first 8 bytes), if they exist.
fn declared_header_len(bytes: &[u8]) -> Option<usize> {
    let prefix: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    usize::try_from(u64::from_le_bytes(prefix)).ok()
}

/// Rewrites the header of a serialised file with every key in sorted order: the
/// safetensors crate writes the metadata map in hash order, which differs between runs.
fn sorted_header(
    bytes: Vec<u8>,
    metadata: &BTreeMap<String, String>,
) -> std::result::Result<Vec<u8>, String> {
    let data_start = declared_header_len(&bytes)
        .and_then(|n| n.checked_add(8))
        .filter(|&end| end <= bytes.len())
        .ok_or("the serialised header is incomplete")?;
    let mut header: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..data_start]).map_err(|e| e.to_string())?;
    let metadata = serde_json::to_value(metadata).map_err(|e| e.to_string())?;
    header.insert("__metadata__".to_string(), metadata);
    let mut text = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
    // Safetensors pads the header with spaces to a multiple of 8 bytes.
    text.resize(text.len().next_multiple_of(8), b' ');
    let mut prefix = (text.len() as u64).to_le_bytes().to_vec();
    prefix.extend_from_slice(&text);
    // The same entries in another order have the same length, so the tensor data (most of
    // the file) is neither copied nor moved.
    let mut bytes = bytes;
    bytes.splice(..data_start, prefix);
    Ok(bytes)
}

/// Where the checksum's 8 digits sit in `bytes` when the header holds the entry
/// `"checksum":"<value>"` exactly once.
fn checksum_digits(bytes: &[u8], value: &str) -> Option<usize> {
    let header_end = declared_header_len(bytes)?.checked_add(8)?;
    let header = bytes.get(8..header_end)?;
    let entry = format!("\"{CHECKSUM_KEY}\":\"{value}\"");
    let entry = entry.as_bytes();
    let mut found = header
        .windows(entry.len())
        .enumerate()
        .filter(|(_, w)| *w == entry)
        .map(|(i, _)| 8 + i + entry.len() - 1 - CHECKSUM_ZEROS.len());
    match (found.next(), found.next()) {
        (Some(at), None) => Some(at),
        _ => None,
    }
}

/// CRC-32C of `bytes` with the checksum digits at `at` read as zeros.
fn content_crc(bytes: &[u8], at: usize) -> u32 {
    let end = at + CHECKSUM_ZEROS.len();
    let crc = crc32c::crc32c(&bytes[..at]);
    let crc = crc32c::crc32c_append(crc, CHECKSUM_ZEROS);
    crc32c::crc32c_append(crc, &bytes[end..])
}

/// Writes the checksum of a file whose checksum digits are still zeros.
fn seal(mut bytes: Vec<u8>) -> std::result::Result<Vec<u8>, String> {
    let zeros = String::from_utf8_lossy(CHECKSUM_ZEROS);
    let at = checksum_digits(&bytes, &format!("{CHECKSUM_PREFIX}{zeros}"))
        .ok_or("the checksum entry is missing from the serialised header")?;
    let digits = format!("{:08x}", content_crc(&bytes, at));
    bytes[at..at + CHECKSUM_ZEROS.len()].copy_from_slice(digits.as_bytes());
    Ok(bytes)
}

/// Checks the checksum entry `value` against the file's content.
fn verify(path: &Path, bytes: &[u8], value: &str) -> Result<()> {
    let stored = value
        .strip_prefix(CHECKSUM_PREFIX)
        .filter(|d| d.len() == 8 && d.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .and_then(|d| u32::from_str_radix(d, 16).ok())
        .ok_or_else(|| {
            invalid(
                path,
                format!("its checksum entry {value:?} is malformed; {DAMAGED}"),
            )
        })?;
    let at = checksum_digits(bytes, value).ok_or_else(|| {
        invalid(
            path,
            format!("its checksum entry is not where this format writes it; {DAMAGED}"),
        )
    })?;
    let computed = content_crc(bytes, at);
    if computed != stored {
        return Err(invalid(
            path,
            format!(
                "content checksum mismatch (stored {CHECKSUM_PREFIX}{stored:08x}, computed \
                 {CHECKSUM_PREFIX}{computed:08x}); {DAMAGED}"
            ),
        ));
    }
    Ok(())
}

/// Whether `metadata` says the file is ours in the current version, which is always sealed.
fn sealed_version(metadata: &HashMap<String, String>) -> bool {
    let ours = matches!(
        metadata.get("format").map(String::as_str),
        Some(CHECKPOINT_FORMAT | WEIGHTS_FORMAT)
    );
    ours && metadata.get("version").map(String::as_str) == Some(FORMAT_VERSION)
}

/// Accepts the format versions this build reads.
///
/// # Errors
/// [`Error::Checkpoint`] for any other version, saying which ones are readable.
pub(crate) fn check_version(path: &Path, version: &str) -> Result<()> {
    if READABLE_VERSIONS.contains(&version) {
        return Ok(());
    }
    Err(invalid(
        path,
        format!(
            "format version {version:?}, but this build reads versions {}; the file was \
             written by another release of recur: load it with that release, or update this one",
            READABLE_VERSIONS.join(" and ")
        ),
    ))
}

/// A safetensors file read into memory and validated, from which tensors are taken by
/// name; [`Archive::leftover`] then reports any tensor nobody asked for.
#[derive(Debug)]
pub(crate) struct Archive {
    path: PathBuf,
    bytes: Vec<u8>,
    data_start: usize,
    header: Metadata,
    metadata: HashMap<String, String>,
    taken: BTreeSet<String>,
}

impl Archive {
    /// Reads and validates the file's structure (header, offsets, sizes) and its checksum.
    ///
    /// A file of ours in the current format version must carry a checksum; older versions
    /// and files written by other tools have none and are read unverified.
    pub(crate) fn read(path: &Path) -> Result<Self> {
        let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
        let (header_len, header) = SafeTensors::read_metadata(&bytes).map_err(|e| {
            invalid(
                path,
                format!(
                    "not a readable safetensors file: {}; if it is a file recur wrote, {DAMAGED}",
                    describe(&e)
                ),
            )
        })?;
        // The checksum entry is the archive's own business, not the caller's metadata. A
        // file from another tool may use the key in its own way: only ours are checked.
        let mut metadata = header.metadata().clone().unwrap_or_default();
        let ours = sealed_version(&metadata)
            || metadata
                .get(CHECKSUM_KEY)
                .is_some_and(|v| v.starts_with(CHECKSUM_PREFIX));
        match ours.then(|| metadata.remove(CHECKSUM_KEY)).flatten() {
            Some(value) => verify(path, &bytes, &value)?,
            None if ours => {
                return Err(invalid(
                    path,
                    format!(
                        "it says it is format version {FORMAT_VERSION}, which always carries a \
                         checksum, but has none; {DAMAGED}"
                    ),
                ))
            }
            None => {}
        }
        Ok(Archive {
            path: path.to_path_buf(),
            bytes,
            data_start: 8 + header_len,
            header,
            metadata,
            taken: BTreeSet::new(),
        })
    }

    /// The file this archive was read from.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The `__metadata__` string map without the checksum (empty when the file has none).
    pub(crate) fn metadata(&self) -> HashMap<String, String> {
        self.metadata.clone()
    }

    /// Whether the file has a tensor called `name`.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.header.info(name).is_some()
    }

    /// Decodes tensor `name` as `F`.
    ///
    /// # Errors
    /// When the tensor is missing, has another dtype, holds a NaN or an infinity, or `F` is
    /// unsupported.
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
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(invalid(
                &self.path,
                format!(
                    "tensor {name:?} holds {} at flat index {index}; a model with non-finite \
                     values cannot be trained or evaluated. The run that saved it had diverged: \
                     load an earlier checkpoint, or retrain with a smaller learning rate or \
                     gradient clipping",
                    values[index]
                ),
            ));
        }
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
        self.leftovers().into_iter().next()
    }

    /// Every tensor that was never taken, by name.
    pub(crate) fn leftovers(&self) -> Vec<String> {
        let mut names: Vec<String> = self.header.tensors().into_keys().collect();
        names.sort();
        names.retain(|n| !self.taken.contains(n));
        names
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
