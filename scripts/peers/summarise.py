#!/usr/bin/env python3
"""Median tokens/s per (batch, truncation, dtype, threads, impl) over the rounds of
run_session.sh, with min-max, the ratio of recur's median to the peer's median in the same
setting (medians, and best runs), and with --quiet-columns the same over "quiet" runs only: runs during whose last WINDOW seconds (the
timed part) other processes used less than QUIET cores on average (other_cpu.txt, written
by cpu_sampler.py beside results.jsonl).

    python3 summarise.py /tmp/peers-results/results.jsonl [--quiet-columns] [--window 3.5] [--quiet 0.15]
"""

import argparse
import json
import os
import statistics
from collections import defaultdict

ap = argparse.ArgumentParser()
ap.add_argument("results")
ap.add_argument("--window", type=float, default=3.5)
ap.add_argument("--quiet", type=float, default=0.15)
ap.add_argument("--quiet-columns", action="store_true")
args = ap.parse_args()

rows = [json.loads(line) for line in open(args.results) if line.strip()]
samples = []
other_path = os.path.join(os.path.dirname(args.results), "other_cpu.txt")
if os.path.exists(other_path):
    samples = [tuple(map(float, l.split())) for l in open(other_path) if l.strip()]


def other_cpu(t_end):
    xs = [c for t, c in samples if t_end - args.window <= t <= t_end + 0.5]
    return sum(xs) / len(xs) if xs else float("nan")


groups, quiet = defaultdict(list), defaultdict(list)
for r in rows:
    key = (r["batch"], r["truncation"], r["dtype"], r["threads"], r["impl"])
    groups[key].append(r["tokens_per_s"])
    if "t_end" in r and other_cpu(r["t_end"]) < args.quiet:
        quiet[key].append(r["tokens_per_s"])

med = {k: statistics.median(v) for k, v in groups.items()}
best = {k: max(v) for k, v in groups.items()}
qmed = {k: statistics.median(v) for k, v in quiet.items() if v}
order = {"recur": 0, "numpy-classic": 1, "numpy-vectorised": 2, "torch": 3,
         "torch-sparse-emb": 4, "jax": 5}


def ratio(table, key):
    rec = table.get(key[:4] + ("recur",))
    if key[4] == "recur":
        return "-"
    return f"{rec / table[key]:.2f}" if rec and key in table else "n/a"


head = ("| batch | truncation | dtype | threads | impl | tokens/s median | min-max | runs "
        "| recur/impl (medians) | recur/impl (best runs) |")
if args.quiet_columns:
    head += " tokens/s median (quiet runs) | quiet runs | recur/impl (quiet) |"
print(head)
print("|" + "---|" * (head.count("|") - 1))
for key in sorted(med, key=lambda k: (k[0], k[1] != "per-output:4", k[2], k[3], order.get(k[4], 9))):
    b, t, d, th, impl = key
    v = groups[key]
    line = (f"| {b} | {t} | {d} | {th} | {impl} | {med[key]:,.0f} | {min(v):,.0f}-{max(v):,.0f} "
            f"| {len(v)} | {ratio(med, key)} | {ratio(best, key)} |")
    if args.quiet_columns:
        q = f"{qmed[key]:,.0f}" if key in qmed else "-"
        line += f" {q} | {len(quiet[key])} | {ratio(qmed, key)} |"
    print(line)
