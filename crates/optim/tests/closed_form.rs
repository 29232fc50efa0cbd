//! One and two steps of every optimizer against values computed by hand, and against a
//! naive scalar reference over every entry.

mod common;

use common::{assert_close, grads1, grads2, params0, Pair};
use recur_core::params::flatten;
use recur_optim::{Adagrad, Adam, Momentum, Optimizer, RmsProp, Sgd};

const EPS: f64 = 1e-8;

/// Runs two steps (grads1 then grads2); returns the flattened parameters after each.
fn two_steps(opt: &mut dyn Optimizer<f64>) -> (Vec<f64>, Vec<f64>) {
    let mut p: Pair = params0();
    opt.step(&mut p, &grads1()).unwrap();
    let after1 = flatten(&p);
    opt.step(&mut p, &grads2()).unwrap();
    (after1, flatten(&p))
}

/// Applies a scalar update rule with `state` entries per parameter to every entry,
/// independently: the naive reference for the vectorised kernels.
fn reference(
    buffers: usize,
    rule: impl Fn(u32, &mut f64, f64, &mut [f64]),
) -> (Vec<f64>, Vec<f64>) {
    let mut p = flatten(&params0());
    let mut state = vec![vec![0.0; buffers]; p.len()];
    let mut after = Vec::new();
    for (t, g) in [(1, flatten(&grads1())), (2, flatten(&grads2()))] {
        for i in 0..p.len() {
            rule(t, &mut p[i], g[i], &mut state[i]);
        }
        after.push(p.clone());
    }
    let second = after.pop().unwrap();
    (after.pop().unwrap(), second)
}

// Entry 0 of the fixtures: θ = 1, g₁ = 0.5, g₂ = −0.25.

#[test]
fn sgd_matches_closed_form() {
    let (a1, a2) = two_steps(&mut Sgd::new(0.1).unwrap());
    // θ₁ = 1 − 0.1·0.5 = 0.95;  θ₂ = 0.95 − 0.1·(−0.25) = 0.975
    assert!((a1[0] - 0.95).abs() < 1e-12);
    assert!((a2[0] - 0.975).abs() < 1e-12);
    let (r1, r2) = reference(0, |_, p, g, _| *p -= 0.1 * g);
    assert_close(&a1, &r1, 1e-12);
    assert_close(&a2, &r2, 1e-12);
}

#[test]
fn momentum_matches_closed_form() {
    let (a1, a2) = two_steps(&mut Momentum::new(0.1, 0.9).unwrap());
    // v₁ = 0.5, θ₁ = 1 − 0.1·0.5 = 0.95
    // v₂ = 0.9·0.5 − 0.25 = 0.2, θ₂ = 0.95 − 0.1·0.2 = 0.93
    assert!((a1[0] - 0.95).abs() < 1e-12);
    assert!((a2[0] - 0.93).abs() < 1e-12);
    let (r1, r2) = reference(1, |_, p, g, s| {
        s[0] = 0.9 * s[0] + g;
        *p -= 0.1 * s[0];
    });
    assert_close(&a1, &r1, 1e-12);
    assert_close(&a2, &r2, 1e-12);
}

#[test]
fn nesterov_matches_closed_form() {
    let (a1, a2) = two_steps(&mut Momentum::nesterov(0.1, 0.9).unwrap());
    // v₁ = 0.5, θ₁ = 1 − 0.1·(0.5 + 0.9·0.5) = 0.905
    // v₂ = 0.2, θ₂ = 0.905 − 0.1·(−0.25 + 0.9·0.2) = 0.905 + 0.007 = 0.912
    assert!((a1[0] - 0.905).abs() < 1e-12);
    assert!((a2[0] - 0.912).abs() < 1e-12);
    let (r1, r2) = reference(1, |_, p, g, s| {
        s[0] = 0.9 * s[0] + g;
        *p -= 0.1 * (g + 0.9 * s[0]);
    });
    assert_close(&a1, &r1, 1e-12);
    assert_close(&a2, &r2, 1e-12);
}

#[test]
fn adagrad_matches_closed_form() {
    let (a1, a2) = two_steps(&mut Adagrad::new(0.1, EPS).unwrap());
    // h₁ = 0.25,          θ₁ = 1 − 0.1·0.5/(√0.25 + ε)
    // h₂ = 0.25 + 0.0625, θ₂ = θ₁ + 0.1·0.25/(√0.3125 + ε)
    let t1 = 1.0 - 0.1 * 0.5 / (0.5 + EPS);
    let t2 = t1 + 0.1 * 0.25 / (0.3125_f64.sqrt() + EPS);
    assert!((a1[0] - t1).abs() < 1e-12);
    assert!((a2[0] - t2).abs() < 1e-12);
    // Sanity on the numbers themselves: ≈ 0.9 then ≈ 0.9 + 0.0447.
    assert!((t1 - 0.9).abs() < 1e-8 && (t2 - (0.9 + 0.025 / 0.3125_f64.sqrt())).abs() < 1e-8);
    let (r1, r2) = reference(1, |_, p, g, s| {
        s[0] += g * g;
        *p -= 0.1 * g / (s[0].sqrt() + EPS);
    });
    assert_close(&a1, &r1, 1e-12);
    assert_close(&a2, &r2, 1e-12);
}

#[test]
fn rmsprop_matches_closed_form() {
    let (a1, a2) = two_steps(&mut RmsProp::new(0.01, 0.9, EPS).unwrap());
    // s₁ = 0.1·0.25 = 0.025,                    θ₁ = 1 − 0.01·0.5/(√0.025 + ε)
    // s₂ = 0.9·0.025 + 0.1·0.0625 = 0.02875,    θ₂ = θ₁ + 0.01·0.25/(√0.02875 + ε)
    let t1 = 1.0 - 0.01 * 0.5 / (0.025_f64.sqrt() + EPS);
    let t2 = t1 + 0.01 * 0.25 / (0.02875_f64.sqrt() + EPS);
    assert!((a1[0] - t1).abs() < 1e-12);
    assert!((a2[0] - t2).abs() < 1e-12);
    let (r1, r2) = reference(1, |_, p, g, s| {
        s[0] = 0.9 * s[0] + 0.1 * g * g;
        *p -= 0.01 * g / (s[0].sqrt() + EPS);
    });
    assert_close(&a1, &r1, 1e-12);
    assert_close(&a2, &r2, 1e-12);
}

#[test]
fn adam_matches_closed_form() {
    let (a1, a2) = two_steps(&mut Adam::new(0.01, 0.9, 0.999, EPS).unwrap());
    // t = 1: m = 0.1·0.5 = 0.05, v = 0.001·0.25 = 0.00025,
    //        m̂ = 0.05/0.1 = 0.5, v̂ = 0.00025/0.001 = 0.25, θ₁ = 1 − 0.01·0.5/(0.5 + ε)
    // t = 2: m = 0.9·0.05 + 0.1·(−0.25) = 0.02, v = 0.999·0.00025 + 0.001·0.0625 = 0.00031225,
    //        m̂ = 0.02/(1 − 0.81), v̂ = 0.00031225/(1 − 0.998001), θ₂ = θ₁ − 0.01·m̂/(√v̂ + ε)
    let t1 = 1.0 - 0.01 * 0.5 / (0.5 + EPS);
    let (m_hat, v_hat) = (0.02 / 0.19, 0.00031225 / 0.001999);
    let t2 = t1 - 0.01 * m_hat / (f64::sqrt(v_hat) + EPS);
    assert!((a1[0] - t1).abs() < 1e-12);
    assert!((a2[0] - t2).abs() < 1e-12);
    let (r1, r2) = reference(2, |t, p, g, s| {
        s[0] = 0.9 * s[0] + 0.1 * g;
        s[1] = 0.999 * s[1] + 0.001 * g * g;
        let m_hat = s[0] / (1.0 - 0.9_f64.powi(t as i32));
        let v_hat = s[1] / (1.0 - 0.999_f64.powi(t as i32));
        *p -= 0.01 * m_hat / (v_hat.sqrt() + EPS);
    });
    assert_close(&a1, &r1, 1e-12);
    assert_close(&a2, &r2, 1e-12);
}

#[test]
fn strided_views_take_the_fallback_path_with_the_same_result() {
    use ndarray::{Array2, ShapeBuilder};
    // Column-major parameters with row-major gradients: the strides differ, so the kernel
    // cannot use flat slices and must pair entries by index.
    for name in ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"] {
        let config: recur_optim::OptimizerConfig = name.parse().unwrap();
        let (mut fast, mut slow) = (
            config.build::<f64>().unwrap(),
            config.build::<f64>().unwrap(),
        );
        let mut p_c = params0().0;
        let mut p_f = Array2::zeros((2, 2).f());
        p_f.assign(&p_c);
        for g in [grads1().0, grads2().0] {
            fast.step(&mut p_c, &g).unwrap();
            slow.step(&mut p_f, &g).unwrap();
        }
        assert_eq!(common::bits(&p_c), common::bits(&p_f), "{name}");
    }
}
