#!/usr/bin/env python3
"""PyTorch peer of `examples/throughput.rs`: the tanh Elman language model's training step.

Model (vocabulary V, hidden H, no biases): ``nn.Embedding(V, H)`` feeding
``nn.RNN(H, H, nonlinearity='tanh', bias=False)`` whose input weight ``weight_ih_l0`` is
fixed to the identity (frozen), so the cell is exactly ``s_t = tanh(E[x_t] + W s_{t-1})``,
the same model as recur's (E plays U's role; the identity costs one small H x H product
per step and no parameter). Readout ``nn.Linear(H, V, bias=False)``,
``nn.CrossEntropyLoss(reduction='sum')``, ``torch.optim.SGD(lr=0.005)``, one update per
batch; the embedding gradient is dense (PyTorch's default) unless ``--sparse-embedding``.

Truncation:

* ``full``: one ``nn.RNN`` call over the T steps from a zero state, loss over all
  outputs, ``backward()``: exact BPTT (the natural PyTorch program).
* ``per-output:K``: the tutorial's ``bptt_truncate = K`` exactly. A ``no_grad`` pass
  computes every state; then each output t gets a window of its own step and the K
  before it, started from the detached state before the window, and the T windows run
  as one batch of T*B sequences of length K+1 through the same ``nn.RNN``. Windows that
  would start before step 0 are left-padded with a padding id whose embedding is zero
  (``padding_idx``) from a zero state, so the padded steps stay exactly zero and add no
  gradient. The gradient equals the tutorial's (checked with ``--check``).

Threads: ``torch.set_num_threads(n)`` (and one inter-op thread).

    python lm_torch.py                                # default settings, one JSON line each
    python lm_torch.py --batch 32 --truncation full --dtype f32 --threads 1 2
    python lm_torch.py --check                        # gradient check against numpy
"""

import argparse
import json
import sys
import time

import numpy as np
import torch
import torch.nn as nn

POOL = 16


class ElmanLM(nn.Module):
    def __init__(self, vocab, hidden, padded, sparse):
        super().__init__()
        self.vocab = vocab
        self.pad = vocab if padded else None
        rows = vocab + 1 if padded else vocab
        self.embedding = nn.Embedding(rows, hidden, padding_idx=self.pad, sparse=sparse)
        self.rnn = nn.RNN(hidden, hidden, nonlinearity="tanh", bias=False)
        with torch.no_grad():
            self.rnn.weight_ih_l0.copy_(torch.eye(hidden))
        self.rnn.weight_ih_l0.requires_grad_(False)
        self.readout = nn.Linear(hidden, vocab, bias=False)

    def init_like_tutorial(self, U, W, V):
        """Copy numpy weights (U: H x vocab, W: H x H, V: vocab x H)."""
        with torch.no_grad():
            dtype = self.readout.weight.dtype
            self.embedding.weight[: self.vocab].copy_(torch.from_numpy(U.T.copy()).to(dtype))
            self.rnn.weight_hh_l0.copy_(torch.from_numpy(W).to(dtype))
            self.readout.weight.copy_(torch.from_numpy(V).to(dtype))


def make_loss_fn(model, truncation):
    ce = nn.CrossEntropyLoss(reduction="sum")
    kind, K = truncation

    if kind == "full":
        def loss_fn(x, y):
            T, B = x.shape
            out, _ = model.rnn(model.embedding(x))  # zero initial state
            logits = model.readout(out.reshape(T * B, -1))
            return ce(logits, y.reshape(T * B))
        return loss_fn

    def loss_fn(x, y):
        T, B = x.shape
        pad = torch.full((K, B), model.pad, dtype=x.dtype)
        xp = torch.cat([pad, x])  # (T + K) x B, padded steps keep the zero state
        with torch.no_grad():
            hs, _ = model.rnn(model.embedding(xp))
        H = hs.shape[-1]
        # State before padded position t, for t = 0..T-1 (zero for t = 0).
        h0 = torch.cat([hs.new_zeros(1, B, H), hs[: T - 1]]).reshape(1, T * B, H)
        # Window of output t: padded positions t..t+K (its own step and the K before).
        win = xp.unfold(0, K + 1, 1).permute(2, 0, 1).reshape(K + 1, T * B)
        out, _ = model.rnn(model.embedding(win), h0)
        logits = model.readout(out[-1])
        return ce(logits, y.reshape(T * B))

    return loss_fn


def parse_truncation(text):
    if text == "full":
        return ("full", None)
    kind, _, k = text.partition(":")
    if kind != "per-output" or not k.isdigit():
        raise argparse.ArgumentTypeError("truncation: full or per-output:K")
    return ("per-output", int(k))


def build(batch, truncation, dtype, sparse, seed, vocab, hidden, seq_len):
    rng = np.random.default_rng(seed)
    bu, bh = 1.0 / np.sqrt(vocab), 1.0 / np.sqrt(hidden)
    U = rng.uniform(-bu, bu, (hidden, vocab))
    W = rng.uniform(-bh, bh, (hidden, hidden))
    V = rng.uniform(-bh, bh, (vocab, hidden))
    pool = [
        (
            torch.from_numpy(rng.integers(0, vocab, size=(seq_len, batch))),
            torch.from_numpy(rng.integers(0, vocab, size=(seq_len, batch))),
        )
        for _ in range(POOL)
    ]
    model = ElmanLM(vocab, hidden, truncation[0] != "full", sparse).to(dtype)
    model.init_like_tutorial(U, W, V)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.005)
    loss_fn = make_loss_fn(model, truncation)

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(x, y)
        loss.backward()
        opt.step()
        return loss

    return model, step, pool, (U, W, V)


def measure(batch, truncation, dtype, threads, sparse, seconds, seed, vocab, hidden, seq_len):
    torch.set_num_threads(threads)
    tdtype = {"f32": torch.float32, "f64": torch.float64}[dtype]
    _, step, pool, _ = build(batch, truncation, tdtype, sparse, seed, vocab, hidden, seq_len)
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
    trunc_text = "full" if truncation[0] == "full" else f"per-output:{truncation[1]}"
    return {
        "impl": "torch" + ("-sparse-emb" if sparse else ""),
        "batch": batch,
        "dtype": dtype,
        "threads": threads,
        "truncation": trunc_text,
        "tokens_per_s": tokens / elapsed,
        "ms_per_step": 1e3 * elapsed / steps,
        "steps": steps,
        "torch": torch.__version__,
    }


def check():
    """One update from the same weights: torch vs the numpy tutorial algorithm."""
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    import lm_numpy

    vocab, hidden, T = 60, 9, 20
    for trunc in [("per-output", 4), ("per-output", 0), ("full", None)]:
        model, step, pool, (U, W, V) = build(1, trunc, torch.float64, False, 3, vocab, hidden, T)
        x, y = pool[0]
        step(x, y)
        params = [U.copy(), W.copy(), V.copy()]
        if trunc[0] == "full":
            lm_numpy.classic_step_fn(params, 0.005, ("per-output", T), 1)(x.numpy(), y.numpy())
        else:
            lm_numpy.classic_step_fn(params, 0.005, trunc, 1)(x.numpy(), y.numpy())
        got = [
            model.embedding.weight[:vocab].detach().numpy().T,
            model.rnn.weight_hh_l0.detach().numpy(),
            model.readout.weight.detach().numpy(),
        ]
        err = max(float(np.abs(a - b).max()) for a, b in zip(got, params))
        moved = max(float(np.abs(a - b).max()) for a, b in zip(got, (U, W, V)))
        print(json.dumps({"check": trunc[0] if trunc[1] is None else f"per-output:{trunc[1]}",
                          "max_abs_diff": err, "max_update": moved}))
        assert err < 1e-10, err


DEFAULT_SETTINGS = [
    # batch, truncation, dtype
    (1, "per-output:4", "f32"),
    (1, "per-output:4", "f64"),
    (1, "full", "f32"),
    (32, "full", "f32"),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int)
    ap.add_argument("--truncation", type=parse_truncation)
    ap.add_argument("--dtype", choices=["f32", "f64"])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--sparse-embedding", action="store_true")
    ap.add_argument("--seconds", type=float, default=3.0, help="timed seconds per setting")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vocab", type=int, default=8000)
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--seq-len", type=int, default=20)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    torch.set_num_interop_threads(1)
    if args.check:
        check()
        return
    if args.batch is None and args.truncation is None and args.dtype is None:
        settings = [(b, parse_truncation(t), d) for b, t, d in DEFAULT_SETTINGS]
    else:
        settings = [(args.batch or 1, args.truncation or ("per-output", 4), args.dtype or "f32")]
    for batch, trunc, dtype in settings:
        for threads in args.threads:
            r = measure(batch, trunc, dtype, threads, args.sparse_embedding, args.seconds,
                        args.seed, args.vocab, args.hidden, args.seq_len)
            print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
