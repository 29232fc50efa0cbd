//! Learning-rate schedules.

use ndarray::array;
use recur_core::Error;
use recur_optim::{Optimizer, OptimizerConfig, Schedule, Sgd};

#[test]
fn halve_on_plateau_halves_exactly_when_the_loss_rises() {
    let mut schedule = Schedule::halve_on_plateau();
    let mut sgd = Sgd::new(0.005_f64).unwrap();
    // (loss, whether it rose compared with the previous evaluation)
    let losses = [
        (9.0, false), // first evaluation: nothing to compare with
        (8.0, false),
        (8.5, true),
        (8.5, false), // equal is not a rise
        (7.0, false),
        (7.5, true),
        (7.6, true),
        (1.0, false),
    ];
    let mut expected = 0.005_f64;
    for (loss, rose) in losses {
        let changed = schedule.on_evaluation(loss, &mut sgd).unwrap();
        if rose {
            expected *= 0.5;
            assert_eq!(
                changed.map(f64::to_bits),
                Some(expected.to_bits()),
                "loss {loss}"
            );
        } else {
            assert_eq!(changed, None, "loss {loss}");
        }
        assert_eq!(sgd.learning_rate().to_bits(), expected.to_bits());
    }
    assert_eq!(expected.to_bits(), (0.005_f64 / 8.0).to_bits());
}

#[test]
fn plateau_factor_is_configurable_and_state_survives_serde() {
    let mut schedule = Schedule::on_plateau(0.1).unwrap();
    let mut opt = "adam:1"
        .parse::<OptimizerConfig>()
        .unwrap()
        .build::<f32>()
        .unwrap();
    schedule.on_evaluation(2.0, opt.as_mut()).unwrap();
    // The previous loss travels with the schedule through a checkpoint.
    let json = serde_json::to_string(&schedule).unwrap();
    let mut resumed: Schedule = serde_json::from_str(&json).unwrap();
    assert_eq!(resumed, schedule);
    assert_eq!(
        resumed.on_evaluation(3.0, opt.as_mut()).unwrap(),
        Some(0.1_f32)
    );
    assert_eq!(opt.learning_rate().to_bits(), 0.1_f32.to_bits());
    // Defaults when deserialising a hand-written config.
    let from_config: Schedule = serde_json::from_str(r#"{"kind":"halve_on_plateau"}"#).unwrap();
    assert_eq!(from_config, Schedule::halve_on_plateau());
    assert!(
        serde_json::from_str::<Schedule>(r#"{"kind":"halve_on_plateau","facter":0.5}"#).is_err()
    );
}

#[test]
fn non_finite_losses_are_reported_and_change_nothing() {
    let mut schedule = Schedule::halve_on_plateau();
    let mut sgd = Sgd::new(0.5_f64).unwrap();
    schedule.on_evaluation(1.0, &mut sgd).unwrap();
    let before = schedule.clone();
    for bad in [f64::NAN, f64::INFINITY] {
        let err = schedule.on_evaluation(bad, &mut sgd).unwrap_err();
        assert!(matches!(err, Error::NonFinite { what: "loss", .. }));
    }
    assert_eq!(schedule, before);
    assert_eq!(sgd.learning_rate().to_bits(), 0.5_f64.to_bits());
}

#[test]
fn step_and_exponential_decay_follow_the_step_count() {
    let (mut x, g) = (array![0.0_f64], array![1.0_f64]);

    let mut step_decay = Schedule::step_decay(3, 0.5).unwrap();
    let mut sgd = Sgd::new(0.8_f64).unwrap();
    for step in 1..=10_u64 {
        sgd.step(&mut x, &g).unwrap();
        step_decay.on_step(&mut sgd).unwrap();
        let expected = 0.8 * 0.5_f64.powi((step / 3) as i32);
        assert!(
            (sgd.learning_rate() - expected).abs() < 1e-15,
            "step {step}"
        );
        // Evaluation does not touch a step schedule.
        assert_eq!(
            step_decay
                .on_evaluation(100.0 + step as f64, &mut sgd)
                .unwrap(),
            None
        );
    }

    let mut exponential = Schedule::exponential_decay(0.9).unwrap();
    let mut sgd = Sgd::new(1.0_f64).unwrap();
    for step in 1..=5 {
        sgd.step(&mut x, &g).unwrap();
        exponential.on_step(&mut sgd).unwrap();
        assert!((sgd.learning_rate() - 0.9_f64.powi(step)).abs() < 1e-15);
    }

    // Underflow holds the rate at the smallest positive normal instead of failing.
    let mut fast = Schedule::exponential_decay(1e-300).unwrap();
    let mut sgd = Sgd::new(1.0_f64).unwrap();
    for _ in 0..3 {
        sgd.step(&mut x, &g).unwrap();
        fast.on_step(&mut sgd).unwrap();
    }
    assert_eq!(sgd.learning_rate().to_bits(), f64::MIN_POSITIVE.to_bits());

    // Constant and plateau schedules ignore steps.
    let mut sgd = Sgd::new(0.3_f64).unwrap();
    sgd.step(&mut x, &g).unwrap();
    assert_eq!(Schedule::Constant.on_step(&mut sgd).unwrap(), None);
    assert_eq!(
        Schedule::halve_on_plateau().on_step(&mut sgd).unwrap(),
        None
    );
    assert_eq!(sgd.learning_rate().to_bits(), 0.3_f64.to_bits());
}

#[test]
fn invalid_settings_are_refused() {
    assert!(Schedule::step_decay(0, 0.5).is_err());
    assert!(Schedule::step_decay(2, 0.0).is_err());
    assert!(Schedule::step_decay(2, 1.5).is_err());
    assert!(Schedule::step_decay(2, 1.0).is_ok());
    assert!(Schedule::exponential_decay(f64::NAN).is_err());
    assert!(Schedule::on_plateau(1.0).is_err());
    assert!(Schedule::on_plateau(0.0).is_err());
    // A deserialised schedule is validated when used.
    let mut bad: Schedule =
        serde_json::from_str(r#"{"kind":"step_decay","every":0,"factor":0.5}"#).unwrap();
    let mut sgd = Sgd::new(0.1_f64).unwrap();
    assert!(matches!(
        bad.on_step(&mut sgd),
        Err(Error::InvalidConfig { .. })
    ));
}

#[test]
fn schedules_parse_from_command_lines() {
    assert_eq!("constant".parse::<Schedule>().unwrap(), Schedule::Constant);
    assert_eq!(
        "plateau".parse::<Schedule>().unwrap(),
        Schedule::halve_on_plateau()
    );
    assert_eq!(
        "Plateau:0.25".parse::<Schedule>().unwrap(),
        Schedule::on_plateau(0.25).unwrap()
    );
    assert_eq!(
        "step:100:0.5".parse::<Schedule>().unwrap(),
        Schedule::step_decay(100, 0.5).unwrap()
    );
    assert_eq!(
        "exp:0.99".parse::<Schedule>().unwrap(),
        Schedule::exponential_decay(0.99).unwrap()
    );
    for bad in [
        "",
        "step:0:0.5",
        "step:10",
        "exp",
        "plateau:2",
        "cosine",
        "constant:1",
    ] {
        assert!(bad.parse::<Schedule>().is_err(), "{bad:?}");
    }
    for s in ["constant", "plateau:0.5", "step:7:0.25", "exp:0.5"] {
        assert_eq!(s.parse::<Schedule>().unwrap().to_string(), s);
    }
}
