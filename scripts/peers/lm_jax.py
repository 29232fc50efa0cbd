#!/usr/bin/env python3
"""JAX peer of `examples/throughput.rs`: the tanh Elman language model's training step.

Model (vocabulary V, hidden H, no biases): ``s_t = tanh(E[x_t] + s_{t-1} W^T)`` with an
embedding table E (V x H, the tutorial's U transposed), logits ``s_t V^T``, softmax
cross-entropy summed over the sentence and the batch, plain SGD (lr 0.005), one update
per batch. The whole update (forward ``lax.scan``, ``jax.grad``, SGD) is one ``jax.jit``
function with the parameters donated.

Truncation:

* ``full``: the loss of the scanned sequence, differentiated: exact BPTT.
* ``per-output:K``: the tutorial's ``bptt_truncate = K`` exactly. A first scan computes
  every state (under ``stop_gradient``); then each output t gets a window of its own step
  and the K before it, started from the (constant) state before the window, and the T
  windows are scanned together as one batch of T*B rows for K+1 steps. Window steps before
  step 0 use a zero input from a zero state, so they stay exactly zero and add no gradient.
  ``--check`` compares one update with the numpy tutorial algorithm.

Threads: each setting runs in a child process pinned with ``sched_setaffinity`` to CPU 0
(1 thread) or CPUs 0-1 (2 threads), what ``taskset -c 0`` / ``taskset -c 0,1`` do, set
before JAX is imported; with 1 thread XLA_FLAGS also gets
``--xla_cpu_multi_thread_eigen=false``.

    python lm_jax.py                                   # default settings, one JSON line each
    python lm_jax.py --batch 32 --truncation full --dtype f32 --threads 1 2
    python lm_jax.py --check
"""

import argparse
import json
import os
import subprocess
import sys
import time

POOL = 16


def parse_truncation(text):
    if text == "full":
        return ("full", None)
    kind, _, k = text.partition(":")
    if kind != "per-output" or not k.isdigit():
        raise argparse.ArgumentTypeError("truncation: full or per-output:K")
    return ("per-output", int(k))


def trunc_text(truncation):
    return "full" if truncation[0] == "full" else f"per-output:{truncation[1]}"


def build(batch, truncation, dtype, seed, vocab, hidden, seq_len):
    import jax
    import jax.numpy as jnp
    import numpy as np

    rng = np.random.default_rng(seed)
    bu, bh = 1.0 / np.sqrt(vocab), 1.0 / np.sqrt(hidden)
    U = rng.uniform(-bu, bu, (hidden, vocab))
    W = rng.uniform(-bh, bh, (hidden, hidden))
    V = rng.uniform(-bh, bh, (vocab, hidden))
    pool_np = [
        (rng.integers(0, vocab, size=(seq_len, batch)), rng.integers(0, vocab, size=(seq_len, batch)))
        for _ in range(POOL)
    ]
    jdtype = {"f32": jnp.float32, "f64": jnp.float64}[dtype]
    params = {
        "E": jnp.asarray(U.T, dtype=jdtype),
        "W": jnp.asarray(W, dtype=jdtype),
        "V": jnp.asarray(V, dtype=jdtype),
    }
    pool = [(jnp.asarray(x, jnp.int32), jnp.asarray(y, jnp.int32)) for x, y in pool_np]
    lr = 0.005

    def run(W, h0, inputs):
        def cell(h, e):
            h = jnp.tanh(e + h @ W.T)
            return h, h

        _, hs = jax.lax.scan(cell, h0, inputs)
        return hs

    def xent(Vout, states, y):
        logits = states @ Vout.T
        logp = jax.nn.log_softmax(logits, axis=-1)
        return -jnp.sum(jnp.take_along_axis(logp, y[:, None], axis=-1))

    if truncation[0] == "full":
        def loss(p, x, y):
            T, B = x.shape
            H = p["W"].shape[0]
            hs = run(p["W"], jnp.zeros((B, H), p["W"].dtype), p["E"][x])
            return xent(p["V"], hs.reshape(T * B, H), y.reshape(T * B))
    else:
        K = truncation[1]

        def loss(p, x, y):
            T, B = x.shape
            H = p["W"].shape[0]
            zero = jnp.zeros((B, H), p["W"].dtype)
            hs = jax.lax.stop_gradient(run(p["W"], zero, p["E"][x]))
            # State before step t - K (zero when t - K <= 0), for each output t.
            before = jnp.concatenate([jnp.zeros((K + 1, B, H), hs.dtype), hs[: T - 1]])[:T]
            h0 = jax.lax.stop_gradient(before.reshape(T * B, H))
            # Window ids: step t - K + j for j = 0..K; -1 before step 0 (zero input).
            xp = jnp.concatenate([jnp.full((K, B), -1, x.dtype), x])
            win = jnp.stack([xp[j : j + T] for j in range(K + 1)]).reshape(K + 1, T * B)
            e = jnp.where((win >= 0)[..., None], p["E"][jnp.maximum(win, 0)], 0)
            out = run(p["W"], h0, e)
            return xent(p["V"], out[-1], y.reshape(T * B))

    def step(p, x, y):
        g = jax.grad(loss)(p, x, y)
        return jax.tree_util.tree_map(lambda a, b: a - jnp.asarray(lr, a.dtype) * b, p, g)

    step = jax.jit(step, donate_argnums=0)
    return params, step, pool, (U, W, V)


def measure(batch, truncation, dtype, threads, seconds, seed, vocab, hidden, seq_len):
    import jax

    if dtype == "f64":
        jax.config.update("jax_enable_x64", True)
    params, step, pool, _ = build(batch, truncation, dtype, seed, vocab, hidden, seq_len)
    i = 0
    warm_until = time.perf_counter() + max(0.5, seconds / 10)
    while time.perf_counter() < warm_until or i < 3:  # includes compilation
        params = step(params, *pool[i % POOL])
        i += 1
    jax.block_until_ready(params)
    steps = 0
    start = time.perf_counter()
    while True:
        params = step(params, *pool[steps % POOL])
        steps += 1
        if steps % 8 == 0 or time.perf_counter() - start >= seconds:
            jax.block_until_ready(params)
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
    tokens = steps * batch * seq_len
    return {
        "impl": "jax",
        "batch": batch,
        "dtype": dtype,
        "threads": threads,
        "truncation": trunc_text(truncation),
        "tokens_per_s": tokens / elapsed,
        "ms_per_step": 1e3 * elapsed / steps,
        "steps": steps,
        "jax": jax.__version__,
        "affinity": sorted(os.sched_getaffinity(0)),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


def check():
    """One update from the same weights: JAX vs the numpy tutorial algorithm."""
    import jax
    import numpy as np

    jax.config.update("jax_enable_x64", True)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import lm_numpy

    vocab, hidden, T = 60, 9, 20
    for trunc in [("per-output", 4), ("per-output", 0), ("full", None)]:
        params, step, pool, (U, W, V) = build(1, trunc, "f64", 3, vocab, hidden, T)
        x, y = pool[0]
        new = step(params, x, y)
        ref = [U.copy(), W.copy(), V.copy()]
        k = trunc if trunc[0] != "full" else ("per-output", T)
        lm_numpy.classic_step_fn(ref, 0.005, k, 1)(np.asarray(x), np.asarray(y))
        got = [np.asarray(new["E"]).T, np.asarray(new["W"]), np.asarray(new["V"])]
        err = max(float(np.abs(a - b).max()) for a, b in zip(got, ref))
        moved = max(float(np.abs(a - b).max()) for a, b in zip(got, (U, W, V)))
        print(json.dumps({"check": trunc_text(trunc), "max_abs_diff": err, "max_update": moved}))
        assert err < 1e-10, err


DEFAULT_SETTINGS = [
    # batch, truncation, dtype
    (1, "per-output:4", "f32"),
    (1, "per-output:4", "f64"),
    (1, "full", "f32"),
    (32, "full", "f32"),
]


def child_env(threads):
    env = dict(os.environ)
    if threads == 1:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
    return env


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int)
    ap.add_argument("--truncation", type=parse_truncation)
    ap.add_argument("--dtype", choices=["f32", "f64"])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--seconds", type=float, default=3.0, help="timed seconds per setting")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vocab", type=int, default=8000)
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--seq-len", type=int, default=20)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.check:
        check()
        return
    if args.child:  # one setting, already pinned
        r = measure(args.batch, args.truncation, args.dtype, args.threads[0], args.seconds,
                    args.seed, args.vocab, args.hidden, args.seq_len)
        print(json.dumps(r), flush=True)
        return
    if args.batch is None and args.truncation is None and args.dtype is None:
        settings = DEFAULT_SETTINGS
    else:
        settings = [(args.batch or 1, trunc_text(args.truncation or ("per-output", 4)),
                     args.dtype or "f32")]
    for batch, trunc, dtype in settings:
        for threads in args.threads:
            cpus = set(range(threads))
            cmd = [sys.executable, os.path.abspath(__file__), "--child",
                   "--batch", str(batch), "--truncation", trunc, "--dtype", dtype,
                   "--threads", str(threads), "--seconds", str(args.seconds),
                   "--seed", str(args.seed), "--vocab", str(args.vocab),
                   "--hidden", str(args.hidden), "--seq-len", str(args.seq_len)]
            subprocess.run(cmd, env=child_env(threads), check=True,
                           preexec_fn=lambda c=cpus: os.sched_setaffinity(0, c))


if __name__ == "__main__":
    main()
