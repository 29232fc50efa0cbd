//! The kernels against a naive triple loop, over shapes, layouts, scalars and instruction sets.

use ndarray::{s, Array2, ArrayView2, ArrayViewMut2, ShapeBuilder};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use recur_linalg::{gemm, gemm_with_isa, Isa, LinalgError, Scalar};

/// Every instruction set this CPU runs.
fn isas() -> Vec<Isa> {
    [Isa::Avx512, Isa::Avx2Fma, Isa::Neon, Isa::Portable]
        .into_iter()
        .filter(|i| i.is_supported())
        .collect()
}

fn random(rng: &mut StdRng, rows: usize, cols: usize) -> Array2<f64> {
    Array2::from_shape_fn((rows, cols), |_| rng.random_range(-1.0..1.0))
}

/// `alpha·a·b + beta·c` in f64 with a plain triple loop; beta = 0 ignores `c`.
fn naive(
    alpha: f64,
    a: ArrayView2<'_, f64>,
    b: ArrayView2<'_, f64>,
    beta: f64,
    c: ArrayView2<'_, f64>,
) -> Array2<f64> {
    let (m, k) = a.dim();
    let n = b.ncols();
    Array2::from_shape_fn((m, n), |(i, j)| {
        let dot: f64 = (0..k).map(|p| a[[i, p]] * b[[p, j]]).sum();
        if beta == 0.0 {
            alpha * dot
        } else {
            alpha * dot + beta * c[[i, j]]
        }
    })
}

/// Largest |got − want|, and the scale it is judged against (k · max|a|·max|b| + |beta·c|).
fn check(got: ArrayView2<'_, f64>, want: &Array2<f64>, k: usize, tol: f64, what: &str) {
    assert_eq!(got.dim(), want.dim());
    for ((i, j), &w) in want.indexed_iter() {
        let g = got[[i, j]];
        let bound = tol * (k.max(1) as f64) * (1.0 + w.abs());
        assert!(
            (g - w).abs() <= bound,
            "{what}: c[{i},{j}] = {g}, expected {w} (±{bound})"
        );
    }
}

/// Lays `x` out in one of several layouts, returning the owned storage and a view into it.
#[derive(Debug, Clone, Copy)]
enum Layout {
    RowMajor,
    ColMajor,
    /// A window of a larger row-major array (row stride > cols).
    Sliced,
    /// Every other column of a wider array (column stride 2).
    Strided,
    /// Rows in reverse order (negative row stride).
    Reversed,
}

const LAYOUTS: [Layout; 5] = [
    Layout::RowMajor,
    Layout::ColMajor,
    Layout::Sliced,
    Layout::Strided,
    Layout::Reversed,
];

/// Storage holding `x` in `layout`, plus how to view it.
struct Laid {
    storage: Array2<f64>,
    layout: Layout,
    rows: usize,
    cols: usize,
}

impl Laid {
    fn new(x: &Array2<f64>, layout: Layout) -> Self {
        let (rows, cols) = x.dim();
        let storage = match layout {
            Layout::RowMajor => x.clone(),
            Layout::ColMajor => {
                let mut s = Array2::zeros((rows, cols).f());
                s.assign(x);
                s
            }
            Layout::Sliced => {
                let mut s = Array2::from_elem((rows + 3, cols + 5), 7.0);
                s.slice_mut(s![2..2 + rows, 1..1 + cols]).assign(x);
                s
            }
            Layout::Strided => {
                let mut s = Array2::from_elem((rows, 2 * cols), 7.0);
                s.slice_mut(s![.., ..;2]).assign(x);
                s
            }
            Layout::Reversed => {
                let mut s = x.clone();
                s.invert_axis(ndarray::Axis(0));
                s
            }
        };
        Self {
            storage,
            layout,
            rows,
            cols,
        }
    }

    fn view(&self) -> ArrayView2<'_, f64> {
        let (r, c) = (self.rows, self.cols);
        match self.layout {
            Layout::RowMajor | Layout::ColMajor => self.storage.view(),
            Layout::Sliced => self.storage.slice(s![2..2 + r, 1..1 + c]),
            Layout::Strided => self.storage.slice(s![.., ..;2]),
            Layout::Reversed => self.storage.slice(s![..;-1, ..]),
        }
    }

    fn view_mut(&mut self) -> ArrayViewMut2<'_, f64> {
        let (r, c) = (self.rows, self.cols);
        match self.layout {
            Layout::RowMajor | Layout::ColMajor => self.storage.view_mut(),
            Layout::Sliced => self.storage.slice_mut(s![2..2 + r, 1..1 + c]),
            Layout::Strided => self.storage.slice_mut(s![.., ..;2]),
            Layout::Reversed => self.storage.slice_mut(s![..;-1, ..]),
        }
    }
}

fn run_case(
    isa: Isa,
    (m, n, k): (usize, usize, usize),
    (alpha, beta): (f64, f64),
    layouts: [Layout; 3],
    seed: u64,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let a = random(&mut rng, m, k);
    let b = random(&mut rng, k, n);
    let c0 = random(&mut rng, m, n);
    let want = naive(alpha, a.view(), b.view(), beta, c0.view());
    let (la, lb) = (Laid::new(&a, layouts[0]), Laid::new(&b, layouts[1]));
    let start = if beta == 0.0 {
        c0.mapv(|_| f64::NAN)
    } else {
        c0.clone()
    };
    let mut lc = Laid::new(&start, layouts[2]);
    gemm_with_isa(isa, alpha, la.view(), lb.view(), beta, lc.view_mut()).unwrap();
    let what = format!("{isa} m={m} n={n} k={k} alpha={alpha} beta={beta} layouts={layouts:?}");
    check(lc.view(), &want, k, 1e-14, &what);
}

/// m, n, k from the edge sizes around every register tile in use, plus the model's shapes.
const EDGE: [usize; 15] = [1, 2, 3, 4, 5, 7, 9, 11, 15, 17, 31, 32, 33, 100, 257];

#[test]
fn edge_sizes_all_isas_row_major() {
    let mut seed = 0;
    for isa in isas() {
        for &m in &EDGE {
            for &n in &EDGE {
                for &k in &[1, 2, 3, 17, 100, 257] {
                    seed += 1;
                    run_case(isa, (m, n, k), (1.0, 0.0), [Layout::RowMajor; 3], seed);
                }
            }
        }
    }
}

#[test]
fn alpha_beta_combinations() {
    let mut seed = 1000;
    for isa in isas() {
        for &alpha in &[0.0, 1.0, -0.5] {
            for &beta in &[0.0, 1.0, -0.5] {
                for &(m, n, k) in &[
                    (1, 1, 1),
                    (5, 33, 17),
                    (20, 100, 40),
                    (11, 17, 257),
                    (3, 300, 2),
                ] {
                    seed += 1;
                    run_case(isa, (m, n, k), (alpha, beta), [Layout::RowMajor; 3], seed);
                    run_case(
                        isa,
                        (m, n, k),
                        (alpha, beta),
                        [Layout::ColMajor, Layout::ColMajor, Layout::Strided],
                        seed,
                    );
                }
            }
        }
    }
}

#[test]
fn every_layout_combination() {
    let mut seed = 5000;
    for isa in isas() {
        for la in LAYOUTS {
            for lb in LAYOUTS {
                for lc in LAYOUTS {
                    for &(m, n, k) in &[(1, 9, 40), (7, 33, 5), (20, 70, 100), (13, 1, 33)] {
                        seed += 1;
                        run_case(isa, (m, n, k), (-0.5, 0.5), [la, lb, lc], seed);
                        run_case(isa, (m, n, k), (1.0, 0.0), [la, lb, lc], seed);
                    }
                }
            }
        }
    }
}

/// Products of at most 4096 multiply-adds take their own path (dense slices in the best
/// orientation, or plain indexing): every layout combination, around the widths of its
/// blocks (16 columns, 4 dot products of 4 lanes), with depth 1 (outer products), single
/// rows and single columns, and every alpha/beta case.
#[test]
fn tiny_products_every_shape_and_layout() {
    const SIZES: [usize; 9] = [1, 2, 3, 4, 5, 8, 16, 17, 33];
    let mut seed = 20_000;
    for &m in &SIZES {
        for &n in &SIZES {
            for &k in &SIZES {
                if m * n * k > 4096 {
                    continue;
                }
                for la in LAYOUTS {
                    for lb in LAYOUTS {
                        for lc in LAYOUTS {
                            seed += 1;
                            run_case(Isa::Portable, (m, n, k), (1.0, 0.0), [la, lb, lc], seed);
                        }
                    }
                }
                for &(alpha, beta) in &[(1.0, 1.0), (-0.5, 0.5), (2.25, -1.0), (0.75, 0.0)] {
                    for layouts in [
                        [Layout::RowMajor; 3],
                        [Layout::RowMajor, Layout::ColMajor, Layout::RowMajor],
                        [Layout::ColMajor, Layout::RowMajor, Layout::ColMajor],
                        [Layout::Strided, Layout::Reversed, Layout::Sliced],
                    ] {
                        seed += 1;
                        run_case(Isa::detect(), (m, n, k), (alpha, beta), layouts, seed);
                    }
                }
            }
        }
    }
}

/// Shapes around the tiny path's kernels: a row times a matrix, outer products, single
/// columns, and column and depth tails.
const TINY_SHAPES: [(usize, usize, usize); 8] = [
    (1, 16, 16),
    (16, 16, 1),
    (8, 1, 16),
    (16, 1, 8),
    (1, 33, 17),
    (5, 7, 9),
    (3, 40, 2),
    (1, 33, 2),
];

/// Random `a` (`m × k`), `b` (`k × n`) and `c` (`m × n`).
fn operands(
    rng: &mut StdRng,
    (m, n, k): (usize, usize, usize),
) -> (Array2<f64>, Array2<f64>, Array2<f64>) {
    (random(rng, m, k), random(rng, k, n), random(rng, m, n))
}

/// The tiny path's loops are compiled once per instruction set with the same operations in
/// the same order, so every instruction set gives the same bits.
#[test]
fn tiny_products_are_identical_across_isas() {
    let mut rng = StdRng::seed_from_u64(11);
    for (m, n, k) in TINY_SHAPES {
        let (a, b, c0) = operands(&mut rng, (m, n, k));
        let bt = b.t().to_owned();
        for b_view in [b.view(), bt.t()] {
            let mut portable = c0.clone();
            gemm_with_isa(
                Isa::Portable,
                0.5,
                a.view(),
                b_view,
                -1.5,
                portable.view_mut(),
            )
            .unwrap();
            for isa in isas() {
                let mut c = c0.clone();
                gemm_with_isa(isa, 0.5, a.view(), b_view, -1.5, c.view_mut()).unwrap();
                let same = c
                    .iter()
                    .zip(&portable)
                    .all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same, "{isa} differs from portable at {m}x{n}x{k}");
            }
        }
    }
}

/// The tiny path in f32, against the f64 reference.
#[test]
fn tiny_products_f32() {
    let mut rng = StdRng::seed_from_u64(77);
    for (m, n, k) in TINY_SHAPES {
        let (a, b, c0) = operands(&mut rng, (m, n, k));
        let want = naive(0.5, a.view(), b.view(), -1.5, c0.view());
        let (a32, b32) = (a.mapv(|x| x as f32), b.mapv(|x| x as f32));
        // b row-major, and b as a transposed view (dot products).
        let bt32 = b32.t().to_owned();
        for (b_view, layout) in [(b32.view(), "row-major"), (bt32.t(), "transposed")] {
            let mut c = c0.mapv(|x| x as f32);
            gemm(0.5_f32, a32.view(), b_view, -1.5, c.view_mut()).unwrap();
            let what = format!("f32 tiny {m}x{n}x{k}, b {layout}");
            check(c.mapv(f64::from).view(), &want, k, 1e-6, &what);
        }
    }
}

/// The recurrent-model shapes, with the layouts the engine uses.
#[test]
fn model_shapes() {
    // Layouts of a, b and c: row- or column-major (a transposed view).
    use Layout::{ColMajor as C, RowMajor as R};
    let shapes = [
        // logits = h · w
        (20, 8000, 100, [R, R, R]),
        // d_w = hᵀ · d_logits
        (100, 8000, 20, [C, R, R]),
        // d_h = d_logits · wᵀ
        (20, 100, 8000, [R, C, R]),
        // recurrent step and its transposes
        (5, 100, 100, [R, R, R]),
        (100, 100, 5, [C, R, R]),
        (5, 100, 100, [R, C, R]),
        (1, 100, 100, [R, R, R]),
        (32, 100, 100, [R, R, R]),
        (640, 300, 100, [R, R, R]),
        // d_h = d_logits · wᵀ at batch 32 (panels of a transposed b, split by rows), and the
        // same plan with ragged tiles everywhere: 37 = 32 + 5 columns, depth 300 = 256 + 44.
        (640, 100, 600, [R, C, R]),
        (261, 37, 300, [R, C, R]),
        // LSTM gates at batch 32, hidden 256: [x, h] · W, its weight and input gradients.
        (32, 1024, 512, [R, R, R]),
        (512, 1024, 32, [C, R, R]),
        (32, 512, 1024, [R, C, R]),
        // Binary addition (hidden 16): the step, the output, and the gradients.
        (1, 16, 16, [R, R, R]),
        (1, 1, 16, [R, R, R]),
        (16, 16, 1, [C, R, R]),
        (1, 16, 16, [R, C, R]),
    ];
    for isa in isas() {
        for (seed, &(m, n, k, layouts)) in shapes.iter().enumerate() {
            run_case(isa, (m, n, k), (1.0, 1.0), layouts, seed as u64);
            run_case(isa, (m, n, k), (1.0, 0.0), layouts, seed as u64 + 100);
        }
    }
}

/// The f32 kernels (16 and 8 lanes, so other masks than f64's) on the same edge sizes.
#[test]
fn edge_sizes_f32() {
    let mut rng = StdRng::seed_from_u64(11);
    for isa in isas() {
        for &m in &EDGE {
            for &n in &EDGE {
                for &k in &[1, 3, 40] {
                    let a = random(&mut rng, m, k);
                    let b = random(&mut rng, k, n);
                    let c0 = random(&mut rng, m, n);
                    let want = naive(-0.5, a.view(), b.view(), 1.0, c0.view());
                    let mut c = c0.mapv(|x| x as f32);
                    let (a32, b32) = (a.mapv(|x| x as f32), b.mapv(|x| x as f32));
                    gemm_with_isa(isa, -0.5, a32.view(), b32.view(), 1.0, c.view_mut()).unwrap();
                    check(
                        c.mapv(f64::from).view(),
                        &want,
                        k,
                        1e-6,
                        &format!("f32 {isa} {m}×{n}×{k}"),
                    );
                }
            }
        }
    }
}

#[test]
fn f32_matches_f64_reference() {
    let mut rng = StdRng::seed_from_u64(7);
    for isa in isas() {
        for &(m, n, k) in &[
            (1, 8000, 100),
            (20, 300, 100),
            (100, 257, 20),
            (20, 100, 2000),
            (300, 100, 530),
            (17, 33, 9),
        ] {
            let a = random(&mut rng, m, k);
            let b = random(&mut rng, k, n);
            let want = naive(1.0, a.view(), b.view(), 0.0, a.view());
            let (a32, b32) = (a.mapv(|x| x as f32), b.mapv(|x| x as f32));
            for transposed_b in [false, true] {
                let bt = b32.t().to_owned();
                let b_view = if transposed_b { bt.t() } else { b32.view() };
                let mut c = Array2::from_elem((m, n), f32::NAN);
                gemm_with_isa(isa, 1.0, a32.view(), b_view, 0.0, c.view_mut()).unwrap();
                check(
                    c.mapv(f64::from).view(),
                    &want,
                    k,
                    1e-6,
                    &format!("f32 {isa} {m}×{n}×{k}"),
                );
            }
        }
    }
}

#[test]
fn shape_mismatch_is_an_error_and_leaves_c() {
    let a = Array2::<f64>::ones((3, 4));
    let b = Array2::<f64>::ones((5, 2));
    let mut c = Array2::<f64>::from_elem((3, 2), 9.0);
    let err = gemm(1.0, a.view(), b.view(), 0.0, c.view_mut()).unwrap_err();
    assert!(matches!(
        err,
        LinalgError::ShapeMismatch {
            a_cols: 4,
            b_rows: 5,
            ..
        }
    ));
    assert!(err.to_string().contains("a.ncols == b.nrows"));
    let b = Array2::<f64>::ones((4, 2));
    let mut wrong_c = Array2::<f64>::from_elem((3, 3), 9.0);
    assert!(gemm(1.0, a.view(), b.view(), 0.0, wrong_c.view_mut()).is_err());
    assert!(c
        .iter()
        .chain(wrong_c.iter())
        .all(|&x| x.to_bits() == 9.0_f64.to_bits()));
}

#[test]
fn empty_dimensions() {
    let a = Array2::<f32>::zeros((0, 3));
    let b = Array2::<f32>::zeros((3, 4));
    let mut c = Array2::<f32>::zeros((0, 4));
    gemm(1.0, a.view(), b.view(), 0.0, c.view_mut()).unwrap();
    // k = 0: c ← beta·c, and beta = 0 overwrites NaN.
    let a = Array2::<f32>::zeros((2, 0));
    let b = Array2::<f32>::zeros((0, 3));
    let mut c = Array2::<f32>::from_elem((2, 3), f32::NAN);
    gemm(1.0, a.view(), b.view(), 0.0, c.view_mut()).unwrap();
    assert!(c.iter().all(|&x| x == 0.0));
    let mut c = Array2::<f32>::from_elem((2, 3), 4.0);
    gemm(1.0, a.view(), b.view(), -0.5, c.view_mut()).unwrap();
    assert!(c.iter().all(|&x| x.to_bits() == (-2.0_f32).to_bits()));
}

#[test]
fn unsupported_isa_is_an_error() {
    for isa in [Isa::Avx512, Isa::Avx2Fma, Isa::Neon] {
        if !isa.is_supported() {
            let a = Array2::<f64>::ones((2, 2));
            let mut c = Array2::<f64>::zeros((2, 2));
            let err = gemm_with_isa(isa, 1.0, a.view(), a.view(), 0.0, c.view_mut()).unwrap_err();
            assert_eq!(err, LinalgError::UnsupportedIsa { isa });
        }
    }
}

/// Zero strides (a broadcast row) read correctly.
#[test]
fn broadcast_operand() {
    let row = Array2::from_shape_fn((1, 6), |(_, j)| j as f64);
    let a = row.broadcast((4, 6)).unwrap();
    let b = Array2::from_shape_fn((6, 3), |(i, j)| (i + j) as f64);
    for isa in isas() {
        let mut c = Array2::zeros((4, 3));
        gemm_with_isa(isa, 1.0, a, b.view(), 0.0, c.view_mut()).unwrap();
        let want = naive(1.0, a, b.view(), 0.0, c.view());
        check(c.view(), &want, 6, 1e-14, "broadcast");
    }
}

fn generic_identity<T: Scalar>() {
    let a = Array2::<T>::eye(7);
    let b = Array2::from_shape_fn((7, 5), |(i, j)| T::from(i * 5 + j).unwrap());
    let mut c = Array2::<T>::zeros((7, 5));
    gemm(T::one(), a.view(), b.view(), T::zero(), c.view_mut()).unwrap();
    assert_eq!(c, b);
}

#[test]
fn identity_is_exact_for_both_scalars() {
    generic_identity::<f32>();
    generic_identity::<f64>();
}

fn layout() -> impl Strategy<Value = Layout> {
    prop::sample::select(LAYOUTS.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn matches_naive(
        m in 1_usize..70, n in 1_usize..90, k in 1_usize..300,
        alpha in prop::sample::select(vec![0.0, 1.0, -0.5, 2.25]),
        beta in prop::sample::select(vec![0.0, 1.0, -0.5]),
        la in layout(), lb in layout(), lc in layout(),
        isa in prop::sample::select(isas()),
        seed in any::<u64>(),
    ) {
        run_case(isa, (m, n, k), (alpha, beta), [la, lb, lc], seed);
    }
}

/// `b` column-major (a transposed view, as in `d_logits · wᵀ`): every register-tile remainder
/// of the dot-product kernels, masked depth tails and several depth blocks.
#[test]
fn transposed_b_edges() {
    let mut seed = 9000;
    for isa in isas() {
        for m in (1..=9).chain([17, 20, 33]) {
            for n in (1..=13).chain([100]) {
                for k in [32, 33, 47, 128, 200, 2100] {
                    seed += 1;
                    run_case(
                        isa,
                        (m, n, k),
                        (1.0, 0.0),
                        [Layout::RowMajor, Layout::ColMajor, Layout::RowMajor],
                        seed,
                    );
                }
            }
        }
        for k in [4095, 4096, 4097, 9000] {
            seed += 1;
            run_case(
                isa,
                (5, 7, k),
                (-0.5, 1.0),
                [Layout::RowMajor, Layout::ColMajor, Layout::RowMajor],
                seed,
            );
        }
    }
    // f32 crosses its depth blocks (4096 elements) at a different k than f64.
    let mut rng = StdRng::seed_from_u64(3);
    for isa in isas() {
        let (m, n, k) = (6, 13, 9000);
        let a = random(&mut rng, m, k);
        let bt = random(&mut rng, n, k);
        let want = naive(1.0, a.view(), bt.t(), 0.0, a.view());
        let (a32, bt32) = (a.mapv(|x| x as f32), bt.mapv(|x| x as f32));
        let mut c = Array2::from_elem((m, n), f32::NAN);
        gemm_with_isa(isa, 1.0, a32.view(), bt32.t(), 0.0, c.view_mut()).unwrap();
        check(
            c.mapv(f64::from).view(),
            &want,
            k,
            1e-6,
            &format!("f32 {isa} deep dot"),
        );
    }
}
