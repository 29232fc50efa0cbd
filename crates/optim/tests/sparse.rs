//! Sparse gradient rows give exactly the dense result, for every optimizer.

mod common;

use common::{bits, SparseSet};
use ndarray::{Array1, Array2};
use proptest::prelude::*;
use recur_core::Error;
use recur_optim::OptimizerConfig;

const KINDS: [&str; 6] = [
    "sgd:0.1",
    "momentum:0.1:0.9",
    "nesterov:0.1:0.9",
    "adagrad:0.5",
    "rmsprop:0.01",
    "adam:0.01",
];
const ROWS: usize = 12;
const COLS: usize = 3;

/// A gradient that is non-zero only in `rows` (duplicates allowed, as a careless caller
/// might pass them), once with the rows listed and once as a dense gradient.
fn sparse_and_dense(rows: &[usize], seed: f64) -> (SparseSet, SparseSet) {
    let mut w = Array2::zeros((ROWS, COLS));
    for (k, &r) in rows.iter().enumerate() {
        for c in 0..COLS {
            w[[r, c]] = (seed + k as f64 * 0.37 + c as f64 * 1.3).sin();
        }
    }
    let b = Array1::from_shape_fn(2, |i| (seed * 2.0 + i as f64).cos());
    let sparse = SparseSet {
        w: w.clone(),
        b: b.clone(),
        rows: Some(rows.to_vec()),
    };
    (sparse, SparseSet { w, b, rows: None })
}

fn start() -> SparseSet {
    SparseSet {
        w: Array2::from_shape_fn((ROWS, COLS), |(r, c)| 0.5 + 0.1 * r as f64 - 0.2 * c as f64),
        b: Array1::from_vec(vec![0.3, -0.7]),
        rows: None,
    }
}

proptest! {
    #[test]
    fn sparse_rows_match_the_dense_update(
        steps in prop::collection::vec(prop::collection::vec(0..ROWS, 0..6), 1..5),
        kind in 0..KINDS.len(),
    ) {
        let config: OptimizerConfig = KINDS[kind].parse().unwrap();
        let (mut sparse_opt, mut dense_opt) =
            (config.build::<f64>().unwrap(), config.build::<f64>().unwrap());
        let (mut p_sparse, mut p_dense) = (start(), start());
        for (i, rows) in steps.iter().enumerate() {
            let (g_sparse, g_dense) = sparse_and_dense(rows, i as f64);
            sparse_opt.step(&mut p_sparse, &g_sparse).unwrap();
            dense_opt.step(&mut p_dense, &g_dense).unwrap();
        }
        prop_assert_eq!(bits(&p_sparse), bits(&p_dense));
        prop_assert_eq!(sparse_opt.state(), dense_opt.state());
    }
}

#[test]
fn sparse_path_touches_only_the_listed_rows() {
    // A NaN outside the listed rows is never read by SGD and Adagrad: proof that they
    // walk the listed rows only (the dense rules read everything and refuse it).
    for spec in KINDS {
        let mut opt = spec
            .parse::<OptimizerConfig>()
            .unwrap()
            .build::<f64>()
            .unwrap();
        let (mut g, _) = sparse_and_dense(&[2, 5], 0.0);
        g.w[[7, 1]] = f64::NAN;
        let mut p = start();
        let result = opt.step(&mut p, &g);
        let sparse_kind = spec.starts_with("sgd") || spec.starts_with("adagrad");
        assert_eq!(result.is_ok(), sparse_kind, "{spec}");
        assert_eq!(p.w[[7, 1]].to_bits(), start().w[[7, 1]].to_bits());
    }
}

#[test]
fn out_of_range_rows_are_refused() {
    for spec in KINDS {
        let mut opt = spec
            .parse::<OptimizerConfig>()
            .unwrap()
            .build::<f64>()
            .unwrap();
        let (mut g, _) = sparse_and_dense(&[1], 0.0);
        g.rows = Some(vec![1, ROWS]);
        let mut p = start();
        let err = opt.step(&mut p, &g).unwrap_err();
        assert!(
            matches!(err, Error::LayoutMismatch { slot: 0, .. }),
            "{spec}: {err}"
        );
        assert_eq!(p, start());
        assert_eq!(opt.steps_taken(), 0);
    }
}
