//! Products split over the worker pool give bit-identical results to one thread, also when
//! several threads multiply at once.

use ndarray::{Array2, ArrayView2};
use recur_linalg::{gemm, gemm_packed, set_threads, threads, PackedB};

fn filled(rows: usize, cols: usize, seed: usize) -> Array2<f32> {
    Array2::from_shape_fn((rows, cols), |(i, j)| {
        ((i * 131 + j * 71 + seed * 17) % 97) as f32 / 97.0 - 0.5
    })
}

/// `a·b` added onto a copy of `accumulate_onto`, with `b` plain or packed.
fn product<'b>(
    a: ArrayView2<'_, f32>,
    b: impl Into<Operand<'b>>,
    accumulate_onto: &Array2<f32>,
) -> Array2<f32> {
    let mut c = accumulate_onto.clone();
    match b.into() {
        Operand::Plain(b) => gemm(1.0, a, b, 1.0, c.view_mut()).unwrap(),
        Operand::Packed(b) => gemm_packed(1.0, a, b, 1.0, c.view_mut()).unwrap(),
    }
    c
}

/// The right-hand operand of [`product`].
enum Operand<'b> {
    Plain(ArrayView2<'b, f32>),
    Packed(&'b PackedB<f32>),
}

impl<'b> From<ArrayView2<'b, f32>> for Operand<'b> {
    fn from(b: ArrayView2<'b, f32>) -> Self {
        Operand::Plain(b)
    }
}

impl<'b> From<&'b PackedB<f32>> for Operand<'b> {
    fn from(b: &'b PackedB<f32>) -> Self {
        Operand::Packed(b)
    }
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
        assert!(same_bits(&one, &two) && same_bits(&one, &three));
    }
    set_threads(2).unwrap();
    // Several callers at once: one gets the pool, the others compute on their own thread.
    let want = product(h.view(), w.view(), &Array2::zeros((20, 8000)));
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..5 {
                    let got = product(h.view(), w.view(), &Array2::zeros((20, 8000)));
                    assert!(same_bits(&got, &want));
                }
            });
        }
    });
    set_threads(1).unwrap();
}

fn same_bits(x: &Array2<f32>, y: &Array2<f32>) -> bool {
    x.iter().zip(y).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// A packed `b` gives the same bits on 1, 2 and 3 threads, and the bits of the plain product
/// where that one runs the panel loop (row-major `b`, without the `blas` feature).
#[test]
fn packed_products_match_single_thread_and_plain_panels_bitwise() {
    let w_gates = filled(256, 1024, 1);
    let h = filled(32, 256, 2);
    let d_gates = filled(96, 1024, 3);
    let w = filled(100, 8000, 4);
    let s = filled(640, 100, 5);
    let cases: Vec<(ArrayView2<'_, f32>, ArrayView2<'_, f32>, bool)> = vec![
        (h.view(), w_gates.view(), true),     // h·W_hh at batch 32
        (d_gates.view(), w_gates.t(), false), // δa·W_hhᵀ, three blocks of 32
        (s.view(), w.view(), true),           // logits at batch 32
    ];
    for (a, b, plain_is_panels) in cases {
        let packed = PackedB::new(b);
        let start = filled(a.nrows(), b.ncols(), 6);
        let run = |threads: usize| {
            set_threads(threads).unwrap();
            product(a, &packed, &start)
        };
        let one = run(1);
        assert!(same_bits(&one, &run(2)) && same_bits(&one, &run(3)));
        let plain = product(a, b, &start);
        // With `blas`, the plain product is the library's: equal up to rounding only.
        if plain_is_panels && !cfg!(feature = "blas") {
            assert!(same_bits(&one, &plain));
        } else {
            let diff = (&one - &plain).mapv(f32::abs);
            assert!(diff.iter().all(|&d| d < 1e-3));
        }
    }
    set_threads(1).unwrap();
}
