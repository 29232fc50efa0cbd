#!/usr/bin/env python3
"""Medians of tokens/s per (isa, batch, threads, build) over the rounds of ab_lm.sh, and each
build's ratio to the first build named on its command line.

    python3 scripts/peers/ab_summary.py /tmp/ab.jsonl
    ... | python3 scripts/peers/ab_summary.py --tag LABEL ISA ROUND   (used by ab_lm.sh)
"""

import json
import statistics
import sys
from collections import defaultdict

if sys.argv[1] == "--tag":
    label, isa, rnd = sys.argv[2], sys.argv[3], int(sys.argv[4])
    for line in sys.stdin:
        d = json.loads(line)
        d.update(label=label, isa=isa, round=rnd)
        print(json.dumps(d), flush=True)
    sys.exit()

runs = defaultdict(list)
labels = []
for line in open(sys.argv[1]):
    d = json.loads(line)
    runs[(d["isa"], d["batch"], d["threads"], d["label"])].append(d["tokens_per_s"])
    if d["label"] not in labels:
        labels.append(d["label"])
columns = labels + [f"{l} ÷ {labels[0]}" for l in labels[1:]]
print("| isa | batch | threads | " + " | ".join(columns) + " |")
print("|---" * (3 + len(columns)) + "|")
for key in sorted({k[:3] for k in runs}):
    med = [statistics.median(runs[key + (l,)]) for l in labels]
    cells = [f"{m:,.0f}" for m in med] + [f"{m / med[0]:.3f}" for m in med[1:]]
    print(f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join(cells) + " |")
