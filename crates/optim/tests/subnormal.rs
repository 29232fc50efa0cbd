//! Decaying buffers never linger in the subnormal range, where every x86 operation takes a
//! slow microcode path (a character-level Elman run with Adam fell from 26k to 12.7k
//! characters/s as rare characters' moments decayed): a moment whose gradient stays zero
//! goes from normal numbers straight to zero.

mod common;

use common::{grads1, params0, Pair};
use ndarray::{Array1, Array2};
use recur_optim::{Adam, Momentum, Optimizer, RmsProp};

/// One step with `grads1`, then zero gradients; after each step every buffer entry must be
/// zero or a normal number.
fn decays_without_subnormals(name: &str, mut optimizer: Box<dyn Optimizer<f64>>) {
    let mut params = params0();
    let zero: Pair = (Array2::zeros((2, 2)), Array1::zeros(2));
    optimizer.step(&mut params, &grads1()).unwrap();
    let mut reached_zero = false;
    for step in 0..4000 {
        optimizer.step(&mut params, &zero).unwrap();
        let state = optimizer.state();
        let values: Vec<f64> = state
            .slots
            .iter()
            .flat_map(|s| s.buffers.iter().flat_map(|b| b.iter().copied()))
            .collect();
        let subnormal = values.iter().find(|v| v.is_subnormal());
        assert!(
            subnormal.is_none(),
            "{name}: a subnormal buffer entry {subnormal:?} after {step} zero-gradient steps"
        );
        reached_zero |= values.iter().all(|&v| v == 0.0);
    }
    // The buffers did decay through the range (the test would be empty otherwise).
    assert!(reached_zero, "{name}: the buffers never decayed to zero");
}

#[test]
fn momentum_rmsprop_and_adam_flush_decaying_buffers_to_zero() {
    // Fast decay rates, so f64 buffers reach the subnormal range within the test.
    decays_without_subnormals("momentum", Box::new(Momentum::new(0.1, 0.5).unwrap()));
    decays_without_subnormals("rmsprop", Box::new(RmsProp::new(0.1, 0.5, 1e-8).unwrap()));
    decays_without_subnormals("adam", Box::new(Adam::new(0.1, 0.5, 0.5, 1e-8).unwrap()));
}
