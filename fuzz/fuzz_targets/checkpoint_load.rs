//! The checkpoint loader on arbitrary file content: `Ok` or `Err`, never a panic or an
//! abort, and what loads can be restored (or refused) without panicking either.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ndarray::{Array1, Array2};
use recur_io::Checkpoint;

/// One scratch file per fuzzing process, rewritten for every input.
fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!(
            "recur-fuzz-checkpoint-{}.safetensors",
            std::process::id()
        ))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    std::fs::write(path, data).expect("the scratch file is writable");

    if let Ok(checkpoint) = Checkpoint::<f32>::load(path) {
        for (_, value) in &checkpoint.tensors {
            assert!(
                value.iter().all(|v| v.is_finite()),
                "a non-finite weight loaded"
            );
        }
        let mut matrix = Array2::<f32>::zeros((2, 3));
        let _ = checkpoint.restore(&mut matrix);
        let mut vector = Array1::<f32>::zeros(4);
        let _ = checkpoint.restore(&mut vector);
        if let Some(state) = checkpoint.optimizer.clone() {
            let _ = state.into_optimizer();
        }
    }
    if let Ok(checkpoint) = Checkpoint::<f64>::load(path) {
        let mut matrix = Array2::<f64>::zeros((2, 3));
        let _ = checkpoint.restore(&mut matrix);
    }
});
