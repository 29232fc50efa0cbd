//! `RECUR_ISA` picks the kernels `Isa::detect` reports (its own test binary, so the choice is
//! made here, on the first call).

use ndarray::array;
use recur_linalg::{gemm, Isa};

#[test]
fn recur_isa_selects_a_supported_set() {
    let wanted = if Isa::Avx2Fma.is_supported() {
        Isa::Avx2Fma
    } else {
        Isa::Portable
    };
    let name = if wanted == Isa::Avx2Fma {
        "AVX2"
    } else {
        "portable"
    };
    std::env::set_var("RECUR_ISA", name);
    assert_eq!(Isa::detect(), wanted);
    // The choice sticks, and products run on it.
    std::env::set_var("RECUR_ISA", "nonsense");
    assert_eq!(Isa::detect(), wanted);
    let a = array![[1.0_f32, 2.0]];
    let b = array![[3.0_f32], [4.0]];
    let mut c = array![[0.0_f32]];
    gemm(1.0, a.view(), b.view(), 0.0, c.view_mut()).unwrap();
    assert_eq!(c[[0, 0]].to_bits(), 11.0_f32.to_bits());
}
