//! The language-model example driven in-process, as one test binary so that the example is
//! compiled once for all of them: training on the real corpora in `../shared/data/`
//! (`training`), keeping its work through interrupts, resumes and bad outputs (`safety`), and
//! what a user drives from the command line (`ux`).

#[path = "../../examples/language_model/main.rs"]
#[allow(dead_code)]
mod language_model;

mod safety;
mod training;
mod ux;

use std::path::{Path, PathBuf};

/// A file of `../shared/data/`, which the tests need beside the project.
fn shared(file: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(file);
    assert!(
        path.exists(),
        "missing {}: the tests need ../shared/data beside the project",
        path.display()
    );
    path
}

/// A scratch folder of this process. The three modules' tests run in parallel, so a name
/// belongs to one test, unless the tests write distinct files into it (`plots`).
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("recur-lm-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A path as a command-line word.
fn s(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
