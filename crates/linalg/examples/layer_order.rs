//! The forward products of a two-layer LSTM (hidden 256, batch 32, 100 steps, f32) in the
//! order recur's `Stack` runs them and in the order cuDNN and PyTorch do, on one thread.
//!
//! Step-major (recur): at every step the first layer's `h·W_hh`, then the second layer's
//! `x·W_ih` and `h·W_hh`, so three packed 256 × 1024 weights (3 MB) pass through L2 at
//! every step. Layer-major: the first layer over all steps, one `x·W_ih` for all 3,200 rows
//! of the second layer's input, then the second layer's `h·W_hh` over all steps, so each
//! step reads one weight that stays in L2. Same products, same flops; the difference is what
//! reordering `Stack`'s sweep would gain.
//!
//! `cargo run --release -p recur-linalg --example layer_order`

use std::time::Instant;

use ndarray::{s, Array2};
use recur_linalg::{gemm_packed, set_threads, LinalgError, PackedB};

const BATCH: usize = 32;
const HIDDEN: usize = 256;
const GATES: usize = 4 * HIDDEN;
const STEPS: usize = 100;
const RUNS: usize = 7;

fn main() -> Result<(), LinalgError> {
    set_threads(1)?;
    let fill = |seed: usize| {
        move |(i, j): (usize, usize)| (((i * 7 + j * 3 + seed) % 13) as f32 - 6.0) * 0.01
    };
    let weights: Vec<PackedB<f32>> = (0..3)
        .map(|seed| PackedB::new(Array2::from_shape_fn((HIDDEN, GATES), fill(seed)).view()))
        .collect();
    let (w_hh1, w_ih2, w_hh2) = (&weights[0], &weights[1], &weights[2]);
    // The steps' hidden states, one block of BATCH rows per step.
    let states = Array2::<f32>::from_shape_fn((STEPS * BATCH, HIDDEN), fill(7));
    let step = |t: usize| states.slice(s![t * BATCH..(t + 1) * BATCH, ..]);
    let mut gates_1 = vec![Array2::<f32>::zeros((BATCH, GATES)); STEPS];
    let mut gates_2 = vec![Array2::<f32>::zeros((BATCH, GATES)); STEPS];
    let mut input_2 = Array2::<f32>::zeros((STEPS * BATCH, GATES));
    let (mut step_major, mut layer_major) = (f64::MAX, f64::MAX);
    for _ in 0..RUNS {
        let started = Instant::now();
        for (t, (g1, g2)) in gates_1.iter_mut().zip(&mut gates_2).enumerate() {
            gemm_packed(1.0, step(t), w_hh1, 0.0, g1.view_mut())?;
            gemm_packed(1.0, step(t), w_ih2, 0.0, g2.view_mut())?;
            gemm_packed(1.0, step(t), w_hh2, 1.0, g2.view_mut())?;
        }
        step_major = step_major.min(started.elapsed().as_secs_f64());
        let started = Instant::now();
        for (t, gates) in gates_1.iter_mut().enumerate() {
            gemm_packed(1.0, step(t), w_hh1, 0.0, gates.view_mut())?;
        }
        gemm_packed(1.0, states.view(), w_ih2, 0.0, input_2.view_mut())?;
        for (t, gates) in gates_2.iter_mut().enumerate() {
            gemm_packed(1.0, step(t), w_hh2, 0.0, gates.view_mut())?;
        }
        layer_major = layer_major.min(started.elapsed().as_secs_f64());
    }
    let flops = (3 * 2 * STEPS * BATCH * HIDDEN * GATES) as f64;
    for (order, seconds) in [("step-major", step_major), ("layer-major", layer_major)] {
        println!(
            "{order:>11}: {:6.2} ms, {:5.1} GFLOP/s (best of {RUNS})",
            seconds * 1e3,
            flops / seconds / 1e9
        );
    }
    println!(
        "layer-major saves {:.1} %",
        100.0 * (1.0 - layer_major / step_major)
    );
    Ok(())
}
