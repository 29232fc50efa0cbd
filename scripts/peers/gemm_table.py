#!/usr/bin/env python3
"""Markdown tables of GFLOP/s from the criterion results of `cargo bench -p recur-linalg --bench gemm`.

Reads target/criterion/<type>_<shape>/<implementation>/<m>x<n>x<k>/new/{benchmark,estimates}.json
(the median time of the last run of each benchmark) and prints, per scalar type, one row per
shape: each recur ISA path, the two crates, and the ratio of each recur path to the faster crate.

    python3 scripts/peers/gemm_table.py [target/criterion] [--label gemm-crate=gemm-v4]
"""

import json
import re
import sys
from pathlib import Path

RECUR = ["recur-avx512", "recur-avx2", "recur-portable"]
CRATES = ["gemm-crate", "matrixmultiply"]


def load(root):
    """{(type, shape): {"dims": str, impl: gflops}} from every benchmark.json under root."""
    rows = {}
    for bench in sorted(root.glob("*/*/*/new/benchmark.json")):
        meta = json.loads(bench.read_text())
        est = json.loads((bench.parent / "estimates.json").read_text())
        flops = meta["throughput"]["Elements"]
        gflops = flops / est["median"]["point_estimate"]  # flop per ns = GFLOP/s
        dtype, shape = meta["group_id"].split("/", 1)
        row = rows.setdefault((dtype, shape), {"dims": meta["value_str"]})
        row[meta["function_id"]] = gflops
    return rows


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    root = Path(args[0] if args else "target/criterion")
    rows = load(root)
    bench = Path(__file__).resolve().parents[2] / "crates/linalg/benches/gemm.rs"
    order = re.findall(r'shape\("(\w+)"', bench.read_text())
    rows = dict(sorted(rows.items(), key=lambda kv: order.index(kv[0][1]) if kv[0][1] in order else len(order)))
    for dtype in sorted({d for d, _ in rows}):
        impls = [i for i in RECUR + CRATES if any(i in r for (d, _), r in rows.items() if d == dtype)]
        recur = [i for i in impls if i in RECUR]
        head = ["shape", "m×n×k"] + impls + [f"{i.removeprefix('recur-')} / best crate" for i in recur]
        print(f"\n{dtype}, GFLOP/s (median), one thread\n")
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for (d, shape), r in rows.items():
            if d != dtype:
                continue
            best = max((r[c] for c in CRATES if c in r), default=None)
            cells = [shape, r["dims"].replace("x", "×")]
            cells += [f"{r[i]:.1f}" if i in r else "–" for i in impls]
            cells += [f"{r[i] / best:.2f}" if i in r and best else "–" for i in recur]
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
