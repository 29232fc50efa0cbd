//! Gradient clipping by value and by global norm.

use ndarray::{Array1, Array2};
use proptest::prelude::*;
use recur_core::params::{flatten, global_norm};
use recur_core::Error;
use recur_optim::{clip_by_global_norm, clip_by_value, Clip};

fn pair(values: &[f64]) -> (Array2<f64>, Array1<f64>) {
    let w = Array2::from_shape_vec((2, 3), values[..6].to_vec()).unwrap();
    (w, Array1::from_vec(values[6..].to_vec()))
}

proptest! {
    #[test]
    fn by_value_bounds_every_entry_and_keeps_the_small_ones(
        values in prop::collection::vec(-100.0..100.0_f64, 8),
        limit in 0.01..50.0_f64,
    ) {
        let mut grads = pair(&values);
        clip_by_value(&mut grads, limit).unwrap();
        for (&clipped, &original) in flatten(&grads).iter().zip(&values) {
            prop_assert!(clipped.abs() <= limit);
            if original.abs() <= limit {
                prop_assert_eq!(clipped.to_bits(), original.to_bits());
            } else {
                prop_assert_eq!(clipped.to_bits(), (limit * original.signum()).to_bits());
            }
        }
    }

    #[test]
    fn by_norm_gives_the_requested_norm_in_the_same_direction(
        values in prop::collection::vec(-100.0..100.0_f64, 8),
        max_norm in 0.01..200.0_f64,
    ) {
        let mut grads = pair(&values);
        let norm = values.iter().map(|v| v * v).sum::<f64>().sqrt();
        let before = clip_by_global_norm(&mut grads, max_norm).unwrap();
        prop_assert!((before - norm).abs() <= 1e-12 * norm.max(1.0));
        let after = global_norm(&grads);
        if norm > max_norm {
            prop_assert!((after - max_norm).abs() <= 1e-12 * max_norm);
            // Same direction: every entry scaled by one positive factor.
            let factor = max_norm / norm;
            for (&clipped, &original) in flatten(&grads).iter().zip(&values) {
                prop_assert!((clipped - original * factor).abs() <= 1e-12 * original.abs().max(1e-300));
            }
        } else {
            prop_assert_eq!(flatten(&grads), values);
        }
    }
}

#[test]
fn invalid_limits_are_refused_and_change_nothing() {
    let values = [1.0, -2.0, 3.0, 4.0, 5.0, -6.0, 7.0, 8.0];
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let mut grads = pair(&values);
        assert!(matches!(
            clip_by_value(&mut grads, bad),
            Err(Error::InvalidConfig { .. })
        ));
        assert!(matches!(
            clip_by_global_norm(&mut grads, bad),
            Err(Error::InvalidConfig { .. })
        ));
        assert!(Clip::Value(bad).apply(&mut grads).is_err());
        assert!(Clip::GlobalNorm(bad).apply(&mut grads).is_err());
        assert_eq!(flatten(&grads), values);
    }
}

#[test]
fn non_finite_norm_leaves_gradients_alone() {
    let mut grads = pair(&[1.0, f64::NAN, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
    let norm = clip_by_global_norm(&mut grads, 1.0).unwrap();
    assert!(norm.is_nan());
    assert_eq!(grads.0[[1, 0]].to_bits(), 4.0_f64.to_bits());
}

#[test]
fn clip_policy_parses_serialises_and_applies() {
    assert_eq!("none".parse::<Clip>().unwrap(), Clip::None);
    assert_eq!("value:5".parse::<Clip>().unwrap(), Clip::Value(5.0));
    assert_eq!(
        " Norm : 1.5 ".parse::<Clip>().unwrap(),
        Clip::GlobalNorm(1.5)
    );
    assert_eq!(
        "global_norm:2".parse::<Clip>().unwrap(),
        Clip::GlobalNorm(2.0)
    );
    for bad in ["value", "value:x", "norm:-1", "none:3", "max:1", ""] {
        assert!(bad.parse::<Clip>().is_err(), "{bad:?}");
    }
    for clip in [Clip::None, Clip::Value(5.0), Clip::GlobalNorm(0.25)] {
        let json = serde_json::to_string(&clip).unwrap();
        assert_eq!(serde_json::from_str::<Clip>(&json).unwrap(), clip);
        assert_eq!(clip.to_string().parse::<Clip>().unwrap(), clip);
    }
    assert_eq!(
        serde_json::to_string(&Clip::GlobalNorm(1.0)).unwrap(),
        r#"{"kind":"global_norm","limit":1.0}"#
    );

    let mut grads = pair(&[6.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -8.0]);
    assert_eq!(Clip::None.apply(&mut grads).unwrap(), None);
    assert_eq!(Clip::Value(7.0).apply(&mut grads).unwrap(), None);
    assert_eq!(grads.1[1].to_bits(), (-7.0_f64).to_bits());
    let norm = Clip::GlobalNorm(1.0).apply(&mut grads).unwrap().unwrap();
    assert!((norm - (36.0_f64 + 49.0).sqrt()).abs() < 1e-12);
    assert!((global_norm(&grads) - 1.0).abs() < 1e-12);

    // f32 gradients.
    let mut g32 = Array1::from_vec(vec![3.0_f32, 4.0]);
    let n = Clip::GlobalNorm(1.0).apply(&mut g32).unwrap().unwrap();
    assert!((n - 5.0).abs() < 1e-6 && (g32[0] - 0.6).abs() < 1e-6);
}

#[test]
fn by_value_keeps_a_nan_instead_of_turning_it_into_the_limit() {
    let mut grads = pair(&[
        f64::NAN,
        7.0,
        -7.0,
        0.5,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1.0,
        f64::NAN,
    ]);
    clip_by_value(&mut grads, 5.0).unwrap();
    let flat = flatten(&grads);
    assert!(flat[0].is_nan() && flat[7].is_nan(), "{flat:?}");
    assert_eq!(flat[1..7], [5.0, -5.0, 0.5, 5.0, -5.0, 1.0]);
}
