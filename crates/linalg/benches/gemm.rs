//! recur-linalg, on each instruction set it has kernels for, against the `gemm` crate and
//! matrixmultiply (ndarray's `general_mat_mul`) on every product shape recur's engine issues:
//! the language model at batch 1 and 32 (T = 20 tokens, hidden 100, vocabulary 8000), binary
//! addition (hidden 16) and LSTM/GRU gate products (batch 32, hidden 256).
//!
//! `cargo bench -p recur-linalg --bench gemm` (add `-- f32/` or a shape name to filter).
//! Benchmark ids are `<type>/<shape>/<implementation>/<m>x<n>x<k>`, with implementations
//! `recur-avx512`, `recur-avx2`, `recur-portable` (the ISA forced through
//! [`gemm_with_isa`]; those this CPU lacks are skipped), the same with `b` packed beforehand
//! (`recur-avx512-packed`, …: [`gemm_packed`], as the gated cells multiply their weights),
//! `gemm-crate` and `matrixmultiply`.
//! Both peers run their AVX2+FMA kernels unless the bench is built with
//! `--features peer-avx512`, which turns on their AVX-512 kernels (matrixmultiply's `avx512`,
//! the gemm crate's `x86-v4`): compare `recur-avx2` with the default build and `recur-avx512`
//! with that feature. (matrixmultiply's default features include `avx512`; a comparison that
//! leaves them on measures recur's AVX2 path against matrixmultiply's AVX-512 kernels.) All
//! run on one thread. Throughput is in flops (2·m·n·k), so criterion's
//! "elem/s" reads as flop/s; `scripts/peers/gemm_table.py` turns the results into tables.
//!
//! `RECUR_BENCH_CLOCK=thread-cpu` times the benchmarking thread's CPU time instead of wall
//! time: on a machine other jobs share, each product is then charged only for the time it
//! ran (`support/thread_cpu.rs`).

use criterion::measurement::Measurement;
use criterion::{black_box, BenchmarkId, Criterion, Throughput};
use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2};
use recur_linalg::{gemm_packed, gemm_with_isa, Isa, PackedB, Scalar};
use std::time::Duration;

#[path = "support/peers.rs"]
mod peers;
use peers::gemm_crate;
#[path = "support/thread_cpu.rs"]
mod thread_cpu;

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

/// `(m, n, k)`: `a` is `m × k`, `b` is `k × n`.
const SHAPES: [Shape; 24] = [
    // Language model, batch 1: logits h·W_hy, the gradient Sᵀ·Δ, the input gradient Δ·W_hyᵀ.
    shape("logits_b1", (20, 8000, 100), false, false, false),
    shape("dw_b1", (100, 8000, 20), true, false, true),
    shape("dh_b1", (20, 100, 8000), false, true, false),
    shape("logits_m1", (1, 8000, 100), false, false, false),
    // Its recurrence: one step, a truncation window of 5, and their gradients.
    shape("rec_m1", (1, 100, 100), false, false, true),
    shape("rec_m5", (5, 100, 100), false, false, true),
    shape("rec_dw_k5", (100, 100, 5), true, false, true),
    shape("rec_dprev_m5", (5, 100, 100), false, true, false),
    // Language model, batch 32 (640 tokens).
    shape("logits_b32", (640, 8000, 100), false, false, false),
    shape("dw_b32", (100, 8000, 640), true, false, true),
    shape("dh_b32", (640, 100, 8000), false, true, false),
    shape("rec_m32", (32, 100, 100), false, false, true),
    shape("rec_dw_k32", (100, 100, 32), true, false, true),
    // Binary addition (2 inputs, hidden 16, 1 output): forward step and its gradients.
    shape("add_rec", (1, 16, 16), false, false, true),
    shape("add_in", (1, 16, 2), false, false, false),
    shape("add_out", (1, 1, 16), false, false, false),
    shape("add_dw", (16, 16, 1), true, false, true),
    shape("add_dprev", (1, 16, 16), false, true, false),
    // LSTM (hidden 256, 4 gates) and GRU (3 gates) at batch 32: input product, input and
    // recurrent products stacked ([x, h]·W), the weight gradient and the input gradient.
    shape("lstm_x", (32, 1024, 256), false, false, false),
    shape("lstm_xh", (32, 1024, 512), false, false, false),
    shape("lstm_dw", (512, 1024, 32), true, false, true),
    shape("lstm_dxh", (32, 512, 1024), false, true, false),
    shape("gru_xh", (32, 768, 512), false, false, false),
    shape("gru_dxh", (32, 512, 768), false, true, false),
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

/// Before timing, every implementation must give the portable kernel's product (to rounding),
/// so the bench compares like with like.
fn check_agreement<T: Scalar>(s: &Shape, a: ArrayView2<'_, T>, b: ArrayView2<'_, T>) {
    let mut want = Array2::zeros((s.m, s.n));
    gemm_with_isa(Isa::Portable, T::one(), a, b, T::zero(), want.view_mut()).unwrap();
    let mut got = Array2::from_elem((s.m, s.n), T::nan());
    let tol = T::from(1e-4 * s.k as f64).unwrap();
    let agree = |what: &str, got: &Array2<T>| {
        let close = got.iter().zip(&want).all(|(&g, &w)| (g - w).abs() <= tol);
        assert!(
            close,
            "{}: {what} disagrees with the portable kernel",
            s.name
        );
    };
    gemm_crate(a, b, T::zero(), got.view_mut());
    agree("gemm crate", &got);
    got.fill(T::nan());
    general_mat_mul(T::one(), &a, &b, T::zero(), &mut got);
    agree("matrixmultiply", &got);
}

fn bench_type<T: Scalar, M: Measurement>(c: &mut Criterion<M>, type_name: &str) {
    let isas = [
        (Isa::Avx512, "recur-avx512"),
        (Isa::Avx2Fma, "recur-avx2"),
        (Isa::Portable, "recur-portable"),
    ];
    for s in &SHAPES {
        let (a, b, mut out) = operands::<T>(s);
        let a_view: ArrayView2<'_, T> = if s.transpose_a { a.t() } else { a.view() };
        let b_view: ArrayView2<'_, T> = if s.transpose_b { b.t() } else { b.view() };
        let beta = if s.accumulate { T::one() } else { T::zero() };
        let mut group = c.benchmark_group(format!("{type_name}/{}", s.name));
        let flops = 2 * s.m * s.n * s.k;
        group.throughput(Throughput::Elements(flops as u64));
        // Keep every benchmark near the same wall time whatever its size.
        group.measurement_time(Duration::from_millis(if flops > 50_000_000 {
            2000
        } else {
            1000
        }));
        group.warm_up_time(Duration::from_millis(300));
        group.sample_size(20);
        let dims = format!("{}x{}x{}", s.m, s.n, s.k);
        check_agreement(s, a_view, b_view);
        for (isa, name) in isas.into_iter().filter(|(isa, _)| isa.is_supported()) {
            group.bench_function(BenchmarkId::new(name, &dims), |bench| {
                bench.iter(|| {
                    gemm_with_isa(
                        isa,
                        T::one(),
                        black_box(a_view),
                        b_view,
                        beta,
                        out.view_mut(),
                    )
                    .unwrap();
                });
            });
        }
        // `b` packed once outside the loop, as a recurrent cell packs its weights once per
        // update for all the steps that multiply them.
        for (isa, name) in isas.into_iter().filter(|(isa, _)| isa.is_supported()) {
            let mut packed = PackedB::new(b_view);
            packed.pack_with_isa(isa, b_view).unwrap();
            let id = BenchmarkId::new(format!("{name}-packed"), &dims);
            group.bench_function(id, |bench| {
                bench.iter(|| {
                    gemm_packed(T::one(), black_box(a_view), &packed, beta, out.view_mut())
                        .unwrap();
                });
            });
        }
        group.bench_function(BenchmarkId::new("gemm-crate", &dims), |bench| {
            bench.iter(|| gemm_crate(black_box(a_view), b_view, beta, out.view_mut()));
        });
        group.bench_function(BenchmarkId::new("matrixmultiply", &dims), |bench| {
            bench.iter(|| general_mat_mul(T::one(), &black_box(a_view), &b_view, beta, &mut out));
        });
        group.finish();
    }
}

fn benches<M: Measurement>(mut c: Criterion<M>) {
    bench_type::<f32, M>(&mut c, "f32");
    bench_type::<f64, M>(&mut c, "f64");
    c.final_summary();
}

fn main() {
    let c = Criterion::default().configure_from_args();
    match std::env::var("RECUR_BENCH_CLOCK").as_deref() {
        Ok("thread-cpu") => benches(c.with_measurement(thread_cpu::ThreadCpu)),
        Ok("wall") | Err(_) => benches(c),
        Ok(other) => eprintln!("RECUR_BENCH_CLOCK={other}: expected wall or thread-cpu"),
    }
}
