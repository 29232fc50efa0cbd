//! Copies of blocks of `a` and `b` into the contiguous layouts the micro-kernels stream.

use ndarray::ArrayView2;

/// Packs an `mr × kc` block of `a` column by column, `dst[p·mr + i] = src[i, p]`, so each
/// kernel step reads the `mr` values it broadcasts from one place.
pub(crate) fn pack_a<T: Copy>(src: ArrayView2<'_, T>, dst: &mut [T]) {
    let (mr, kc) = src.dim();
    let dst = &mut dst[..mr * kc];
    if mr == 1 || src.strides()[0] == 1 {
        for (d, col) in dst.chunks_exact_mut(mr).zip(src.columns()) {
            match col.to_slice() {
                Some(s) => d.copy_from_slice(s),
                None => d.iter_mut().zip(col.iter()).for_each(|(d, &x)| *d = x),
            }
        }
    } else {
        // Row-major: one pass per row, writing every mr-th element (measured faster than
        // reading the rows side by side).
        for (i, row) in src.rows().into_iter().enumerate() {
            dst[i..]
                .iter_mut()
                .step_by(mr)
                .zip(row.iter())
                .for_each(|(d, &x)| *d = x);
        }
    }
}

/// Packs a `kc × nc` block of `b` into panels of `nr` columns: panel `q` holds
/// `src[p, q·nr + j]` at `dst[q·kc·nr + p·nr + j]`, so a kernel reads its whole `kc × nr`
/// panel sequentially. Columns past `nc` in the last panel are left as they were.
pub(crate) fn pack_b<T: Copy>(src: ArrayView2<'_, T>, nr: usize, dst: &mut [T]) {
    let (kc, nc) = src.dim();
    let panel = kc * nr;
    let dst = &mut dst[..nc.div_ceil(nr) * panel];
    if nc == 1 || src.strides()[1] == 1 {
        for (p, row) in src.rows().into_iter().enumerate() {
            match row.to_slice() {
                Some(s) => {
                    for (q, seg) in s.chunks(nr).enumerate() {
                        let at = q * panel + p * nr;
                        dst[at..at + seg.len()].copy_from_slice(seg);
                    }
                }
                None => {
                    for (j, &x) in row.iter().enumerate() {
                        dst[(j / nr) * panel + p * nr + j % nr] = x;
                    }
                }
            }
        }
    } else {
        // Walk columns: contiguous when `b` is column-major (a transposed view).
        for (j, col) in src.columns().into_iter().enumerate() {
            let at = (j / nr) * panel + j % nr;
            dst[at..]
                .iter_mut()
                .step_by(nr)
                .zip(col.iter())
                .for_each(|(d, &x)| *d = x);
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{s, Array2};

    use super::*;

    fn sample(rows: usize, cols: usize) -> Array2<f64> {
        Array2::from_shape_fn((rows, cols), |(i, j)| (i * 100 + j) as f64)
    }

    #[test]
    fn pack_a_layouts_agree() {
        let a = sample(5, 7);
        let expected: Vec<f64> = (0..7)
            .flat_map(|p| (0..5).map(move |i| (i * 100 + p) as f64))
            .collect();
        let col_major_copy = a.t().to_owned();
        for view in [a.view(), a.t().t(), col_major_copy.t()] {
            let mut dst = vec![0.0; 35];
            pack_a(view, &mut dst);
            assert_eq!(dst, expected);
        }
        let col_major = sample(7, 5).reversed_axes();
        let mut dst = vec![0.0; 35];
        pack_a(col_major.view(), &mut dst);
        let expected: Vec<f64> = (0..7)
            .flat_map(|p| (0..5).map(move |i| (p * 100 + i) as f64))
            .collect();
        assert_eq!(dst, expected);
    }

    /// The transposing kernels (where the CPU has them) lay panels out exactly as `pack_b`
    /// does, for ragged widths and depths, and write nothing past the columns they pack.
    #[test]
    fn transposed_panels_match_pack_b() {
        fn case<T: crate::Scalar>(kc: usize, nc: usize, nr: usize) {
            let src = Array2::from_shape_fn((nc, kc + 3), |(j, p)| {
                T::from(j * 1000 + p).expect("small integers are exact")
            });
            let block = src.slice(s![.., 1..1 + kc]).reversed_axes();
            let len = nc.div_ceil(nr) * kc * nr;
            let sentinel = -T::one();
            let mut want = vec![sentinel; len];
            pack_b(block, nr, &mut want);
            let mut got = vec![sentinel; len];
            if crate::simd::transpose_panels(crate::Isa::detect(), block, nr, &mut got) {
                assert!(want == got, "kc {kc} nc {nc} nr {nr}");
            }
        }
        for (kc, nc) in [(1, 1), (16, 16), (17, 33), (256, 100), (44, 5), (300, 64)] {
            case::<f32>(kc, nc, 32);
            case::<f64>(kc, nc, 16);
        }
    }

    #[test]
    fn pack_b_row_and_column_major_agree() {
        let b = sample(6, 9);
        let (kc, nc, nr) = (4, 9, 4);
        let block = b.slice(s![1..1 + kc, ..]);
        let mut row_major = vec![-1.0; 3 * kc * nr];
        pack_b(block, nr, &mut row_major);
        let transposed = b.t().to_owned();
        let block_t = transposed.t();
        let mut col_major = vec![-1.0; 3 * kc * nr];
        pack_b(block_t.slice(s![1..1 + kc, ..]), nr, &mut col_major);
        assert_eq!(row_major, col_major);
        for q in 0..3 {
            for p in 0..kc {
                for j in 0..nr.min(nc - q * nr) {
                    let got = row_major[q * kc * nr + p * nr + j];
                    assert_eq!(got.to_bits(), b[[1 + p, q * nr + j]].to_bits());
                }
            }
        }
    }
}
