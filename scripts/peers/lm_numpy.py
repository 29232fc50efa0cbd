#!/usr/bin/env python3
"""numpy peers of `examples/throughput.rs`: the tanh Elman language model's training step.

Model: vocabulary V, hidden H, no biases,
    s_t = tanh(U[:, x_t] + W s_{t-1}),  o_t = softmax(V s_t),
loss = cross-entropy summed over the sentence (and the batch), plain SGD (lr 0.005),
one update per batch. Inputs and targets are token ids drawn uniformly with a fixed seed;
a pool of 16 batches is cycled so data generation stays out of the timing.

Two implementations:

* ``classic``: the language-model tutorial's algorithm, written the way that tutorial
  writes it: batch 1, one output at a time, a per-output truncation loop
  (``bptt_truncate = K``: each output's error goes back through its own step and at most
  K earlier ones), dense gradient arrays for U, W and V, softmax per step.
* ``vectorised``: the same gradients computed with whole-sentence matrix products. The
  recurrence stays a Python loop over the T steps, but the output layer (logits, softmax,
  dV, the error fed back into the hidden states) is done for all steps and all sentences
  at once; per-output truncation pushes all outputs' errors back one depth level at a time
  (K+1 batched products); full BPTT is the usual single backward sweep. The input matrix is
  stored as an embedding table (V x H) and only its touched rows are updated (plain SGD
  leaves the other rows unchanged anyway). Works for any batch size.

Threads: the BLAS pool is limited with threadpoolctl (``--threads``). Benchmark with
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset in that command, see README.md.

    python lm_numpy.py                       # all default settings, one JSON line each
    python lm_numpy.py --impl vectorised --batch 32 --truncation full --dtype f32 --threads 2
"""

import argparse
import json
import sys
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

POOL = 16


def make_pool(rng, vocab, seq_len, batch):
    """16 (inputs, targets) pairs of shape (seq_len, batch), uniform token ids."""
    return [
        (
            rng.integers(0, vocab, size=(seq_len, batch)),
            rng.integers(0, vocab, size=(seq_len, batch)),
        )
        for _ in range(POOL)
    ]


def init_params(rng, vocab, hidden, dtype):
    """Uniform in +-1/sqrt(fan_in), as the tutorial (and recur's default) initialise."""
    bu = 1.0 / np.sqrt(vocab)
    bh = 1.0 / np.sqrt(hidden)
    U = rng.uniform(-bu, bu, (hidden, vocab)).astype(dtype)   # hidden x vocab, column per id
    W = rng.uniform(-bh, bh, (hidden, hidden)).astype(dtype)
    V = rng.uniform(-bh, bh, (vocab, hidden)).astype(dtype)
    return U, W, V


# ---------------------------------------------------------------- classic (tutorial style)


class ClassicRNN:
    """The tutorial's numpy RNN, batch 1, per-output truncation."""

    def __init__(self, U, W, V, bptt_truncate):
        self.U, self.W, self.V = U, W, V
        self.bptt_truncate = bptt_truncate

    def forward(self, x):
        T = len(x)
        H = self.W.shape[0]
        # One extra row: s[-1] is the zero initial state.
        s = np.zeros((T + 1, H), dtype=self.U.dtype)
        o = np.zeros((T, self.V.shape[0]), dtype=self.U.dtype)
        for t in range(T):
            s[t] = np.tanh(self.U[:, x[t]] + self.W.dot(s[t - 1]))
            z = self.V.dot(s[t])
            e = np.exp(z - np.max(z))
            o[t] = e / np.sum(e)
        return o, s

    def bptt(self, x, y):
        T = len(y)
        o, s = self.forward(x)
        dU = np.zeros_like(self.U)
        dW = np.zeros_like(self.W)
        dV = np.zeros_like(self.V)
        delta_o = o
        delta_o[np.arange(T), y] -= 1.0
        for t in range(T - 1, -1, -1):
            dV += np.outer(delta_o[t], s[t])
            delta = self.V.T.dot(delta_o[t]) * (1.0 - s[t] ** 2)
            # Own step and at most bptt_truncate earlier ones.
            for step in range(t, max(0, t - self.bptt_truncate) - 1, -1):
                dW += np.outer(delta, s[step - 1])
                dU[:, x[step]] += delta
                delta = self.W.T.dot(delta) * (1.0 - s[step - 1] ** 2)
        return dU, dW, dV

    def sgd_step(self, x, y, lr):
        dU, dW, dV = self.bptt(x, y)
        self.U -= lr * dU
        self.W -= lr * dW
        self.V -= lr * dV


def classic_step_fn(params, lr, truncation, batch):
    if batch != 1:
        raise SystemExit("classic: batch 1 only (it is the tutorial's one-sentence loop)")
    if truncation[0] != "per-output":
        raise SystemExit("classic: per-output:K truncation only")
    model = ClassicRNN(*params, bptt_truncate=truncation[1])

    def step(x, y):
        model.sgd_step(x[:, 0], y[:, 0], lr)

    return step


# ---------------------------------------------------------------- vectorised


def vectorised_step_fn(params, lr, truncation, batch):
    U, W, V = params
    E = np.ascontiguousarray(U.T)  # vocab x hidden: row per id
    dtype = E.dtype
    lr = dtype.type(lr)

    def step(x, y):
        T, B = x.shape
        H = W.shape[0]
        # Forward: S[0] is the zero state, S[t + 1] the state after step t.
        S = np.zeros((T + 1, B, H), dtype=dtype)
        ex = E[x]  # T x B x H
        for t in range(T):
            S[t + 1] = np.tanh(ex[t] + S[t] @ W.T)
        states = S[1:].reshape(T * B, H)
        # Output layer for every step and sentence at once.
        z = states @ V.T  # TB x vocab
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        z[np.arange(T * B), y.reshape(-1)] -= 1.0  # dL/dz
        dV = z.T @ states
        dS = (z @ V).reshape(T, B, H)  # error reaching each state from its own output
        dW = np.zeros_like(W)
        dE_rows = np.zeros((T, B, H), dtype=dtype)  # gradient for E[x[t, b]]
        deriv = 1.0 - S[1:] ** 2  # tanh' at each step
        if truncation[0] == "full":
            carry = np.zeros((B, H), dtype=dtype)
            for t in range(T - 1, -1, -1):
                d = (dS[t] + carry) * deriv[t]
                dW += d.T @ S[t]
                dE_rows[t] = d
                carry = d @ W
        else:  # per-output:K, all outputs' errors moved back one level at a time
            K = truncation[1]
            d = dS * deriv  # depth 0: error at the output's own step, T x B x H
            for k in range(min(K, T - 1) + 1):
                # d[i] is the error, at step i, of the output at step i + k.
                n = T - k
                dW += d[:n].reshape(n * B, H).T @ S[:n].reshape(n * B, H)
                dE_rows[:n] += d[:n]
                if k < K and n > 1:
                    d = (d[1:n] @ W) * deriv[: n - 1]
        dW *= lr
        np.subtract(W, dW, out=W)
        dV *= lr
        np.subtract(V, dV, out=V)
        # Sparse update of the touched embedding rows (repeated ids accumulate).
        np.add.at(E, x.reshape(-1), -lr * dE_rows.reshape(T * B, H))

    step.embedding = E
    return step


# ---------------------------------------------------------------- timing


def parse_truncation(text):
    if text == "full":
        return ("full", None)
    kind, _, k = text.partition(":")
    if kind != "per-output" or not k.isdigit():
        raise argparse.ArgumentTypeError("truncation: full or per-output:K")
    return ("per-output", int(k))


def measure(impl, batch, truncation, dtype, threads, seconds, seed, vocab, hidden, seq_len):
    rng = np.random.default_rng(seed)
    params = init_params(rng, vocab, hidden, np.dtype(dtype))
    pool = make_pool(rng, vocab, seq_len, batch)
    make = classic_step_fn if impl == "classic" else vectorised_step_fn
    with threadpool_limits(limits=threads):
        step = make(params, 0.005, truncation, batch)
        i = 0
        warm_until = time.perf_counter() + max(0.5, seconds / 10)
        while time.perf_counter() < warm_until or i < 3:
            step(*pool[i % POOL])
            i += 1
        steps = 0
        start = time.perf_counter()
        while True:
            step(*pool[steps % POOL])
            steps += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
    tokens = steps * batch * seq_len
    trunc_text = truncation[0] if truncation[0] == "full" else f"per-output:{truncation[1]}"
    return {
        "impl": f"numpy-{impl}",
        "batch": batch,
        "dtype": dtype,
        "threads": threads,
        "truncation": trunc_text,
        "tokens_per_s": tokens / elapsed,
        "ms_per_step": 1e3 * elapsed / steps,
        "steps": steps,
        "numpy": np.__version__,
    }


DEFAULT_SETTINGS = [
    # impl, batch, truncation, dtype
    ("classic", 1, "per-output:4", "float64"),
    ("vectorised", 1, "per-output:4", "float64"),
    ("vectorised", 1, "per-output:4", "float32"),
    ("vectorised", 32, "full", "float32"),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--impl", choices=["classic", "vectorised"])
    ap.add_argument("--batch", type=int)
    ap.add_argument("--truncation", type=parse_truncation)
    ap.add_argument("--dtype", choices=["f32", "f64"])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--seconds", type=float, default=3.0, help="timed seconds per setting")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vocab", type=int, default=8000)
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--seq-len", type=int, default=20)
    args = ap.parse_args()

    blas = [
        {k: d.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
        for d in threadpool_info()
    ]
    print(json.dumps({"blas": blas}), file=sys.stderr)

    if args.impl is None:
        settings = [(i, b, parse_truncation(t), d) for i, b, t, d in DEFAULT_SETTINGS]
    else:
        dtype = {"f32": "float32", "f64": "float64"}[args.dtype or "f64"]
        settings = [
            (args.impl, args.batch or 1, args.truncation or ("per-output", 4), dtype)
        ]
    for impl, batch, trunc, dtype in settings:
        for threads in args.threads:
            r = measure(impl, batch, trunc, dtype, threads, args.seconds, args.seed,
                        args.vocab, args.hidden, args.seq_len)
            r["dtype"] = {"float32": "f32", "float64": "f64"}[r["dtype"]]
            print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
