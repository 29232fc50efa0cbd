//! recur-linalg against ndarray's `general_mat_mul` (matrixmultiply) on the products of a
//! recurrent language model's training step: T = 20 tokens, hidden 100, vocabulary 8000, at
//! batch 1 and batch 32 (m = 640 tokens, recurrent m = 32).
//!
//! `cargo bench -p recur-linalg` (add `-- f32/` or a shape name to filter). Throughput is in
//! flops (2·m·n·k), so criterion's "elem/s" reads as flop/s.

use criterion::{black_box, criterion_main, BenchmarkId, Criterion, Throughput};
use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2};
use recur_linalg::{gemm, gemm_with_isa, Isa, Scalar};
use std::time::Duration;

/// A product `c ← a·b + beta·c` as the engine issues it.
struct Shape {
    name: &'static str,
    m: usize,
    n: usize,
    k: usize,
    /// `a` is a transposed view (`hᵀ`, `prevᵀ`).
    transpose_a: bool,
    /// `b` is a transposed view (`wᵀ`).
    transpose_b: bool,
    accumulate: bool,
}

const fn shape(
    name: &'static str,
    (m, n, k): (usize, usize, usize),
    ta: bool,
    tb: bool,
    acc: bool,
) -> Shape {
    Shape {
        name,
        m,
        n,
        k,
        transpose_a: ta,
        transpose_b: tb,
        accumulate: acc,
    }
}

const SHAPES: [Shape; 13] = [
    shape("logits_b1", (20, 8000, 100), false, false, false),
    shape("dw_b1", (100, 8000, 20), true, false, true),
    shape("dh_b1", (20, 100, 8000), false, true, false),
    shape("logits_m1", (1, 8000, 100), false, false, false),
    shape("rec_m1", (1, 100, 100), false, false, true),
    shape("rec_m5", (5, 100, 100), false, false, true),
    shape("rec_dw_k5", (100, 100, 5), true, false, true),
    shape("rec_dprev_m5", (5, 100, 100), false, true, false),
    shape("logits_b32", (640, 8000, 100), false, false, false),
    shape("dw_b32", (100, 8000, 640), true, false, true),
    shape("dh_b32", (640, 100, 8000), false, true, false),
    shape("rec_m32", (32, 100, 100), false, false, true),
    shape("rec_dw_k32", (100, 100, 32), true, false, true),
];

fn operands<T: Scalar>(s: &Shape) -> (Array2<T>, Array2<T>, Array2<T>) {
    let fill =
        |(i, j): (usize, usize)| T::from(((i * 7 + j * 13) % 17) as f64 / 17.0 - 0.5).unwrap();
    let a = if s.transpose_a {
        Array2::from_shape_fn((s.k, s.m), fill)
    } else {
        Array2::from_shape_fn((s.m, s.k), fill)
    };
    let b = if s.transpose_b {
        Array2::from_shape_fn((s.n, s.k), fill)
    } else {
        Array2::from_shape_fn((s.k, s.n), fill)
    };
    (a, b, Array2::zeros((s.m, s.n)))
}

fn bench_type<T: Scalar>(c: &mut Criterion, type_name: &str) {
    for s in &SHAPES {
        let (a, b, mut out) = operands::<T>(s);
        let a_view: ArrayView2<'_, T> = if s.transpose_a { a.t() } else { a.view() };
        let b_view: ArrayView2<'_, T> = if s.transpose_b { b.t() } else { b.view() };
        let beta = if s.accumulate { T::one() } else { T::zero() };
        let mut group = c.benchmark_group(format!("{type_name}/{}", s.name));
        group.throughput(Throughput::Elements((2 * s.m * s.n * s.k) as u64));
        let flops = 2 * s.m * s.n * s.k;
        // Keep every benchmark near the same wall time whatever its size.
        group.measurement_time(Duration::from_millis(if flops > 50_000_000 {
            3000
        } else {
            1500
        }));
        group.warm_up_time(Duration::from_millis(500));
        group.sample_size(30);
        let dims = format!("{}x{}x{}", s.m, s.n, s.k);
        group.bench_function(BenchmarkId::new("recur-linalg", &dims), |bench| {
            bench.iter(|| gemm(T::one(), black_box(a_view), b_view, beta, out.view_mut()).unwrap());
        });
        if Isa::Avx2Fma.is_supported() && Isa::detect() != Isa::Avx2Fma {
            group.bench_function(BenchmarkId::new("recur-linalg-avx2", &dims), |bench| {
                bench.iter(|| {
                    gemm_with_isa(
                        Isa::Avx2Fma,
                        T::one(),
                        black_box(a_view),
                        b_view,
                        beta,
                        out.view_mut(),
                    )
                    .unwrap()
                });
            });
        }
        group.bench_function(BenchmarkId::new("ndarray", &dims), |bench| {
            bench.iter(|| general_mat_mul(T::one(), &black_box(a_view), &b_view, beta, &mut out));
        });
        group.finish();
    }
}

fn benches(c: &mut Criterion) {
    bench_type::<f32>(c, "f32");
    bench_type::<f64>(c, "f64");
}

// `criterion_group!` defines an undocumented `pub fn`; keep the lint quiet only there.
#[allow(missing_docs)]
mod harness {
    criterion::criterion_group!(gemm_benches, super::benches);
}
criterion_main!(harness::gemm_benches);
