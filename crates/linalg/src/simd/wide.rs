//! Safe loops compiled a second time for AVX-512F or AVX2, chosen at run time.
//!
//! The default build targets baseline x86-64, where the compiler vectorises `f64` loops two
//! lanes wide. A loop written as a [`WideLoop`] is also compiled inside entry points that
//! enable AVX-512F or AVX2+FMA, and [`run_wide`] calls the one the CPU supports. The loop
//! stays safe code: the only `unsafe` is the call of a `#[target_feature]` function, made
//! after checking that the CPU has the feature.
//!
//! Every version performs the same IEEE operations in the same order (Rust never fuses a
//! multiply and an add unless asked to with `mul_add`), so their results are identical bit
//! for bit; only the speed differs. The sigmoid of a 16-unit hidden layer, for instance, runs
//! in about a quarter of the time with AVX-512.

use crate::Isa;

/// A loop to compile for wider vectors: see [`run_wide`].
///
/// ```
/// use recur_linalg::{run_wide, Isa, WideLoop};
///
/// struct Square<'a>(&'a mut [f64]);
///
/// impl WideLoop for Square<'_> {
///     type Output = ();
///     #[inline(always)]
///     fn run(self) {
///         for v in self.0 {
///             *v *= *v;
///         }
///     }
/// }
///
/// let mut values = [1.0, 2.0, 3.0];
/// run_wide(Isa::detect(), Square(&mut values));
/// assert_eq!(values, [1.0, 4.0, 9.0]);
/// ```
pub trait WideLoop {
    /// What the loop returns.
    type Output;

    /// Runs the loop. Implementations should be `#[inline(always)]`: only code inlined into
    /// the wide entry points is compiled for the wider instruction sets (anything else still
    /// runs, at baseline width).
    fn run(self) -> Self::Output;
}

/// Runs `body` compiled for `isa` (AVX-512F, AVX2+FMA, or the build's baseline for
/// [`Isa::Portable`]). An `isa` this CPU cannot run falls back to the baseline, so any value
/// is safe; pass [`Isa::detect`] for the fastest.
#[inline(always)]
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))] // no wide sets there
pub fn run_wide<L: WideLoop>(isa: Isa, body: L) -> L::Output {
    // The detected set is supported by construction, and comparing with it is one relaxed
    // load: this runs for every tiny product, where a feature query is a visible cost.
    let supported = || isa == Isa::detect() || isa.is_supported();
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports AVX-512F, the only feature `avx512` is compiled with.
        Isa::Avx512 if supported() => unsafe { avx512(body) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports AVX2 and FMA, the features `avx2` is compiled with.
        Isa::Avx2Fma if supported() => unsafe { avx2(body) },
        _ => body.run(),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn avx512<L: WideLoop>(body: L) -> L::Output {
    body.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn avx2<L: WideLoop>(body: L) -> L::Output {
    body.run()
}
