//! A cell and an activation defined outside the library crates train through the public API.

#[path = "../../examples/custom_cell.rs"]
#[allow(dead_code)]
mod example;

use example::{run, LeakyElman, Swish};
use rand::{rngs::StdRng, SeedableRng};
use recur::gradient_check;
use recur::prelude::*;

#[test]
fn a_leaky_swish_cell_passes_the_gradient_check_and_learns() {
    let outcome = run(1, 300).unwrap();
    assert!(outcome.gradient_error < 1e-6, "{outcome:?}");
    assert!(
        outcome.loss_after < 0.3 * outcome.loss_before,
        "{outcome:?}"
    );
    assert!(outcome.accuracy > 0.95, "{outcome:?}");
}

#[test]
fn the_custom_cell_rejects_bad_settings_without_panicking() {
    let mut rng = StdRng::seed_from_u64(0);
    assert!(LeakyElman::<f64, _>::new(1, 4, 0.0, Swish, &mut rng).is_err());
    assert!(LeakyElman::<f64, _>::new(0, 4, 0.5, Swish, &mut rng).is_err());
    let cell = LeakyElman::<f64, _>::new(2, 4, 0.5, Swish, &mut rng).unwrap();
    let prev = cell.zero_state(1);
    let mut next = cell.zero_state(1);
    let mut cache = cell.new_cache(1);
    let wrong = ndarray::Array2::zeros((1, 3));
    assert!(cell
        .forward(
            Input::Dense(wrong.view()),
            prev.view(),
            next.view_mut(),
            &mut cache
        )
        .is_err());
    assert_eq!(cell.params().slot_count(), 3);
}

#[test]
fn the_library_elman_cell_takes_a_user_activation_that_needs_its_input() {
    let mut rng = StdRng::seed_from_u64(5);
    let cell = ElmanConfig::new(5, 4)
        .with_bias(true)
        .init::<f64, _>(Swish, &mut rng)
        .unwrap();
    let readout = LinearConfig::new(4, 5)
        .with_bias(true)
        .init(&mut rng)
        .unwrap();
    let mut model = Model::new(cell, readout).unwrap();
    let (x, y) = ([0usize, 3, 1, 4, 2, 2], [3usize, 1, 4, 2, 2, 0]);
    let batch = SeqBatch::sentence(&x, &y).unwrap();
    let report = gradient_check(
        &mut model,
        &SoftmaxCrossEntropy,
        batch,
        Reduction::Sum,
        1e-5,
        1,
    )
    .unwrap();
    assert!(report.max_relative_error() < 1e-6, "{report:#?}");
}
