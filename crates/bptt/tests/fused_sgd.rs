//! The trainer's fused SGD step (readout weights updated inside the product that forms
//! their gradient, norm from Gram matrices) against the plain path written out by hand:
//! accumulate, norm, clip, `Sgd::step`.

use ndarray::Array2;
use recur_bptt::{Bptt, Trainer, Truncation};
use recur_core::{params, Error};
use recur_loss::{Reduction, SoftmaxCrossEntropy};
use recur_optim::{Clip, Optimizer, Sgd};

mod common;

/// Runs three updates through the trainer and through the written-out reference, and
/// compares parameters and reported norms.
fn check(truncation: Truncation, clip: Clip, bias: bool, len: usize, batch: usize) {
    // A readout wide enough (200 outputs) for the fused step to pay at 14 rows, so the
    // trainer takes it (see the trainer's unit test `fusion_pays_only_for_wide_readouts`).
    let (vocab, hidden, lr) = (200, 8, 0.4);
    let mut trained = common::token_model::<f64>(vocab, hidden, bias, 5);
    let mut reference = trained.clone();
    let mut trainer = Trainer::new(
        &trained,
        truncation,
        Reduction::Mean,
        Box::new(Sgd::new(lr).unwrap()),
    )
    .with_clip(clip);
    let mut engine = Bptt::new(truncation, Reduction::Mean);
    let mut sgd = Sgd::new(lr).unwrap();
    for update in 0..3 {
        let (x, y) = common::token_text(len, batch, vocab, update);
        let seq = common::token_batch(&x, &y);
        let report = trainer
            .train_batch(&mut trained, &SoftmaxCrossEntropy, seq, None)
            .unwrap();
        let mut grads = reference.zero_grads();
        engine
            .accumulate(&reference, &SoftmaxCrossEntropy, seq, None, &mut grads)
            .unwrap();
        let norm = params::global_norm(&grads);
        clip.apply(&mut grads).unwrap();
        sgd.step(&mut reference, &grads).unwrap();
        let what = format!("{truncation} {clip} bias {bias} T {len} B {batch}");
        assert!(
            (report.grad_norm - norm).abs() <= 1e-12 * norm,
            "{what}: norm {} vs {norm}",
            report.grad_norm
        );
        let diff = params::max_abs_diff(&trained, &reference).unwrap();
        assert!(diff < 1e-13, "{what}: parameters differ by {diff}");
    }
}

#[test]
fn fused_step_equals_stored_gradient_step() {
    for truncation in [
        Truncation::full(),
        Truncation::per_output(2).unwrap(),
        Truncation::last(3).unwrap(),
    ] {
        for bias in [false, true] {
            check(truncation, Clip::None, bias, 7, 2);
            // A bound the norm exceeds (clipped) and one it does not.
            check(truncation, Clip::GlobalNorm(0.05), bias, 7, 2);
            check(truncation, Clip::GlobalNorm(1e6), bias, 7, 2);
        }
    }
}

#[test]
fn long_batches_and_value_clipping_take_the_stored_path_with_the_same_result() {
    check(Truncation::full(), Clip::None, true, 40, 3);
    check(Truncation::full(), Clip::Value(0.01), true, 7, 2);
}

#[test]
fn non_finite_loss_leaves_the_parameters_untouched() {
    let mut m = common::token_model::<f64>(5, 3, true, 1);
    m.readout_mut().weights_mut().w_hy[[0, 0]] = f64::NAN;
    let before = m.clone();
    let mut trainer = Trainer::new(
        &m,
        Truncation::full(),
        Reduction::Sum,
        Box::new(Sgd::new(0.1).unwrap()),
    );
    let x = Array2::from_elem((4, 1), 1_usize);
    let seq = common::token_batch(&x, &x);
    let err = trainer
        .train_batch(&mut m, &SoftmaxCrossEntropy, seq, None)
        .unwrap_err();
    assert!(matches!(err, Error::NonFinite { update: 1, .. }), "{err}");
    let same = params::flatten(&m)
        .iter()
        .zip(params::flatten(&before))
        .all(|(a, b)| a.to_bits() == b.to_bits());
    assert!(same);
    assert_eq!(trainer.updates(), 0);
}
