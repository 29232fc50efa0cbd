#!/usr/bin/env bash
# Interleaved A/B timing of two or more builds of the throughput example on the language
# model (batch 1 with per-output:4 and batch 32 with full BPTT, f32, 1 and 2 threads) on the
# AVX-512 and the AVX2 kernels (RECUR_ISA). Each round runs every setting of every build back
# to back, so all builds see the same load. JSON lines, tagged with "label", "isa" and
# "round", go to OUT; `ab_summary.py OUT` prints the medians and the ratios to the first build.
#
#   OUT=/tmp/ab.jsonl ROUNDS=2 bash scripts/peers/ab_lm.sh before=/tmp/old/throughput \
#       after=target/release/examples/throughput
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
OUT="${OUT:-/tmp/ab.jsonl}"
ROUNDS="${ROUNDS:-2}"
ISAS="${ISAS:-avx512 avx2}"
THREADS="${THREADS:-1 2}"
settings=(
  "--batch 1 --truncation per-output:4 --dtype f32 --steps 1500"
  "--batch 32 --truncation full --dtype f32 --steps 75"
)
: >"$OUT"
for round in $(seq 1 "$ROUNDS"); do
  for isa in $ISAS; do
    for s in "${settings[@]}"; do
      for t in $THREADS; do
        for entry in "$@"; do
          # shellcheck disable=SC2086
          RECUR_ISA="$isa" "${entry#*=}" $s --threads "$t" | grep '^{' |
            python3 "$here/ab_summary.py" --tag "${entry%%=*}" "$isa" "$round" >>"$OUT"
        done
      done
    done
  done
done
