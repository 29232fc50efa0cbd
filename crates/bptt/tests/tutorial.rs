//! The language-model tutorial's per-output truncated BPTT, written out loop for loop as
//! its `bptt` function does it, against the engine's `per_output(k)` scheme.

// The references index arrays loop for loop, as the algorithms are written on paper.
#![allow(clippy::needless_range_loop)]

use ndarray::{Array1, Array2};
use recur_bptt::{Bptt, Model, SeqBatch, Truncation};
use recur_cell::{Elman, ElmanParams, Linear, LinearParams, Tanh};
use recur_loss::{Reduction, SoftmaxCrossEntropy};

const VOCAB: usize = 10;
const HIDDEN: usize = 5;

/// Explicit, deterministic weights in the tutorial's layout: `U [H, V]`, `V [V, H]`, `W [H, H]`.
fn tutorial_weights() -> (Array2<f64>, Array2<f64>, Array2<f64>) {
    let u = Array2::from_shape_fn((HIDDEN, VOCAB), |(i, j)| {
        0.3 * ((i * 7 + j * 3) as f64).sin()
    });
    let v = Array2::from_shape_fn((VOCAB, HIDDEN), |(i, j)| {
        0.25 * ((i * 5 + j * 11 + 1) as f64).cos()
    });
    let w = Array2::from_shape_fn((HIDDEN, HIDDEN), |(i, j)| {
        0.4 * ((i * 3 + j * 13 + 2) as f64).sin()
    });
    (u, v, w)
}

fn softmax(z: &Array1<f64>) -> Array1<f64> {
    let max = z.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
    let e = z.mapv(|v| (v - max).exp());
    let sum = e.sum();
    e / sum
}

/// The tutorial's `forward_propagation` and `bptt`, step for step.
fn tutorial_bptt(
    u: &Array2<f64>,
    v: &Array2<f64>,
    w: &Array2<f64>,
    x: &[usize],
    y: &[usize],
    bptt_truncate: usize,
) -> (Array2<f64>, Array2<f64>, Array2<f64>) {
    let t_len = y.len();
    // s has one extra row, the initial state, which the tutorial reads as s[-1].
    let mut s = Array2::<f64>::zeros((t_len + 1, HIDDEN));
    let mut o = Array2::<f64>::zeros((t_len, VOCAB));
    let row = |s: &Array2<f64>, t: isize| -> Array1<f64> {
        let idx = if t < 0 { t_len } else { t as usize };
        s.row(idx).to_owned()
    };
    for t in 0..t_len {
        let z = u.column(x[t]).to_owned() + w.dot(&row(&s, t as isize - 1));
        s.row_mut(t).assign(&z.mapv(f64::tanh));
        o.row_mut(t).assign(&softmax(&v.dot(&s.row(t))));
    }
    let mut d_u = Array2::<f64>::zeros(u.raw_dim());
    let mut d_v = Array2::<f64>::zeros(v.raw_dim());
    let mut d_w = Array2::<f64>::zeros(w.raw_dim());
    let mut delta_o = o.clone();
    for t in 0..t_len {
        delta_o[[t, y[t]]] -= 1.0;
    }
    for t in (0..t_len).rev() {
        let outer = |a: &Array1<f64>, b: &Array1<f64>| {
            Array2::from_shape_fn((a.len(), b.len()), |(i, j)| a[i] * b[j])
        };
        d_v += &outer(&delta_o.row(t).to_owned(), &s.row(t).to_owned());
        let s_t = s.row(t).to_owned();
        let mut delta_t = v.t().dot(&delta_o.row(t)) * (1.0 - &s_t * &s_t);
        let lowest = t.saturating_sub(bptt_truncate);
        for bptt_step in (lowest..=t).rev() {
            let s_prev = row(&s, bptt_step as isize - 1);
            d_w += &outer(&delta_t, &s_prev);
            let mut col = d_u.column_mut(x[bptt_step]);
            col += &delta_t;
            delta_t = w.t().dot(&delta_t) * (1.0 - &s_prev * &s_prev);
        }
    }
    (d_u, d_v, d_w)
}

fn max_diff(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    (a - b).iter().fold(0.0, |m, d| m.max(d.abs()))
}

#[test]
fn per_output_truncation_reproduces_the_tutorial_to_rounding() {
    let (u, v, w) = tutorial_weights();
    // recur stores weights input-major: w_xh = Uᵀ, w_hh = Wᵀ, w_hy = Vᵀ.
    let cell = Elman::from_params(
        ElmanParams::new(u.t().to_owned(), w.t().to_owned(), None).unwrap(),
        Tanh,
    )
    .unwrap();
    let readout = Linear::from_params(LinearParams {
        w_hy: v.t().to_owned(),
        b_y: None,
    })
    .unwrap();
    let model = Model::new(cell, readout).unwrap();
    // A "sentence": START = 0 ... with the targets shifted by one, END = 1.
    let x = [0usize, 4, 7, 7, 2, 9, 3, 5, 8, 6];
    let y = [4usize, 7, 7, 2, 9, 3, 5, 8, 6, 1];
    for k in [0, 1, 2, 4, 9, 20] {
        let (d_u, d_v, d_w) = tutorial_bptt(&u, &v, &w, &x, &y, k);
        let mut engine = Bptt::new(Truncation::per_output(k).unwrap(), Reduction::Sum);
        let mut grads = model.zero_grads();
        let batch = SeqBatch::sentence(&x, &y).unwrap();
        engine
            .accumulate(&model, &SoftmaxCrossEntropy, batch, None, &mut grads)
            .unwrap();
        let du = max_diff(&grads.cell.w_xh.t().to_owned(), &d_u);
        let dv = max_diff(&grads.readout.w_hy.t().to_owned(), &d_v);
        let dw = max_diff(&grads.cell.w_hh.t().to_owned(), &d_w);
        assert!(
            du < 1e-12 && dv < 1e-12 && dw < 1e-12,
            "k={k}: dU {du:e}, dV {dv:e}, dW {dw:e}"
        );
        assert!(
            d_u.iter().any(|g| g.abs() > 1e-3),
            "the check must compare non-trivial gradients"
        );
    }
}
