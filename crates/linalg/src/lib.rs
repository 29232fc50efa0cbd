//! Dense matrix products for recur's hot loops, without allocating per call.
//!
//! A training step of a recurrent language model spends most of its time in three products
//! (logits `h·w`, the weight gradient `hᵀ·d_logits`, the input gradient `d_logits·wᵀ`) with a
//! short side (`m` = tokens × batch, often 1–640) against a long one (the vocabulary). This
//! crate computes them with
//!
//! - **run-time dispatch** ([`Isa`]) to AVX-512F or AVX2+FMA micro-kernels written with
//!   `std::arch`, or a portable kernel elsewhere;
//! - **packing** (GotoBLAS/BLIS structure): `a` in register-height micro-panels, `b` in
//!   L2-sized blocks of register-width panels — or read in place when `a` is short, and
//!   multiplied as dot products when `b` is a transposed view, where packing would cost as
//!   much as the arithmetic;
//! - **operands packed once** ([`PackedB`], [`gemm_packed`]): a recurrent layer's weights,
//!   which every step of a sequence multiplies, packed once per update instead of read in
//!   place with a page-sized stride at every step;
//! - **no allocation in steady state**: packing buffers are thread-local and reused;
//! - **optional threads** ([`set_threads`], or `RECUR_THREADS`): large products are split over
//!   a persistent, parked worker pool;
//! - **wide loops** ([`run_wide`]): safe element-wise loops compiled again for AVX-512 or AVX2
//!   and chosen at run time (the tiny products here, the activations of `recur-core`).
//!
//! ```
//! use ndarray::Array2;
//! use recur_linalg::gemm;
//!
//! let (tokens, hidden, vocab) = (20, 100, 300);
//! let h = Array2::from_shape_fn((tokens, hidden), |(t, i)| ((t + i) % 7) as f32 * 0.1);
//! let w = Array2::from_shape_fn((hidden, vocab), |(i, v)| ((i * v) % 5) as f32 * 0.01);
//! let mut logits = Array2::zeros((tokens, vocab));
//! gemm(1.0, h.view(), w.view(), 0.0, logits.view_mut())?;
//!
//! // Backward: d_h = d_logits · wᵀ, from a transposed view without copying w.
//! let d_logits = Array2::from_elem((tokens, vocab), 1e-3_f32);
//! let mut d_h = Array2::zeros((tokens, hidden));
//! gemm(1.0, d_logits.view(), w.t(), 0.0, d_h.view_mut())?;
//! assert!((d_h[[0, 1]] - 1e-3 * w.row(1).sum()).abs() < 1e-5);
//! # Ok::<(), recur_linalg::LinalgError>(())
//! ```
//!
//! `cargo bench -p recur-linalg --bench gemm` times every product shape recur's engine issues
//! on each instruction set's kernels, next to the `gemm` crate and matrixmultiply (ndarray's
//! `general_mat_mul`); `docs/performance.md` gives the tables per instruction set and the host
//! behind them. Setting `RECUR_ISA=avx2` (or `portable`) makes [`Isa::detect`] pick that set's
//! kernels, so an AVX-512 machine can run the path an AVX2 machine takes.
//!
//! `unsafe` is confined to the `simd` module (intrinsics and in-place reads and writes through
//! checked raw row views) and one lifetime erasure in the worker pool; each block carries its
//! `SAFETY` argument. Requires Rust 1.89 (stable AVX-512 intrinsics).

mod blas;
// Links the system's OpenBLAS for the `blas` route (a library crate with no items of its own).
#[cfg(feature = "blas-openblas")]
use blas_src as _;
mod driver;
mod error;
mod gemm;
mod isa;
mod pack;
mod packed;
mod scalar;
mod simd;
mod threads;
mod workspace;

pub use error::LinalgError;
pub use gemm::{gemm, gemm_with_isa};
pub use isa::Isa;
pub use packed::{gemm_packed, PackedB, PackedRows};
pub use scalar::Scalar;
pub use simd::{run_wide, WideLoop};
pub use threads::{for_each_parallel, set_threads, threads};
pub use workspace::zeros_aligned;
