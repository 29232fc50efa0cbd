#!/usr/bin/env python3
"""Binary addition with a sigmoid RNN in plain numpy: the peer of
`cargo run --release --example binary_addition`, for comparing wall time.

Same algorithm and sizes as the Rust example: 2 inputs, 16 sigmoid hidden units, one
sigmoid output, no biases, weights uniform in [-1, 1), squared error, full BPTT over the
8 bits (least significant first), one problem per update, learning rate 0.1, 10 000
problems, a report every 1 000. Written step by step with numpy vectors, as the classic
program is, so the timing compares recur with that style of code.

    python3 scripts/binary_addition_numpy.py [--iterations N] [--seed S] [--quiet]
"""

import argparse
import time

import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def bits_of(value, width):
    """Least significant bit first."""
    return np.array([(value >> t) & 1 for t in range(width)], dtype=np.float64)


def train(iterations, hidden, lr, bits, seed, print_every, quiet):
    rng = np.random.default_rng(seed)
    w_xh = rng.uniform(-1.0, 1.0, (2, hidden))
    w_hh = rng.uniform(-1.0, 1.0, (hidden, hidden))
    w_hy = rng.uniform(-1.0, 1.0, (hidden, 1))
    limit = 1 << (bits - 1)
    recent_from = max(0, iterations - 1000)
    recent_correct = 0

    for i in range(iterations):
        a, b = int(rng.integers(limit)), int(rng.integers(limit))
        total = a + b
        a_bits, b_bits, sum_bits = bits_of(a, bits), bits_of(b, bits), bits_of(total, bits)

        # Forward: keep every hidden state (h[0] is the zero initial state) and each
        # output's delta for the backward pass.
        h = [np.zeros((1, hidden))]
        out_deltas, y_hat = [], np.zeros(bits)
        for t in range(bits):
            x = np.array([[a_bits[t], b_bits[t]]])
            h.append(sigmoid(x @ w_xh + h[-1] @ w_hh))
            out = sigmoid(h[-1] @ w_hy)
            y_hat[t] = out[0, 0]
            # Gradient of ½(ŷ − y)² with respect to the output's logit.
            out_deltas.append((out - sum_bits[t]) * out * (1.0 - out))

        # Backward through time, last bit first: the hidden gradient is what comes back
        # from the next step plus what comes down from this step's output, times σ'.
        g_xh, g_hh, g_hy = np.zeros_like(w_xh), np.zeros_like(w_hh), np.zeros_like(w_hy)
        next_delta = np.zeros((1, hidden))
        for t in reversed(range(bits)):
            x = np.array([[a_bits[t], b_bits[t]]])
            h_t, h_prev = h[t + 1], h[t]
            delta = (next_delta @ w_hh.T + out_deltas[t] @ w_hy.T) * h_t * (1.0 - h_t)
            g_hy += h_t.T @ out_deltas[t]
            g_hh += h_prev.T @ delta
            g_xh += x.T @ delta
            next_delta = delta

        w_xh -= lr * g_xh
        w_hh -= lr * g_hh
        w_hy -= lr * g_hy

        predicted_bits = np.round(y_hat).astype(int)
        predicted = int(sum(int(v) << t for t, v in enumerate(predicted_bits)))
        if i >= recent_from and predicted == total:
            recent_correct += 1
        if (i + 1) % print_every == 0 and not quiet:
            error = float(np.abs(sum_bits - y_hat).sum())
            print(f"---- iteration {i + 1} ----")
            print(f"Error: {error:.6f}")
            print(f"Pred: {predicted:0{bits}b}")
            print(f"True: {total:0{bits}b}")
            print(f"{a} + {b} = {predicted}")
    return recent_correct / (iterations - recent_from)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=10_000)
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--bits", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--print-every", type=int, default=1000)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()

    started = time.perf_counter()
    accuracy = train(args.iterations, args.hidden, args.lr, args.bits, args.seed,
                     args.print_every, args.quiet)
    elapsed = time.perf_counter() - started
    if not args.quiet:
        print(f"exact sums over the last 1000 problems: {100 * accuracy:.1f} %")
        print(f"wall time: {elapsed:.3f} s")


if __name__ == "__main__":
    main()
