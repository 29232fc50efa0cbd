//! The portable micro-kernel: plain Rust over fixed-size accumulator arrays, which the
//! compiler vectorizes for whatever the build target offers.

use num_traits::Float;

/// `c ← alpha · a · b + beta · c` on an `mr × nr` tile (`mr ≤ MR`, `nr ≤ NR`), element
/// `(i, p)` of `a` at `a + i·a_rs + p·a_cs`.
///
/// # Safety
/// See `Kernels::micro_raw`.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn micro<T: Float, const MR: usize, const NR: usize>(
    mr: usize,
    nr: usize,
    kc: usize,
    (a, a_rs, a_cs): (*const T, isize, isize),
    b: *const T,
    b_rs: isize,
    c: *mut T,
    c_rs: isize,
    alpha: T,
    beta: T,
) {
    let mut acc = [[T::zero(); NR]; MR];
    for p in 0..kc {
        let b_row = b.wrapping_offset(p as isize * b_rs);
        let mut row = [T::zero(); NR];
        for (j, r) in row.iter_mut().enumerate().take(nr) {
            *r = *b_row.add(j);
        }
        for (i, acc_i) in acc.iter_mut().enumerate().take(mr) {
            let a_i = *a.offset(i as isize * a_rs + p as isize * a_cs);
            for (acc_ij, &r) in acc_i.iter_mut().zip(&row) {
                *acc_ij = *acc_ij + a_i * r;
            }
        }
    }
    for (i, acc_i) in acc.iter().enumerate().take(mr) {
        let c_row = c.wrapping_offset(i as isize * c_rs);
        for (j, &x) in acc_i.iter().enumerate().take(nr) {
            let p = c_row.add(j);
            // beta = 0 must not read c.
            *p = if beta.is_zero() {
                alpha * x
            } else {
                alpha * x + beta * *p
            };
        }
    }
}
