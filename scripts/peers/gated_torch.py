#!/usr/bin/env python3
"""PyTorch peer of `examples/throughput.rs --cell lstm|gru`: the gated character model.

Model (vocabulary V, hidden H, L layers): one-hot input rows (``F.one_hot(x, V)``, so the
first layer's input product ``x W_ih`` is a product with one-hot rows, the same numbers as
recur's row gather of ``w_ih``) feeding ``nn.LSTM(V, H, L)`` or ``nn.GRU(V, H, L)`` (both
biases, PyTorch's defaults), readout ``nn.Linear(H, V)`` with bias,
``nn.CrossEntropyLoss()`` (mean over the T*B tokens), ``torch.optim.Adam(lr=0.002)``, one
update per batch of B sequences of T characters with full BPTT from a zero state. Token ids
(inputs and targets) are drawn uniformly with a fixed seed; a pool of 16 batches is cycled.

Threads: ``torch.set_num_threads(n)`` (and one inter-op thread). Each setting warms up
(>= 0.5 s), then times whole updates for ``--seconds`` and prints one JSON line.

    python gated_torch.py --cell lstm gru --threads 1 2
"""

import argparse
import json
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

POOL = 16


class GatedLM(nn.Module):
    def __init__(self, cell, vocab, hidden, layers):
        super().__init__()
        self.vocab = vocab
        rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.rnn = rnn(vocab, hidden, layers)
        self.readout = nn.Linear(hidden, vocab)

    def forward(self, x):
        T, B = x.shape
        out, _ = self.rnn(F.one_hot(x, self.vocab).to(self.readout.weight.dtype))
        return self.readout(out.reshape(T * B, -1))


def measure(cell, threads, seconds, seed, vocab, hidden, layers, batch, seq_len):
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    pool = [
        (
            torch.from_numpy(rng.integers(0, vocab, size=(seq_len, batch))),
            torch.from_numpy(rng.integers(0, vocab, size=(seq_len, batch))),
        )
        for _ in range(POOL)
    ]
    model = GatedLM(cell, vocab, hidden, layers)
    opt = torch.optim.Adam(model.parameters(), lr=0.002)
    ce = nn.CrossEntropyLoss()

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = ce(model(x), y.reshape(-1))
        loss.backward()
        opt.step()

    i = 0
    warm_until = time.perf_counter() + max(0.5, seconds / 10)
    while time.perf_counter() < warm_until or i < 2:
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
    return {
        "impl": "torch",
        "cell": cell,
        "layers": layers,
        "batch": batch,
        "seq_len": seq_len,
        "vocab": vocab,
        "hidden": hidden,
        "dtype": "f32",
        "threads": threads,
        "truncation": "full",
        "tokens_per_s": steps * batch * seq_len / elapsed,
        "ms_per_step": 1e3 * elapsed / steps,
        "steps": steps,
        "torch": torch.__version__,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cell", choices=["lstm", "gru"], nargs="+", default=["lstm", "gru"])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--seconds", type=float, default=3.0, help="timed seconds per setting")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vocab", type=int, default=65)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=100)
    args = ap.parse_args()
    torch.set_num_interop_threads(1)
    for cell in args.cell:
        for threads in args.threads:
            r = measure(cell, threads, args.seconds, args.seed, args.vocab, args.hidden,
                        args.layers, args.batch, args.seq_len)
            print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
