#!/usr/bin/env python3
"""Summarises gated_session.sh's JSON lines: per cell, thread count and label, the median
tokens/s with its range, and each label's ratio to torch, per round (median and range).

    python3 scripts/peers/gated_summary.py /tmp/gated/gated.jsonl
"""

import json
import statistics
import sys
from collections import defaultdict


def main(path):
    rows = [json.loads(line) for line in open(path) if line.startswith("{")]
    speed = defaultdict(dict)  # (cell, threads, label) -> {round: tokens/s}
    for r in rows:
        speed[(r["cell"], r["threads"], r["label"])][r["round"]] = r["tokens_per_s"]
    print("| cell | threads | impl | tokens/s median | min–max | ratio to torch, per-round median | min–max |")
    print("|---|---|---|---|---|---|---|")
    for (cell, threads, label), by_round in sorted(speed.items()):
        values = list(by_round.values())
        torch = speed.get((cell, threads, "torch"), {})
        ratios = [v / torch[k] for k, v in by_round.items() if k in torch]
        ratio = f"{statistics.median(ratios):.2f} | {min(ratios):.2f}–{max(ratios):.2f}"
        if label == "torch":
            ratio = "– | –"
        print(f"| {cell} | {threads} | {label} | {statistics.median(values):,.0f} | "
              f"{min(values):,.0f}–{max(values):,.0f} | {ratio} |")


if __name__ == "__main__":
    main(sys.argv[1])
