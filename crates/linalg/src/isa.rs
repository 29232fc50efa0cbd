//! Which instruction set the kernels use, detected once at run time.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};

/// An instruction-set family with its own micro-kernels.
///
/// [`gemm`](crate::gemm) uses [`Isa::detect`]; [`gemm_with_isa`](crate::gemm_with_isa)
/// lets benchmarks and tests pick one explicitly.
///
/// ```
/// use recur_linalg::Isa;
///
/// let best = Isa::detect();
/// assert!(best.is_supported());
/// assert!(Isa::Portable.is_supported());
/// println!("gemm kernels: {best}");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Isa {
    /// 512-bit vectors with masking (x86-64 with AVX-512F).
    Avx512,
    /// 256-bit vectors with fused multiply-add (x86-64 with AVX2 and FMA).
    Avx2Fma,
    /// 128-bit NEON vectors (every ARM64 CPU): products run on matrixmultiply's NEON
    /// kernels, which allocate their packing buffers on each call.
    Neon,
    /// Plain Rust that the compiler vectorizes for the build target; runs everywhere.
    Portable,
}

const UNKNOWN: u8 = u8::MAX;
static DETECTED: AtomicU8 = AtomicU8::new(UNKNOWN);

impl Isa {
    /// The fastest instruction set this CPU supports (cached after the first call).
    ///
    /// The `RECUR_ISA` environment variable (`avx512`, `avx2`, `neon` or `portable`), read on the
    /// first call, overrides the choice when this CPU supports the named set: it lets an
    /// AVX-512 machine run, and measure, the kernels an AVX2 machine would (and every caller
    /// of `detect`, such as the activations' wide loops, follows). Other values are ignored.
    #[must_use]
    #[inline]
    pub fn detect() -> Self {
        match DETECTED.load(Ordering::Relaxed) {
            0 => Self::Avx512,
            1 => Self::Avx2Fma,
            2 => Self::Portable,
            3 => Self::Neon,
            _ => {
                let isa = std::env::var("RECUR_ISA")
                    .ok()
                    .and_then(|name| Self::from_name(&name))
                    .filter(|isa| isa.is_supported())
                    .or_else(|| {
                        [Self::Avx512, Self::Avx2Fma, Self::Neon]
                            .into_iter()
                            .find(|isa| isa.is_supported())
                    })
                    .unwrap_or(Self::Portable);
                DETECTED.store(isa.code(), Ordering::Relaxed);
                isa
            }
        }
    }

    /// The set a `RECUR_ISA` value names, if any.
    fn from_name(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "avx512" | "avx-512" | "avx512f" => Some(Self::Avx512),
            "avx2" | "avx2+fma" | "avx2fma" => Some(Self::Avx2Fma),
            "neon" => Some(Self::Neon),
            "portable" => Some(Self::Portable),
            _ => None,
        }
    }

    /// Whether this CPU can run the kernels for `self`.
    #[must_use]
    pub fn is_supported(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Self::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Self::Avx2Fma => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Self::Avx512 | Self::Avx2Fma => false,
            // NEON is part of the ARM64 base architecture.
            Self::Neon => cfg!(target_arch = "aarch64"),
            Self::Portable => true,
        }
    }

    fn code(self) -> u8 {
        match self {
            Self::Avx512 => 0,
            Self::Avx2Fma => 1,
            Self::Portable => 2,
            Self::Neon => 3,
        }
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Avx512 => "AVX-512F",
            Self::Avx2Fma => "AVX2+FMA",
            Self::Portable => "portable",
            Self::Neon => "NEON",
        })
    }
}
