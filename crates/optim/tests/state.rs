//! Checkpointing: optimizer state survives serde and resumes bit-identically; states of
//! another kind, float type or layout are refused.

mod common;

use common::{bits, grads1, grads2, params0, Pair};
use ndarray::{array, Array1, Array2};
use recur_core::{Error, Float, ParamSet};
use recur_optim::{Optimizer, OptimizerConfig, OptimizerState, Sgd};

const KINDS: [&str; 6] = [
    "sgd:0.05",
    "momentum:0.05:0.9",
    "nesterov:0.05:0.8",
    "adagrad:0.1",
    "rmsprop:0.01",
    "adam:0.01",
];

/// A different gradient for every step, so the buffers matter.
fn grads_at(step: usize) -> Pair {
    let k = step as f64;
    let (w, b) = if step.is_multiple_of(2) {
        grads1()
    } else {
        grads2()
    };
    (
        w.mapv(|v| v * (1.0 + 0.1 * k) - 0.05 * k),
        b.mapv(|v| v - 0.2 * k),
    )
}

fn cast<F: Float>(pair: &Pair) -> (Array2<F>, Array1<F>) {
    (
        pair.0.mapv(F::from_f64_lossy),
        pair.1.mapv(F::from_f64_lossy),
    )
}

fn resume_is_bit_identical<F: Float>(spec: &str) {
    let config: OptimizerConfig = spec.parse().unwrap();
    let mut straight = config.build::<F>().unwrap();
    let mut interrupted = config.build::<F>().unwrap();
    let mut p_straight = cast::<F>(&params0());
    let mut p_interrupted = p_straight.clone();
    for step in 0..3 {
        let g = cast::<F>(&grads_at(step));
        straight.step(&mut p_straight, &g).unwrap();
        interrupted.step(&mut p_interrupted, &g).unwrap();
    }

    let json = serde_json::to_string(&interrupted.state()).unwrap();
    drop(interrupted);
    let state: OptimizerState<F> = serde_json::from_str(&json).unwrap();
    state.check_layout(&p_interrupted).unwrap();
    // Two ways back: a fresh optimizer of the same kind loading the state, and one built
    // from the state alone.
    // (The fresh one has the kind's default hyper-parameters; loading restores the run's.)
    let kind = spec.split(':').next().unwrap();
    let mut loaded = kind
        .parse::<OptimizerConfig>()
        .unwrap()
        .build::<F>()
        .unwrap();
    loaded.load_state(state.clone()).unwrap();
    let mut rebuilt = state.into_optimizer().unwrap();
    let mut p_rebuilt = p_interrupted.clone();
    assert_eq!(loaded.learning_rate(), straight.learning_rate(), "{spec}");
    assert_eq!(rebuilt.steps_taken(), 3, "{spec}");

    for step in 3..8 {
        let g = cast::<F>(&grads_at(step));
        straight.step(&mut p_straight, &g).unwrap();
        loaded.step(&mut p_interrupted, &g).unwrap();
        rebuilt.step(&mut p_rebuilt, &g).unwrap();
    }
    assert_eq!(
        bits(&p_straight),
        bits(&p_interrupted),
        "{spec} ({})",
        F::NAME
    );
    assert_eq!(bits(&p_straight), bits(&p_rebuilt), "{spec} ({})", F::NAME);
    assert_eq!(straight.state(), loaded.state(), "{spec}");
}

#[test]
fn every_optimizer_resumes_bit_identically_through_json() {
    for spec in KINDS {
        resume_is_bit_identical::<f64>(spec);
        resume_is_bit_identical::<f32>(spec);
    }
}

#[test]
fn state_names_its_kind_hyper_parameters_and_buffers() {
    let mut adam = "adam:0.01"
        .parse::<OptimizerConfig>()
        .unwrap()
        .build::<f64>()
        .unwrap();
    let empty = adam.state();
    assert!(empty.slots.is_empty(), "buffers are allocated lazily");
    adam.step(&mut params0(), &grads1()).unwrap();
    let state = adam.state();
    assert_eq!(state.kind, "adam");
    assert_eq!(state.float, "f64");
    assert_eq!(
        state.hyper.keys().map(String::as_str).collect::<Vec<_>>(),
        ["beta1", "beta2", "eps", "lr"]
    );
    assert_eq!(state.steps, 1);
    assert_eq!(state.slots.len(), 2);
    assert_eq!(state.slots[0].buffers.len(), 2);
    assert_eq!(state.slots[0].buffers[1].shape(), &[2, 2]);
}

#[test]
fn states_of_another_kind_float_or_with_bad_values_are_refused() {
    let mut momentum = "momentum"
        .parse::<OptimizerConfig>()
        .unwrap()
        .build::<f64>()
        .unwrap();
    momentum.step(&mut params0(), &grads1()).unwrap();
    let good = momentum.state();
    let before = momentum.state();

    let refused = |state: OptimizerState<f64>| {
        let mut target = "momentum"
            .parse::<OptimizerConfig>()
            .unwrap()
            .build::<f64>()
            .unwrap();
        target.step(&mut params0(), &grads2()).unwrap();
        let snapshot = target.state();
        let err = target.load_state(state).unwrap_err();
        assert_eq!(
            target.state(),
            snapshot,
            "a refused state must change nothing"
        );
        err
    };

    // Another kind, even of the same struct.
    let mut other = good.clone();
    other.kind = "nesterov".into();
    assert!(matches!(refused(other), Error::InvalidConfig { .. }));
    let adam = "adam"
        .parse::<OptimizerConfig>()
        .unwrap()
        .build::<f64>()
        .unwrap();
    assert!(matches!(refused(adam.state()), Error::InvalidConfig { .. }));
    // Another float type.
    let mut other = good.clone();
    other.float = "f32".into();
    assert!(matches!(refused(other), Error::InvalidConfig { .. }));
    // Missing, unknown and out-of-range hyper-parameters.
    let mut other = good.clone();
    other.hyper.remove("momentum");
    assert!(matches!(refused(other), Error::InvalidConfig { .. }));
    let mut other = good.clone();
    other.hyper.insert("beta".into(), 0.5);
    assert!(matches!(refused(other), Error::InvalidConfig { .. }));
    let mut other = good.clone();
    other.hyper.insert("lr".into(), -1.0);
    assert!(matches!(refused(other), Error::InvalidConfig { .. }));
    // Buffers that do not fit the kind.
    let mut other = good.clone();
    let extra = other.slots[1].buffers[0].clone();
    other.slots[1].buffers.push(extra);
    assert!(matches!(
        refused(other),
        Error::LayoutMismatch { slot: 1, .. }
    ));
    // SGD keeps no buffers.
    let mut sgd_state = Sgd::new(0.1_f64).unwrap().state();
    sgd_state.slots = good.slots.clone();
    assert!(Sgd::new(0.1_f64)
        .unwrap()
        .load_state(sgd_state.clone())
        .is_err());
    assert!(sgd_state.into_optimizer().is_err());
    // Unknown kind.
    let mut other = good.clone();
    other.kind = "lbfgs".into();
    assert!(other.into_optimizer().is_err());

    assert_eq!(momentum.state(), before);
}

#[test]
fn a_state_for_another_layout_is_refused_at_the_next_step() {
    let mut adam = "adam"
        .parse::<OptimizerConfig>()
        .unwrap()
        .build::<f64>()
        .unwrap();
    adam.step(&mut params0(), &grads1()).unwrap();
    let state = adam.state();

    let mut other_params = (Array2::<f64>::ones((3, 2)), Array1::<f64>::ones(2));
    let other_grads = other_params.clone();
    assert!(matches!(
        state.check_layout(&other_params),
        Err(Error::LayoutMismatch { slot: 0, .. })
    ));
    let mut resumed = state.into_optimizer().unwrap();
    let before = bits(&other_params);
    let err = resumed.step(&mut other_params, &other_grads).unwrap_err();
    assert!(
        matches!(err, Error::LayoutMismatch { slot: 0, .. }),
        "{err}"
    );
    assert_eq!(bits(&other_params), before);
    assert_eq!(resumed.steps_taken(), 1);

    // After a reset the optimizer adopts the new layout.
    resumed.reset();
    resumed.step(&mut other_params, &other_grads).unwrap();
    assert_eq!(resumed.steps_taken(), 1);
}

#[test]
fn layout_mismatches_and_bad_gradients_leave_everything_unchanged() {
    for spec in KINDS {
        let mut opt = spec
            .parse::<OptimizerConfig>()
            .unwrap()
            .build::<f64>()
            .unwrap();
        let mut params = params0();
        opt.step(&mut params, &grads1()).unwrap();
        let (p_before, s_before) = (bits(&params), opt.state());
        let unchanged = |opt: &dyn Optimizer<f64>, params: &Pair| {
            assert_eq!(bits(params), p_before, "{spec}");
            assert_eq!(opt.state(), s_before, "{spec}");
        };

        // Wrong slot count.
        let err = opt
            .step(&mut params, &array![[1.0, 2.0], [3.0, 4.0]])
            .unwrap_err();
        assert!(matches!(err, Error::LayoutMismatch { .. }), "{spec}: {err}");
        unchanged(&*opt, &params);
        // Wrong shape.
        let wrong = (Array2::<f64>::ones((2, 2)), Array1::<f64>::ones(3));
        let err = opt.step(&mut params, &wrong).unwrap_err();
        assert!(
            matches!(err, Error::LayoutMismatch { slot: 1, .. }),
            "{spec}: {err}"
        );
        unchanged(&*opt, &params);
        // Parameters and gradients agree, but not with the optimizer's buffers.
        if !spec.starts_with("sgd") {
            let mut other = (Array2::<f64>::ones((2, 3)), Array1::<f64>::ones(2));
            let other_g = other.clone();
            let err = opt.step(&mut other, &other_g).unwrap_err();
            assert!(
                matches!(err, Error::LayoutMismatch { slot: 0, .. }),
                "{spec}: {err}"
            );
            assert_eq!(other, (Array2::ones((2, 3)), Array1::ones(2)));
            unchanged(&*opt, &params);
        }
        // A non-finite gradient in the last slot: nothing before it may have been updated.
        for bad in [f64::NAN, f64::INFINITY] {
            let mut g = grads2();
            g.1[1] = bad;
            let err = opt.step(&mut params, &g).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::NonFinite {
                        what: "gradient",
                        update: 2
                    }
                ),
                "{spec}: {err}"
            );
            unchanged(&*opt, &params);
        }
        // Still usable afterwards.
        opt.step(&mut params, &grads2()).unwrap();
        assert_eq!(opt.steps_taken(), 2);
    }
}

#[test]
fn learning_rate_is_validated() {
    for spec in KINDS {
        let mut opt = spec
            .parse::<OptimizerConfig>()
            .unwrap()
            .build::<f32>()
            .unwrap();
        let lr = opt.learning_rate();
        for bad in [0.0, -0.1, f32::NAN, f32::INFINITY] {
            assert!(matches!(
                opt.set_learning_rate(bad),
                Err(Error::InvalidConfig { .. })
            ));
            assert_eq!(opt.learning_rate().to_bits(), lr.to_bits());
        }
        opt.set_learning_rate(0.25).unwrap();
        assert_eq!(opt.learning_rate().to_bits(), 0.25_f32.to_bits());
    }
}

#[test]
fn empty_parameter_sets_are_fine() {
    // A zero-slot set: nothing to do, but the step is counted.
    struct Empty;
    impl ParamSet<f64> for Empty {
        fn slot_count(&self) -> usize {
            0
        }
        fn slot(&self, index: usize) -> recur_core::Slot<'_, f64> {
            panic!("no slot {index}")
        }
        fn slot_mut(&mut self, index: usize) -> recur_core::SlotMut<'_, f64> {
            panic!("no slot {index}")
        }
    }
    for spec in KINDS {
        let mut opt = spec
            .parse::<OptimizerConfig>()
            .unwrap()
            .build::<f64>()
            .unwrap();
        opt.step(&mut Empty, &Empty).unwrap();
        assert_eq!(opt.steps_taken(), 1);
    }
}
