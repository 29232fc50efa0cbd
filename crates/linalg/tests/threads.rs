//! Products split over the worker pool give bit-identical results to one thread, also when
//! several threads multiply at once.

use ndarray::{Array2, ArrayView2};
use recur_linalg::{gemm, set_threads, threads};

fn filled(rows: usize, cols: usize, seed: usize) -> Array2<f32> {
    Array2::from_shape_fn((rows, cols), |(i, j)| {
        ((i * 131 + j * 71 + seed * 17) % 97) as f32 / 97.0 - 0.5
    })
}

/// `(a, b)` stored as the engine stores them, with the views it multiplies.
fn product(
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    accumulate_onto: &Array2<f32>,
) -> Array2<f32> {
    let mut c = accumulate_onto.clone();
    gemm(1.0, a, b, 1.0, c.view_mut()).unwrap();
    c
}

#[test]
fn pooled_products_match_single_thread_bitwise() {
    let h = filled(20, 100, 1);
    let w = filled(100, 8000, 2);
    let d_logits = filled(20, 8000, 3);
    let h_big = filled(640, 100, 4);
    let d_big = filled(640, 1000, 6);
    let w_narrow = filled(100, 1000, 7);
    // An LSTM's gates at batch 32, hidden 256: [x, h] · W, its weight and input gradients.
    let xh = filled(32, 512, 8);
    let w_gates = filled(512, 1024, 9);
    let d_gates = filled(32, 1024, 10);
    let cases: Vec<(ArrayView2<'_, f32>, ArrayView2<'_, f32>)> = vec![
        (xh.view(), w_gates.view()),   // gates
        (xh.t(), d_gates.view()),      // d_w of the gates
        (d_gates.view(), w_gates.t()), // d_xh
        (h.view(), w.view()),          // logits
        (h.t(), d_logits.view()),      // d_w
        (d_logits.view(), w.t()),      // d_h (n = 100)
        (h_big.view(), w.view()),      // logits at batch 32
        (d_big.view(), w_narrow.t()),  // d_h at batch 32: panels and a dot-product tail
        (h_big.t(), d_big.view()),     // d_w at batch 32
    ];
    for (a, b) in cases {
        let start = filled(a.nrows(), b.ncols(), 5);
        set_threads(1).unwrap();
        let one = product(a, b, &start);
        set_threads(2).unwrap();
        assert_eq!(threads(), 2);
        let two = product(a, b, &start);
        set_threads(3).unwrap();
        let three = product(a, b, &start);
        assert!(one
            .iter()
            .zip(&two)
            .zip(&three)
            .all(|((x, y), z)| x.to_bits() == y.to_bits() && y.to_bits() == z.to_bits()));
    }
    set_threads(2).unwrap();
    // Several callers at once: one gets the pool, the others compute on their own thread.
    let want = product(h.view(), w.view(), &Array2::zeros((20, 8000)));
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..5 {
                    let got = product(h.view(), w.view(), &Array2::zeros((20, 8000)));
                    assert!(got
                        .iter()
                        .zip(&want)
                        .all(|(x, y)| x.to_bits() == y.to_bits()));
                }
            });
        }
    });
    set_threads(1).unwrap();
}
