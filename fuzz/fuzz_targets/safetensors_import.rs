//! Weight import on arbitrary file content: `Ok` or `Err`, never a panic or an abort, and
//! a refused file leaves the parameters untouched.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ndarray::{Array1, Array2};
use recur_io::import_safetensors;

/// One scratch file per fuzzing process, rewritten for every input.
fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!(
            "recur-fuzz-import-{}.safetensors",
            std::process::id()
        ))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    std::fs::write(path, data).expect("the scratch file is writable");

    let mut matrix = Array2::<f32>::from_elem((2, 3), 7.0);
    if import_safetensors(&mut matrix, path).is_err() {
        assert!(
            matrix.iter().all(|&v| v == 7.0),
            "a refused import changed the weights"
        );
    } else {
        assert!(
            matrix.iter().all(|v| v.is_finite()),
            "a non-finite weight was imported"
        );
    }
    let mut vector = Array1::<f64>::zeros(4);
    let _ = import_safetensors(&mut vector, path);
});
