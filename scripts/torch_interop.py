#!/usr/bin/env python3
"""The PyTorch side of recur's weight interchange (docs/pytorch.md).

For each case and dtype the Rust example `examples/torch_interop.rs` also knows:

(a) recur -> PyTorch: loads the state_dict recur wrote (`<case>-<dtype>.recur.safetensors`,
    module prefixes `rnn.` and `decoder.`) into `Net` with `load_state_dict(strict=True)`,
    and the bare cell (`.bare.safetensors`) into `nn.RNN`/`nn.LSTM`/`nn.GRU` alone, runs
    recur's inputs and prints the largest absolute difference from the logits and hidden
    states recur computed (`.recur-io.safetensors`);
(b) PyTorch -> recur: trains `Net` briefly with Adam on random data and writes its
    state_dict (`.torch.safetensors`) and fresh inputs with their logits
    (`.torch-io.safetensors`), which the Rust example loads and reproduces.

    python3 scripts/torch_interop.py target/torch_interop

Exits with status 1 when a difference exceeds 1e-6 (f32) or 1e-14 (f64) times the largest
value compared (at least 1): a few roundings apart.
"""

import pathlib
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

T, B, INPUT, HIDDEN, OUTPUT = 6, 2, 3, 5, 4
CASES = {
    "rnn_tanh": lambda: nn.RNN(INPUT, HIDDEN, num_layers=1, nonlinearity="tanh"),
    "rnn_relu": lambda: nn.RNN(INPUT, HIDDEN, num_layers=2, nonlinearity="relu"),
    "lstm": lambda: nn.LSTM(INPUT, HIDDEN, num_layers=2),
    "gru": lambda: nn.GRU(INPUT, HIDDEN, num_layers=2),
}
DTYPES = {"f32": torch.float32, "f64": torch.float64}
TOLERANCE = {"f32": 1e-6, "f64": 1e-14}


class Net(nn.Module):
    """A recurrent module and a linear decoder on every step's output."""

    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn
        self.decoder = nn.Linear(HIDDEN, OUTPUT)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.decoder(out), out


def max_diff(ours, theirs):
    """The largest absolute difference, and the largest value (at least 1) as its scale."""
    return (ours - theirs).abs().max().item(), max(1.0, theirs.abs().max().item())


def recur_to_torch(stem, case, dtype):
    """(a): the differences of logits and bare-cell outputs, or None before recur ran."""
    model, bare, io = (pathlib.Path(f"{stem}.{k}.safetensors") for k in ("recur", "bare", "recur-io"))
    if not (model.exists() and bare.exists() and io.exists()):
        return None
    with safe_open(model, "pt") as f:
        described = f.metadata()["module"]
    # The constructor recur records is the one this script builds.
    assert repr(eval(described, {"nn": nn})) == repr(CASES[case]()), described
    net = Net(CASES[case]()).to(dtype)
    net.load_state_dict(load_file(model), strict=True)
    rnn = CASES[case]().to(dtype)
    rnn.load_state_dict(load_file(bare), strict=True)
    tensors = load_file(io)
    with torch.no_grad():
        logits, _ = net(tensors["x"])
        out, _ = rnn(tensors["x"])
    return max_diff(logits, tensors["logits"]), max_diff(out, tensors["hidden"])


def torch_to_recur(stem, case, dtype, seed):
    """(b): a briefly trained state_dict, fresh inputs and their logits."""
    torch.manual_seed(seed)
    net = Net(CASES[case]()).to(dtype)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.02)
    x = torch.randn(T, B, INPUT, dtype=dtype)
    y = torch.randint(0, OUTPUT, (T, B))
    for _ in range(50):
        optimizer.zero_grad()
        logits, _ = net(x)
        loss = nn.functional.cross_entropy(logits.reshape(-1, OUTPUT), y.reshape(-1))
        loss.backward()
        optimizer.step()
    x = torch.randn(T, B, INPUT, dtype=dtype)
    with torch.no_grad():
        logits, _ = net(x)
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    save_file(state, f"{stem}.torch.safetensors")
    save_file({"x": x, "logits": logits.contiguous()}, f"{stem}.torch-io.safetensors")


def main():
    directory = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/torch_interop")
    directory.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    failed = False
    for seed, case in enumerate(CASES):
        for name, dtype in DTYPES.items():
            stem = directory / f"{case}-{name}"
            diffs = recur_to_torch(stem, case, dtype)
            if diffs is None:
                print(f"{case:>9} {name}: no recur file yet")
            else:
                (d_logits, scale), (d_hidden, _) = diffs
                print(f"{case:>9} {name}: recur -> PyTorch, max |d logits| = {d_logits:.3e} "
                      f"(max |logit| {scale:.1f}), bare cell max |d h| = {d_hidden:.3e}")
                failed |= not all(d <= TOLERANCE[name] * s for d, s in diffs)
            torch_to_recur(stem, case, dtype, seed)
    print(f"PyTorch state_dicts written to {directory}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
