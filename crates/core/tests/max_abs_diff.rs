//! `max_abs_diff` cannot report two sets as close when one of them holds a NaN.

use ndarray::array;
use recur_core::params::max_abs_diff;

#[test]
fn a_nan_anywhere_makes_the_difference_nan() {
    let a = (array![1.0_f64, 2.0, 3.0], array![4.0_f64]);
    for position in 0..4 {
        let mut b = a.clone();
        match position {
            3 => b.1[0] = f64::NAN,
            i => b.0[i] = f64::NAN,
        }
        let d = max_abs_diff(&a, &b).unwrap();
        assert!(d.is_nan(), "NaN at {position}: difference {d}");
        assert!(max_abs_diff(&b, &a).unwrap().is_nan());
    }
    let mut c = a.clone();
    c.0[1] = 2.5;
    assert!((max_abs_diff(&a, &c).unwrap() - 0.5).abs() < 1e-15);
}
