//! Helpers for the gradient tests of every loss.

use ndarray::{Array1, Array2, ArrayView2};

use crate::{Loss, Targets};

/// A deterministic `[rows, cols]` array of values in `[−4, 4)` (splitmix64 of `seed`).
pub(crate) fn random_logits(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
    let mut state = seed;
    Array2::from_shape_simple_fn((rows, cols), || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1_u64 << 53) as f64 * 8.0 - 4.0
    })
}

/// Checks `evaluate`'s gradient against central differences of the row losses it reports:
/// entry `[n, o]` against the central difference of `ℓ_n` in `z_no` (five-point stencil).
///
/// Tolerance: relative error below 1e-6, measured against `max(|analytic|, |numeric|, 1e-3)`
/// so that entries that are nearly zero are held to an absolute 1e-9 instead.
pub(crate) fn assert_gradient_matches(
    loss: &dyn Loss<f64>,
    logits: ArrayView2<'_, f64>,
    targets: Targets<'_, f64>,
    grad_scale: f64,
) {
    let (rows, cols) = logits.dim();
    let mut row_loss = Array1::zeros(rows);
    let mut d = Array2::from_elem((rows, cols), f64::NAN);
    loss.evaluate(
        logits,
        targets,
        row_loss.view_mut(),
        Some(d.view_mut()),
        grad_scale,
    )
    .unwrap();
    let mut row_loss_at = |z: &Array2<f64>, n: usize| {
        loss.evaluate(z.view(), targets, row_loss.view_mut(), None, grad_scale)
            .unwrap();
        row_loss[n]
    };
    let mut z = logits.to_owned();
    for n in 0..rows {
        for o in 0..cols {
            let original = z[[n, o]];
            let h = 1e-4 * original.abs().max(1.0);
            let mut at = |step: f64| {
                z[[n, o]] = original + step * h;
                let value = row_loss_at(&z, n);
                z[[n, o]] = original;
                value
            };
            // Five-point central stencil: truncation error O(h⁴), so third derivatives of
            // sharply curved losses do not leak into the comparison the way they do with
            // the two-point O(h²) difference.
            let numeric =
                grad_scale * (at(-2.0) - 8.0 * at(-1.0) + 8.0 * at(1.0) - at(2.0)) / (12.0 * h);
            let analytic = d[[n, o]];
            let magnitude = analytic.abs().max(numeric.abs()).max(1e-3);
            assert!(
                (analytic - numeric).abs() / magnitude < 1e-6,
                "{loss:?} at [{n}, {o}]: analytic {analytic}, numeric {numeric}"
            );
        }
    }
}
