//! Checkpoints: exact round trips, bit-identical resumption, refusal of files or models
//! that do not fit.

mod common;

use std::collections::BTreeMap;

use common::{bits, model, rewrite, scratch, step, write_raw, Net};
use ndarray::{array, Array1};
use recur_core::{Error, Float, ParamSet};
use recur_io::{export_safetensors, Checkpoint};
use recur_optim::{Adagrad, Adam, Optimizer, OptimizerState};

fn adam<F: Float>() -> Box<dyn Optimizer<F>> {
    let f = F::from_f64_lossy;
    Box::new(Adam::new(f(0.01), f(0.9), f(0.999), f(1e-8)).unwrap())
}

fn adagrad<F: Float>() -> Box<dyn Optimizer<F>> {
    let f = F::from_f64_lossy;
    Box::new(Adagrad::new(f(0.1), f(1e-6)).unwrap())
}

fn metadata() -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "config".to_string(),
            r#"{"hidden_size":8,"seq_len":25}"#.to_string(),
        ),
        ("vocab".to_string(), r#"["a","b","é","\n"]"#.to_string()),
        ("epoch".to_string(), "3".to_string()),
        ("empty".to_string(), String::new()),
    ])
}

fn state_bits<F: Float>(state: &OptimizerState<F>) -> Vec<u64> {
    let buffers = state
        .slots
        .iter()
        .flat_map(|s| s.buffers.iter().flat_map(|b| b.iter().copied()));
    buffers
        .chain(state.hyper.values().copied())
        .map(|v| v.to_f64_lossless().to_bits())
        .collect()
}

/// Save → load → restore into a differently initialised model of the same shape.
fn round_trip<F: Float>(name: &str, optimizer: Option<Box<dyn Optimizer<F>>>) {
    let dir = scratch(name);
    let path = dir.join("ckpt.safetensors");
    let mut net = model::<F>(1, 6, 4);
    let state = optimizer.map(|mut opt| {
        for _ in 0..3 {
            step(&mut net, opt.as_mut());
        }
        opt.state()
    });
    let saved = Checkpoint::capture(&net, state.clone(), metadata());
    saved.save(&path).unwrap();

    let loaded = Checkpoint::<F>::load(&path).unwrap();
    assert_eq!(loaded, saved);
    assert_eq!(loaded.metadata, metadata());
    assert_eq!(loaded.optimizer, state);
    if let (Some(a), Some(b)) = (&loaded.optimizer, &state) {
        assert_eq!(state_bits(a), state_bits(b));
        assert!(!a.slots.is_empty(), "the optimizer should have buffers");
    }

    let mut other = model::<F>(2, 6, 4);
    assert_ne!(bits(&other), bits(&net));
    loaded.restore(&mut other).unwrap();
    assert_eq!(bits(&other), bits(&net));
    assert_eq!(common::entries(&dir), ["ckpt.safetensors"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn round_trip_is_bit_exact() {
    round_trip::<f32>("rt-f32", None);
    round_trip::<f64>("rt-f64", None);
    round_trip::<f32>("rt-f32-adam", Some(adam()));
    round_trip::<f64>("rt-f64-adam", Some(adam()));
    round_trip::<f32>("rt-f32-adagrad", Some(adagrad()));
    round_trip::<f64>("rt-f64-adagrad", Some(adagrad()));
}

#[test]
fn optimizer_state_before_the_first_step_round_trips() {
    let dir = scratch("fresh-opt");
    let path = dir.join("c.safetensors");
    let net = model::<f32>(1, 3, 2);
    let state = adam::<f32>().state();
    assert!(state.slots.is_empty());
    Checkpoint::capture(&net, Some(state.clone()), BTreeMap::new())
        .save(&path)
        .unwrap();
    let loaded = Checkpoint::<f32>::load(&path).unwrap();
    assert_eq!(loaded.optimizer, Some(state));
    assert!(loaded.metadata.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// N steps in one go versus N/2, save, load into fresh objects, N/2 more.
fn resume<F: Float>(name: &str, make: fn() -> Box<dyn Optimizer<F>>) {
    const N: usize = 10;
    let dir = scratch(name);
    let path = dir.join("half.safetensors");

    let mut straight = model::<F>(5, 7, 5);
    let mut opt = make();
    for _ in 0..N {
        step(&mut straight, opt.as_mut());
    }

    let mut first = model::<F>(5, 7, 5);
    let mut first_opt = make();
    for _ in 0..N / 2 {
        step(&mut first, first_opt.as_mut());
    }
    Checkpoint::capture(&first, Some(first_opt.state()), BTreeMap::new())
        .save(&path)
        .unwrap();
    drop((first, first_opt));

    let checkpoint = Checkpoint::<F>::load(&path).unwrap();
    let mut resumed: Net<F> = model::<F>(77, 7, 5);
    checkpoint.restore(&mut resumed).unwrap();
    let mut resumed_opt = checkpoint
        .optimizer
        .clone()
        .unwrap()
        .into_optimizer()
        .unwrap();
    for _ in 0..N / 2 {
        step(&mut resumed, resumed_opt.as_mut());
    }

    assert_eq!(bits(&resumed), bits(&straight));
    assert_eq!(resumed_opt.steps_taken(), N as u64);
    assert_eq!(state_bits(&resumed_opt.state()), state_bits(&opt.state()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn resumed_training_is_bit_identical() {
    resume::<f32>("resume-adam-f32", adam);
    resume::<f64>("resume-adam-f64", adam);
    resume::<f32>("resume-adagrad-f32", adagrad);
    resume::<f64>("resume-adagrad-f64", adagrad);
}

#[test]
fn restore_refuses_another_layout_and_leaves_params_untouched() {
    let dir = scratch("layout");
    let path = dir.join("c.safetensors");
    Checkpoint::capture(&model::<f64>(1, 6, 4), None, BTreeMap::new())
        .save(&path)
        .unwrap();
    let checkpoint = Checkpoint::<f64>::load(&path).unwrap();

    // Another hidden size: shapes differ.
    let mut wider = model::<f64>(2, 6, 5);
    let before = bits(&wider);
    let err = checkpoint.restore(&mut wider).unwrap_err();
    assert!(
        matches!(err, Error::LayoutMismatch { slot: 0, .. }),
        "{err}"
    );
    assert_eq!(bits(&wider), before);

    // Another slot list (no biases): names differ.
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(3);
    let cell = recur_cell::ElmanConfig::new(6, 4)
        .init::<f64, _>(recur_cell::Tanh, &mut rng)
        .unwrap();
    let readout = recur_cell::LinearConfig::new(4, 6).init(&mut rng).unwrap();
    let mut unbiased = recur_bptt::Model::new(cell, readout).unwrap();
    let before = bits(&unbiased);
    let err = checkpoint.restore(&mut unbiased).unwrap_err();
    assert!(matches!(err, Error::LayoutMismatch { .. }), "{err}");
    assert_eq!(bits(&unbiased), before);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn optimizer_state_of_another_layout_is_refused() {
    let small = model::<f32>(1, 3, 2);
    let mut large = model::<f32>(1, 6, 4);
    let mut opt = adam::<f32>();
    step(&mut large, opt.as_mut());
    let checkpoint = Checkpoint::capture(&small, Some(opt.state()), BTreeMap::new());
    let mut target = model::<f32>(9, 3, 2);
    let before = bits(&target);
    let err = checkpoint.restore(&mut target).unwrap_err();
    assert!(matches!(err, Error::LayoutMismatch { .. }), "{err}");
    assert!(err.to_string().contains("optimizer state"), "{err}");
    assert_eq!(bits(&target), before);
}

/// Two slots, both named `w`.
struct Twice(Array1<f32>, Array1<f32>);

impl ParamSet<f32> for Twice {
    fn slot_count(&self) -> usize {
        2
    }
    fn slot(&self, index: usize) -> recur_core::Slot<'_, f32> {
        let value = if index == 0 { &self.0 } else { &self.1 };
        recur_core::Slot {
            name: "w",
            value: value.view().into_dyn(),
            rows: None,
        }
    }
    fn slot_mut(&mut self, index: usize) -> recur_core::SlotMut<'_, f32> {
        let value = if index == 0 { &mut self.0 } else { &mut self.1 };
        recur_core::SlotMut {
            name: "w",
            value: value.view_mut().into_dyn(),
        }
    }
}

#[test]
fn duplicate_slot_names_cannot_be_saved() {
    let dir = scratch("dup");
    // A hand-written set whose two slots have one name (composites cannot make one).
    let twice = Twice(array![1.0_f32], Array1::<f32>::zeros(2));
    let err = Checkpoint::capture(&twice, None, BTreeMap::new())
        .save(dir.join("c.safetensors"))
        .unwrap_err();
    assert!(err.to_string().contains("unique"), "{err}");
    assert!(export_safetensors(&twice, dir.join("w.safetensors")).is_err());
    assert!(common::entries(&dir).is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- files that are not what they should be ----

fn expect_checkpoint_error<F: Float>(path: &std::path::Path, needle: &str) -> String {
    match Checkpoint::<F>::load(path) {
        Err(err @ Error::Checkpoint { .. }) => {
            let text = err.to_string();
            assert!(text.contains(needle), "{text:?} should mention {needle:?}");
            assert!(text.contains(&path.display().to_string()), "{text}");
            text
        }
        other => panic!("expected a checkpoint error mentioning {needle:?}, got {other:?}"),
    }
}

/// A valid f32 checkpoint with Adam state, for the corruption tests to damage.
fn valid_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("valid.safetensors");
    let mut net = model::<f32>(1, 4, 3);
    let mut opt = adam::<f32>();
    step(&mut net, opt.as_mut());
    Checkpoint::capture(&net, Some(opt.state()), metadata())
        .save(&path)
        .unwrap();
    path
}

#[test]
fn missing_file_is_an_io_error_with_the_path() {
    let dir = scratch("missing");
    let path = dir.join("nope.safetensors");
    let err = Checkpoint::<f32>::load(&path).unwrap_err();
    assert!(
        matches!(&err, Error::Io { path: p, .. } if p == &path),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn truncated_and_random_files_are_refused() {
    let dir = scratch("truncated");
    let valid = valid_file(&dir);
    let bytes = std::fs::read(&valid).unwrap();
    let path = dir.join("broken.safetensors");
    for len in [0, 5, 8, 9, 64, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..len]).unwrap();
        expect_checkpoint_error::<f32>(&path, "safetensors");
    }
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0; 4]);
    std::fs::write(&path, &longer).unwrap();
    expect_checkpoint_error::<f32>(&path, "does not end where the file ends");

    std::fs::write(
        &path,
        b"PK\x03\x04 this is a zip file, or a pickle, or anything",
    )
    .unwrap();
    expect_checkpoint_error::<f32>(&path, "not a readable safetensors file");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn foreign_safetensors_files_are_refused() {
    let dir = scratch("foreign");
    let path = dir.join("plain.safetensors");
    let tensor = (
        "w".to_string(),
        safetensors::Dtype::F32,
        vec![2],
        vec![0u8; 8],
    );
    write_raw(&path, &Default::default(), std::slice::from_ref(&tensor));
    expect_checkpoint_error::<f32>(&path, "without recur metadata");

    let other = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    write_raw(&path, &other, &[tensor]);
    expect_checkpoint_error::<f32>(&path, "\"pt\"");

    export_safetensors(&model::<f32>(1, 3, 2), &path).unwrap();
    expect_checkpoint_error::<f32>(&path, "import_safetensors");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn wrong_version_or_dtype_is_refused() {
    let dir = scratch("version");
    let path = valid_file(&dir);
    let text = expect_checkpoint_error::<f64>(&path, "f32");
    assert!(text.contains("f64"), "{text}");

    rewrite(&path, |meta, _| {
        meta.insert("version".into(), "3".into());
    });
    let text = expect_checkpoint_error::<f32>(&path, "version \"3\"");
    assert!(text.contains("reads versions 1 and 2"), "{text}");

    // Metadata claiming f64 over f32 tensors: caught tensor by tensor.
    let path = valid_file(&dir);
    rewrite(&path, |meta, _| {
        meta.insert("dtype".into(), "f64".into());
    });
    expect_checkpoint_error::<f64>(&path, "F32");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_extra_or_misshapen_tensors_are_refused() {
    let dir = scratch("tensors");

    let path = valid_file(&dir);
    rewrite(&path, |_, tensors| {
        tensors.retain(|t| t.0 != "model.cell.w_hh")
    });
    expect_checkpoint_error::<f32>(&path, "\"model.cell.w_hh\" is missing");

    let path = valid_file(&dir);
    rewrite(&path, |_, tensors| {
        tensors.retain(|t| t.0 != "optim.3.readout.w_hy.1")
    });
    expect_checkpoint_error::<f32>(&path, "\"optim.3.readout.w_hy.1\" is missing");

    let path = valid_file(&dir);
    rewrite(&path, |_, tensors| {
        tensors.retain(|t| t.0 != "optim.hyper.lr")
    });
    expect_checkpoint_error::<f32>(&path, "\"optim.hyper.lr\" is missing");

    let path = valid_file(&dir);
    rewrite(&path, |_, tensors| {
        tensors.push((
            "model.w_extra".into(),
            safetensors::Dtype::F32,
            vec![1],
            vec![0; 4],
        ));
    });
    expect_checkpoint_error::<f32>(&path, "\"model.w_extra\" is not part");

    let path = valid_file(&dir);
    rewrite(&path, |meta, _| {
        meta.insert("note".into(), "hi".into());
    });
    expect_checkpoint_error::<f32>(&path, "unknown metadata key \"note\"");

    let path = valid_file(&dir);
    rewrite(&path, |meta, _| {
        meta.insert("slots".into(), "[\"w_xh\",".into());
    });
    expect_checkpoint_error::<f32>(&path, "\"slots\" metadata is malformed");

    let path = valid_file(&dir);
    rewrite(&path, |_, tensors| {
        let lr = tensors
            .iter_mut()
            .find(|t| t.0 == "optim.hyper.lr")
            .unwrap();
        lr.2 = vec![2];
        lr.3.extend_from_slice(&[0; 4]);
    });
    expect_checkpoint_error::<f32>(&path, "expected a scalar");

    // A file whose w_hh was saved with another shape loads, but does not restore.
    let path = valid_file(&dir);
    rewrite(&path, |_, tensors| {
        let w = tensors
            .iter_mut()
            .find(|t| t.0 == "model.cell.w_hh")
            .unwrap();
        w.2 = vec![w.2.iter().product()];
    });
    let checkpoint = Checkpoint::<f32>::load(&path).unwrap();
    let mut net = model::<f32>(1, 4, 3);
    let before = bits(&net);
    let err = checkpoint.restore(&mut net).unwrap_err();
    assert!(
        matches!(err, Error::LayoutMismatch { slot: 1, .. }),
        "{err}"
    );
    assert_eq!(bits(&net), before);
    std::fs::remove_dir_all(&dir).unwrap();
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let dir = scratch("prop-random");
            let path = dir.join("x.safetensors");
            std::fs::write(&path, &bytes).unwrap();
            prop_assert!(Checkpoint::<f32>::load(&path).is_err());
            let mut net = model::<f32>(1, 3, 2);
            prop_assert!(recur_io::import_safetensors(&mut net, &path).is_err());
        }

        #[test]
        fn on_damaged_checkpoints(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            cut in any::<prop::sample::Index>(),
            truncate in any::<bool>(),
        ) {
            let dir = scratch("prop-damaged");
            let path = valid_file(&dir);
            let mut bytes = std::fs::read(&path).unwrap();
            for (at, value) in flips {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
            if truncate {
                bytes.truncate(cut.index(bytes.len()));
            }
            let changed = bytes != std::fs::read(&path).unwrap();
            std::fs::write(&path, &bytes).unwrap();
            // Any change is refused (the checksum covers every byte); an unchanged file loads.
            let loaded = Checkpoint::<f32>::load(&path);
            prop_assert_eq!(loaded.is_err(), changed);
            if let Ok(checkpoint) = loaded {
                let mut net = model::<f32>(1, 4, 3);
                let _ = checkpoint.restore(&mut net);
            }
        }
    }
}

/// Checkpoints written before slot names were paths (`model.w_xh`, optimizer slots named
/// `w_xh`) still load into the same model: a saved name without a dot matches the slot's
/// own name at the same position.
#[test]
fn checkpoints_with_the_old_slot_names_still_load() {
    let dir = scratch("old-names");
    let path = valid_file(&dir);
    let strip = |name: &str| {
        ["cell.", "readout."]
            .iter()
            .fold(name.to_string(), |n, part| n.replace(part, ""))
    };
    rewrite(&path, |meta, tensors| {
        for tensor in tensors.iter_mut() {
            tensor.0 = strip(&tensor.0);
        }
        for key in ["slots", "optimizer"] {
            let value = meta[key].clone();
            meta.insert(key.to_string(), strip(&value));
        }
    });
    let checkpoint = Checkpoint::<f32>::load(&path).unwrap();
    assert!(checkpoint
        .tensors
        .iter()
        .all(|(name, _)| !name.contains('.')));
    let mut net = model::<f32>(1, 4, 3);
    checkpoint.restore(&mut net).unwrap();
    let saved: Vec<_> = checkpoint.tensors.iter().map(|(_, v)| v.clone()).collect();
    let restored: Vec<_> = (0..net.slot_count())
        .map(|i| net.slot(i).value.to_owned())
        .collect();
    assert_eq!(saved, restored);
    // An old name that is not the slot's is refused.
    rewrite(&path, |meta, tensors| {
        for tensor in tensors.iter_mut() {
            tensor.0 = tensor.0.replace("w_hh", "w_zz");
        }
        let slots = meta["slots"].replace("w_hh", "w_zz");
        meta.insert("slots".into(), slots);
        meta.remove("optimizer");
        tensors.retain(|t| !t.0.starts_with("optim."));
    });
    let renamed = Checkpoint::<f32>::load(&path).unwrap();
    assert!(renamed.restore(&mut model::<f32>(1, 4, 3)).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
