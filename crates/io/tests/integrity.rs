//! Files that can be trusted: damage is detected, non-finite weights are refused, identical
//! saves are identical files, interrupted saves leave nothing behind for long, and files of
//! the previous format version still load.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{bits, entries, model, rewrite, scratch, step, Net};
use recur_core::{Error, Float, ParamSet};
use recur_io::{export_safetensors, import_safetensors, Checkpoint};
use recur_optim::{Adam, Optimizer};

fn metadata() -> BTreeMap<String, String> {
    (0..12)
        .map(|i| (format!("key{i:02}"), format!("value {i}")))
        .chain([("vocab".to_string(), r#"["a","é","\n"]"#.to_string())])
        .collect()
}

/// A trained f32 network and its Adam state, saved with metadata.
fn saved_checkpoint(path: &Path) -> Net<f32> {
    let mut net = model::<f32>(1, 5, 3);
    let mut adam = Adam::new(0.01_f32, 0.9, 0.999, 1e-8).unwrap();
    for _ in 0..2 {
        step(&mut net, &mut adam);
    }
    Checkpoint::capture(&net, Some(adam.state()), metadata())
        .save(path)
        .unwrap();
    net
}

fn checkpoint_error(path: &Path) -> String {
    match Checkpoint::<f32>::load(path) {
        Err(err @ Error::Checkpoint { .. }) => {
            let text = err.to_string();
            assert!(text.contains(&path.display().to_string()), "{text}");
            text
        }
        other => panic!("expected a checkpoint error, got {other:?}"),
    }
}

/// Positions to damage: every byte of the length prefix, and every `stride`-th byte of
/// the rest, header and data alike, plus the last one.
fn positions(len: usize, stride: usize) -> Vec<usize> {
    let mut at: Vec<usize> = (0..8).chain((8..len).step_by(stride)).collect();
    at.push(len - 1);
    at
}

#[test]
fn a_checkpoint_with_any_single_byte_changed_is_refused() {
    let dir = scratch("integrity-flip");
    let good = dir.join("good.safetensors");
    saved_checkpoint(&good);
    let bytes = std::fs::read(&good).unwrap();
    let header_end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    assert!(header_end < bytes.len());
    Checkpoint::<f32>::load(&good).unwrap();

    let bad = dir.join("bad.safetensors");
    let (mut in_header, mut in_data) = (0, 0);
    for at in positions(bytes.len(), 3) {
        for mask in [0x01_u8, 0x20, 0x80, 0xff] {
            let mut damaged = bytes.clone();
            damaged[at] ^= mask;
            std::fs::write(&bad, &damaged).unwrap();
            let text = checkpoint_error(&bad);
            assert!(
                text.contains("restore it from a backup"),
                "byte {at} ^ {mask:#04x}: {text}"
            );
        }
        if at < header_end {
            in_header += 1;
        } else {
            in_data += 1;
        }
    }
    assert!(in_header > 100 && in_data > 50, "{in_header} {in_data}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn damaged_data_is_reported_as_a_checksum_mismatch() {
    let dir = scratch("integrity-mismatch");
    let path = dir.join("run.safetensors");
    saved_checkpoint(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x04;
    std::fs::write(&path, &bytes).unwrap();
    let text = checkpoint_error(&path);
    assert!(text.contains("checksum mismatch"), "{text}");

    // A weights export is sealed the same way.
    let weights = dir.join("weights.safetensors");
    let net = model::<f32>(2, 4, 3);
    export_safetensors(&net, &weights).unwrap();
    let mut bytes = std::fs::read(&weights).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&weights, &bytes).unwrap();
    let mut target = model::<f32>(3, 4, 3);
    let before = bits(&target);
    let err = import_safetensors(&mut target, &weights).unwrap_err();
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
    assert_eq!(bits(&target), before);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn identical_saves_write_identical_bytes() {
    let dir = scratch("integrity-identical");
    let paths: Vec<PathBuf> = (0..4)
        .map(|i| dir.join(format!("run{i}.safetensors")))
        .collect();
    // Separate but identical runs, each saved from its own state.
    for path in &paths {
        saved_checkpoint(path);
    }
    let first = std::fs::read(&paths[0]).unwrap();
    for path in &paths[1..] {
        assert!(std::fs::read(path).unwrap() == first, "{path:?} differs");
    }

    let net = model::<f64>(4, 6, 2);
    let (a, b) = (dir.join("a.safetensors"), dir.join("b.safetensors"));
    export_safetensors(&net, &a).unwrap();
    export_safetensors(&net, &b).unwrap();
    assert!(std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A network with `value` at flat index `index` of slot `slot`.
fn poisoned(slot: usize, index: usize, value: f32) -> Net<f32> {
    let mut net = model::<f32>(5, 4, 3);
    *net.slot_mut(slot).value.iter_mut().nth(index).unwrap() = value;
    net
}

#[test]
fn non_finite_weights_are_refused_on_load_naming_the_tensor() {
    let dir = scratch("integrity-nan");
    let path = dir.join("diverged.safetensors");
    for value in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let net = poisoned(1, 4, value);
        let name = recur_core::params::path(&net, 1);
        Checkpoint::capture(&net, None, BTreeMap::new())
            .save(&path)
            .unwrap();
        let text = checkpoint_error(&path);
        assert!(text.contains(&format!("\"model.{name}\"")), "{text}");
        assert!(text.contains("index 4"), "{text}");
        assert!(text.contains("earlier checkpoint"), "{text}");

        export_safetensors(&net, &path).unwrap();
        let mut target = model::<f32>(6, 4, 3);
        let before = bits(&target);
        let err = import_safetensors(&mut target, &path).unwrap_err();
        assert!(err.to_string().contains(&format!("\"{name}\"")), "{err}");
        assert_eq!(bits(&target), before);
    }

    // Non-finite optimizer state is refused too.
    let mut net = model::<f32>(5, 4, 3);
    let mut adam = Adam::new(0.01_f32, 0.9, 0.999, 1e-8).unwrap();
    step(&mut net, &mut adam);
    let mut state = adam.state();
    state.slots[0].buffers[0][[0, 0]] = f32::NAN;
    Checkpoint::capture(&net, Some(state), BTreeMap::new())
        .save(&path)
        .unwrap();
    let text = checkpoint_error(&path);
    assert!(text.contains("optim.0."), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A name the temporary files of `write_atomic` have, for a process that cannot exist
/// (above the largest process id Linux allows) and old enough for systems without a
/// process table.
fn stale_temp(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(format!(".{name}.4194305-0.tmp"));
    std::fs::write(&path, b"half a checkpoint").unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(old)
        .unwrap();
    path
}

#[test]
fn leftover_temporary_files_are_removed_by_the_next_save_and_nothing_else() {
    let dir = scratch("integrity-stale");
    let path = dir.join("run.safetensors");
    saved_checkpoint(&path);
    stale_temp(&dir, "run.safetensors");
    stale_temp(&dir, "other-run.safetensors");
    // Look-alikes that are not ours, and a temporary file of this very process (a save
    // that may be in progress on another thread).
    let keep = [
        ".run.safetensors.tmp".to_string(),
        "notes.tmp".to_string(),
        ".run.safetensors.4194305-0.tmp.bak".to_string(),
        ".run.safetensors.4194305-x.tmp".to_string(),
        format!(".run.safetensors.{}-999999.tmp", std::process::id()),
    ];
    for name in &keep {
        std::fs::write(dir.join(name), b"keep me").unwrap();
    }
    std::fs::create_dir(dir.join(".folder.4194305-1.tmp")).unwrap();

    saved_checkpoint(&path);
    let mut expected: Vec<String> = keep.to_vec();
    expected.push(".folder.4194305-1.tmp".to_string());
    expected.push("run.safetensors".to_string());
    expected.sort();
    assert_eq!(entries(&dir), expected);
    Checkpoint::<f32>::load(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn version_1_files_still_load_and_version_2_needs_its_checksum() {
    let dir = scratch("integrity-versions");
    let path = dir.join("old.safetensors");
    let net = saved_checkpoint(&path);
    // What version 1 wrote: no checksum entry.
    rewrite(&path, |meta, _| {
        assert_eq!(meta["version"], "1");
        assert!(!meta.contains_key("checksum"));
    });
    let checkpoint = Checkpoint::<f32>::load(&path).unwrap();
    let mut restored = model::<f32>(9, 5, 3);
    checkpoint.restore(&mut restored).unwrap();
    assert_eq!(bits(&restored), bits(&net));
    assert_eq!(checkpoint.metadata, metadata());
    assert_eq!(checkpoint.optimizer.unwrap().steps, 2);

    // A current-version file whose checksum entry is gone is refused.
    rewrite(&path, |meta, _| {
        meta.insert("version".into(), recur_io::FORMAT_VERSION.into());
    });
    let text = checkpoint_error(&path);
    assert!(text.contains("checksum"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_checksum_entry_of_another_tool_is_left_alone() {
    let dir = scratch("integrity-foreign");
    let path = dir.join("foreign.safetensors");
    let weights = ndarray::Array2::<f32>::from_elem((2, 2), 0.5);
    export_safetensors(&weights, &path).unwrap();
    // Another tool's file: no recur metadata, and a checksum entry of its own kind.
    rewrite(&path, |meta, _| {
        meta.clear();
        meta.insert("checksum".into(), "sha256:0123".into());
    });
    let mut loaded = ndarray::Array2::<f32>::zeros((2, 2));
    import_safetensors(&mut loaded, &path).unwrap();
    assert_eq!(loaded, weights);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn saves_of_every_float_type_round_trip_through_the_checksum() {
    fn round_trip<F: Float>(dir: &Path) {
        let path = dir.join(format!("{}.safetensors", F::NAME));
        let net = model::<F>(7, 5, 4);
        Checkpoint::capture(&net, None, metadata())
            .save(&path)
            .unwrap();
        let mut restored = model::<F>(8, 5, 4);
        Checkpoint::<F>::load(&path)
            .unwrap()
            .restore(&mut restored)
            .unwrap();
        assert_eq!(bits(&restored), bits(&net));
    }
    let dir = scratch("integrity-types");
    round_trip::<f32>(&dir);
    round_trip::<f64>(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
}
