#!/usr/bin/env python3
"""Markdown tables of GFLOP/s from the criterion results of `cargo bench -p recur-linalg --bench gemm`.

Reads target/criterion/<type>_<shape>/<implementation>/<m>x<n>x<k>/new/{benchmark,estimates}.json
(the median time of each benchmark) and prints, per scalar type and recur ISA path, one table
with a row per shape: that path, the crates it is compared with (all of them for AVX-512, their
AVX2 kernels for the AVX2 and portable paths) and its ratio to the fastest of them.

    python3 scripts/peers/gemm_table.py [DIR[@avx512] ...]

Each DIR is a criterion output directory (default target/criterion), for instance a copy kept
from each of several runs: an entry measured in several is given its best speed, which on a
shared machine is the one least slowed by other work. A DIR ending in `@avx512` holds a run
built with `--features peer-avx512`: its peers are renamed `gemm-crate-avx512` and
`matrixmultiply-avx512`, and only they are compared with recur's AVX-512 path.
"""

import json
import re
import sys
from pathlib import Path

RECUR = ["recur-avx512", "recur-avx2", "recur-portable"]
AVX2_CRATES = ["gemm-crate", "matrixmultiply"]
AVX512_CRATES = [c + "-avx512" for c in AVX2_CRATES]


def load(root, rename, rows):
    """Adds {(type, shape): {"dims": str, impl: gflops}} from every benchmark.json under root."""
    for bench in sorted(root.glob("*/*/*/new/benchmark.json")):
        meta = json.loads(bench.read_text())
        est = json.loads((bench.parent / "estimates.json").read_text())
        flops = meta["throughput"]["Elements"]
        gflops = flops / est["median"]["point_estimate"]  # flop per ns = GFLOP/s
        dtype, shape = meta["group_id"].split("/", 1)
        row = rows.setdefault((dtype, shape), {"dims": meta["value_str"]})
        impl = rename.get(meta["function_id"], meta["function_id"])
        row[impl] = max(gflops, row.get(impl, 0.0))


def main():
    rows = {}
    for arg in sys.argv[1:] or ["target/criterion"]:
        path, _, tag = arg.partition("@")
        rename = {c: f"{c}-{tag}" for c in AVX2_CRATES} if tag else {}
        load(Path(path), rename, rows)
    bench = Path(__file__).resolve().parents[2] / "crates/linalg/benches/gemm.rs"
    order = re.findall(r'shape\("(\w+)"', bench.read_text())
    rows = dict(sorted(rows.items(), key=lambda kv: order.index(kv[0][1]) if kv[0][1] in order else len(order)))
    for dtype in sorted({d for d, _ in rows}):
        mine = {k: r for k, r in rows.items() if k[0] == dtype}
        for impl in RECUR:
            if not any(impl in r for r in mine.values()):
                continue
            # Like against like: the AVX-512 path against the crates' AVX-512 kernels, the
            # others against their AVX2 kernels.
            crates = AVX512_CRATES if impl == "recur-avx512" else AVX2_CRATES
            crates = [c for c in crates if any(c in r for r in mine.values())]
            head = ["shape", "m×n×k", impl] + crates + ["ratio to the best crate"]
            print(f"\n{dtype}, {impl}: GFLOP/s (median time; best over the runs given), one thread\n")
            print("| " + " | ".join(head) + " |")
            print("|" + "---|" * len(head))
            for (_, shape), r in mine.items():
                best = max((r[c] for c in crates if c in r), default=None)
                cells = [shape, r["dims"].replace("x", "×")]
                cells += [f"{r[i]:.1f}" if i in r else "–" for i in [impl] + crates]
                cells.append(f"{r[impl] / best:.2f}" if impl in r and best else "–")
                print("| " + " | ".join(cells) + " |")

if __name__ == "__main__":
    main()
