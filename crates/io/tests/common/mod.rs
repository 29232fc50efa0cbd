//! Shared fixtures: small real models, deterministic gradients, scratch directories.

#![allow(dead_code)] // each test file uses a different subset

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rand::{rngs::StdRng, SeedableRng};
use recur_bptt::Model;
use recur_cell::{Elman, ElmanConfig, LinearConfig, Tanh};
use recur_core::{Float, ParamSet};
use recur_optim::Optimizer;
use safetensors::tensor::TensorView;
use safetensors::SafeTensors;

pub type Net<F> = Model<F, Elman<F, Tanh>>;

/// An Elman language-model-shaped network with biases: slots w_xh, w_hh, b_h, w_hy, b_y.
pub fn model<F: Float>(seed: u64, vocab: usize, hidden: usize) -> Net<F> {
    let mut rng = StdRng::seed_from_u64(seed);
    let cell = ElmanConfig::new(vocab, hidden)
        .with_bias(true)
        .init::<F, _>(Tanh, &mut rng)
        .unwrap();
    let readout = LinearConfig::new(hidden, vocab)
        .with_bias(true)
        .init(&mut rng)
        .unwrap();
    let mut model = Model::new(cell, readout).unwrap();
    // Non-zero biases, so they are actually tested.
    for i in 0..model.slot_count() {
        let mut slot = model.slot_mut(i);
        if slot.name.starts_with("b_") {
            let n = slot.value.len();
            for (k, v) in slot.value.iter_mut().enumerate() {
                *v = F::from_f64_lossy((k as f64 - n as f64 / 2.0) / 7.0);
            }
        }
    }
    model
}

/// A deterministic gradient that depends on the parameters, so any difference in the
/// trajectory shows up in later steps.
pub fn step<F: Float>(model: &mut Net<F>, opt: &mut dyn Optimizer<F>) {
    let mut grads = model.zero_grads();
    for i in 0..model.slot_count() {
        let offset = F::from_f64_lossy(i as f64 * 0.3);
        let g = model
            .slot(i)
            .value
            .mapv(|w| (w * F::from_f64_lossy(3.0) + offset).sin() * F::from_f64_lossy(0.5));
        grads.slot_mut(i).value.assign(&g);
    }
    opt.step(model, &grads).unwrap();
}

/// Every parameter's bits, in slot order (f32 widens to f64 exactly).
pub fn bits<F: Float>(set: &dyn ParamSet<F>) -> Vec<u64> {
    recur_core::params::flatten(set)
        .into_iter()
        .map(|v| v.to_f64_lossless().to_bits())
        .collect()
}

/// A fresh, empty directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("recur-io-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// File names in `dir`, sorted.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Rewrites a safetensors file through `edit`, which may change its metadata and tensor
/// list (name, dtype, shape, bytes), the way a foreign tool or a hand edit would.
///
/// An edit invalidates the file's checksum, so the rewritten file drops it and says it is
/// format version 1 (which has none) unless `edit` sets another version: the checks after
/// the checksum are then the ones that answer.
pub fn rewrite(
    path: &Path,
    edit: impl FnOnce(
        &mut HashMap<String, String>,
        &mut Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)>,
    ),
) {
    let bytes = std::fs::read(path).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let mut meta = header.metadata().clone().unwrap_or_default();
    if meta.remove("checksum").is_some() {
        meta.insert("version".into(), "1".into());
    }
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            (
                name,
                view.dtype(),
                safetensors::View::shape(&view).to_vec(),
                view.data().to_vec(),
            )
        })
        .collect();
    edit(&mut meta, &mut tensors);
    write_raw(path, &meta, &tensors);
}

/// Writes a safetensors file from raw parts.
pub fn write_raw(
    path: &Path,
    meta: &HashMap<String, String>,
    tensors: &[(String, safetensors::Dtype, Vec<usize>, Vec<u8>)],
) {
    let views: Vec<_> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let meta = (!meta.is_empty()).then(|| meta.clone());
    std::fs::write(path, safetensors::serialize(views, &meta).unwrap()).unwrap();
}
