//! The host's f32 fused multiply-add peak on one thread, per instruction set: the ceiling the
//! products are judged against (the language model's floor is its FLOP count at this rate).
//!
//! `cargo run --release -p recur-linalg --example fma_peak` prints one line per instruction
//! set this CPU runs, the best of several timed runs (so a busy machine lowers it less).

#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // the loops are x86-64 only

use std::time::Instant;

/// Independent accumulator chains: enough to cover the FMA latency (4 cycles) on two pipes.
const CHAINS: usize = 12;
/// FMAs per chain per timed run.
const STEPS: usize = 20_000_000;
const RUNS: usize = 7;

fn main() {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            report("AVX-512F", 16, || {
                // SAFETY: the CPU has AVX-512F (checked just above).
                #[allow(unsafe_code)]
                unsafe {
                    x86::avx512()
                }
            });
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            report("AVX2+FMA", 8, || {
                // SAFETY: the CPU has AVX2 and FMA (checked just above).
                #[allow(unsafe_code)]
                unsafe {
                    x86::avx2()
                }
            });
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    println!("no FMA loop for this architecture");
}

/// Times `run` (which does `CHAINS · STEPS` vector FMAs of `lanes` lanes) and prints GFLOP/s.
fn report(name: &str, lanes: usize, run: impl Fn() -> f32) {
    let flops = (2 * lanes * CHAINS * STEPS) as f64;
    let best = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(run());
            flops / start.elapsed().as_secs_f64() / 1e9
        })
        .fold(0.0, f64::max);
    println!("{name}: {best:.1} GFLOP/s f32 on one thread (best of {RUNS})");
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)] // `target_feature` functions are unsafe to call
mod x86 {
    use super::{CHAINS, STEPS};
    use std::arch::x86_64::*;

    /// Generates a loop of `CHAINS` independent FMA chains for one vector width.
    macro_rules! fma_loop {
        ($name:ident, $feat:literal, $splat:ident, $fma:ident, $add:ident, $first:ident) => {
            /// # Safety
            /// The CPU must support the target feature.
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn $name() -> f32 {
                let x = $splat(std::hint::black_box(0.999_f32));
                let y = $splat(std::hint::black_box(1e-3_f32));
                let mut acc = [$splat(1.0); CHAINS];
                for _ in 0..STEPS {
                    for a in &mut acc {
                        *a = $fma(*a, x, y);
                    }
                }
                let sum = acc.iter().fold($splat(0.0), |s, &a| $add(s, a));
                $first(sum)
            }
        };
    }

    fma_loop!(
        avx512,
        "avx512f",
        _mm512_set1_ps,
        _mm512_fmadd_ps,
        _mm512_add_ps,
        _mm512_cvtss_f32
    );
    fma_loop!(
        avx2,
        "avx2,fma",
        _mm256_set1_ps,
        _mm256_fmadd_ps,
        _mm256_add_ps,
        _mm256_cvtss_f32
    );
}
