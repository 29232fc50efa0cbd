"""Fits the small-argument polynomial of recur-core's fast tanh (crates/core/src/fast_tanh.rs).

For |x| < X0, tanh(x) = x + x^3 * P(x^2). P is fitted by weighted least squares on
Chebyshev nodes of s = x^2 in [0, X0^2], in 50-digit arithmetic (mpmath), weighting each
residual by x^3 / tanh(x) so that the fit minimises the relative error of tanh itself.
The script prints the coefficients and the largest error, in ulp, of the polynomial
evaluated in the target precision against tanh computed in 50 digits.

    python3 scripts/tanh_fit.py            # both fits used by the library
    python3 scripts/tanh_fit.py 0.55 9 f64 # one fit: X0, degree in s, precision
"""

import sys

import mpmath as mp
import numpy as np

mp.mp.dps = 50


def fit(x0, degree, nodes=400):
    """Coefficients c0..c_degree of P(s) = sum c_j s^j."""
    a = mp.matrix(nodes, degree + 1)
    b = mp.matrix(nodes, 1)
    for i in range(nodes):
        s = x0**2 * (1 - mp.cos(mp.pi * (i + mp.mpf(0.5)) / nodes)) / 2
        x = mp.sqrt(s)
        weight = x**3 / mp.tanh(x)
        for j in range(degree + 1):
            a[i, j] = s**j * weight
        b[i] = (mp.tanh(x) - x) / x**3 * weight
    return [float(c) for c in mp.lu_solve(a.T * a, a.T * b)]


def worst_ulp(coef, x0, dtype):
    """Largest distance in ulp from the correctly rounded tanh on a grid of [1e-8, x0]."""
    ft, it = (np.float64, np.int64) if dtype == "f64" else (np.float32, np.int32)
    xs = np.linspace(1e-8, x0, 4001).astype(ft)
    s = xs * xs
    p = np.full_like(xs, ft(coef[-1]))
    for c in reversed(coef[:-1]):
        p = p * s + ft(c)
    y = xs + xs * s * p
    ref = np.array([float(mp.tanh(mp.mpf(float(v)))) for v in xs]).astype(ft)
    return int(np.abs(y.view(it) - ref.view(it)).max())


def main():
    runs = [(0.55, 9, "f64"), (0.55, 3, "f32")]
    if len(sys.argv) == 4:
        runs = [(float(sys.argv[1]), int(sys.argv[2]), sys.argv[3])]
    for x0, degree, dtype in runs:
        coef = fit(x0, degree)
        print(f"{dtype}, |x| < {x0}, degree {degree} in x^2:")
        for c in coef:
            print(f"    {c!r},")
        print(f"  max error of the polynomial: {worst_ulp(coef, x0, dtype)} ulp")


if __name__ == "__main__":
    main()
