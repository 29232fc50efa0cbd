//! Crash safety: a save interrupted at any point leaves the previous checkpoint loadable.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use common::{bits, entries, model, scratch};
use recur_io::{write_atomic_with, Checkpoint};

const TARGET: &str = "RECUR_IO_CRASH_TARGET";
const CONTENT: &str = "RECUR_IO_CRASH_CONTENT";
/// Exit code of the crashed child, to tell the crash apart from a failing test.
const CRASHED: i32 = 86;

/// Run as a child process by `crash_mid_save_keeps_the_previous_checkpoint`: starts
/// replacing the target with half of the new checkpoint, then dies on the spot: the
/// process exits without unwinding or running destructors, so nothing gets to clean up,
/// as with a killed process or a power cut. (`exit` rather than `abort`, so no core file
/// is dumped.) A no-op when run normally.
#[test]
fn crash_child() {
    let (Ok(target), Ok(content)) = (std::env::var(TARGET), std::env::var(CONTENT)) else {
        return;
    };
    let bytes = std::fs::read(content).unwrap();
    let _ = write_atomic_with(&target, |file| {
        file.write_all(&bytes[..bytes.len() / 2])?;
        file.sync_all()?;
        std::process::exit(CRASHED)
    });
}

#[test]
fn crash_mid_save_keeps_the_previous_checkpoint() {
    let dir = scratch("crash");
    let path = dir.join("run.safetensors");
    let old = model::<f32>(1, 5, 3);
    Checkpoint::capture(&old, None, BTreeMap::new())
        .save(&path)
        .unwrap();

    // The checkpoint the crashed process was writing, kept aside.
    let aside = scratch("crash-aside");
    let new = model::<f32>(2, 5, 3);
    let new_file = aside.join("new.safetensors");
    Checkpoint::capture(&new, None, BTreeMap::new())
        .save(&new_file)
        .unwrap();

    let status = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--test-threads=1", "--nocapture"])
        .env(TARGET, &path)
        .env(CONTENT, &new_file)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(
        status.code(),
        Some(CRASHED),
        "the child should have crashed mid-save"
    );

    // The crash left its half-written temporary file, but not in place of the target.
    let names = entries(&dir);
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names
        .iter()
        .any(|n| n.starts_with(".run.safetensors.") && n.ends_with(".tmp")));

    let mut restored = model::<f32>(3, 5, 3);
    Checkpoint::<f32>::load(&path)
        .unwrap()
        .restore(&mut restored)
        .unwrap();
    assert_eq!(bits(&restored), bits(&old));

    // The next save goes through despite the leftover, replaces the old checkpoint and
    // removes the crashed save's temporary file.
    Checkpoint::capture(&new, None, BTreeMap::new())
        .save(&path)
        .unwrap();
    assert_eq!(entries(&dir), ["run.safetensors"]);
    Checkpoint::<f32>::load(&path)
        .unwrap()
        .restore(&mut restored)
        .unwrap();
    assert_eq!(bits(&restored), bits(&new));
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&aside).unwrap();
}

#[test]
fn failed_save_keeps_the_previous_checkpoint_and_cleans_up() {
    let dir = scratch("failed-save");
    let path = dir.join("run.safetensors");
    let old = model::<f64>(1, 4, 2);
    Checkpoint::capture(&old, None, BTreeMap::new())
        .save(&path)
        .unwrap();
    let good = std::fs::read(&path).unwrap();

    // An I/O error halfway through (a full disk, say).
    let err = write_atomic_with(&path, |file| {
        file.write_all(&good[..good.len() / 3])?;
        Err(std::io::Error::other("no space left on device"))
    })
    .unwrap_err();
    assert!(err.to_string().contains("run.safetensors"), "{err}");
    assert_eq!(entries(&dir), ["run.safetensors"]);

    let mut restored = model::<f64>(2, 4, 2);
    Checkpoint::<f64>::load(&path)
        .unwrap()
        .restore(&mut restored)
        .unwrap();
    assert_eq!(bits(&restored), bits(&old));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn saving_into_a_directory_fails_cleanly() {
    let dir = scratch("into-dir");
    let target = dir.join("taken");
    std::fs::create_dir_all(target.join("child")).unwrap();
    let err = Checkpoint::capture(&model::<f32>(1, 3, 2), None, BTreeMap::new())
        .save(&target)
        .unwrap_err();
    assert!(
        matches!(&err, recur_core::Error::Io { path, .. } if path == &target),
        "{err}"
    );
    assert_eq!(entries(&dir), ["taken"]);
    std::fs::remove_dir_all(&dir).unwrap();
}
