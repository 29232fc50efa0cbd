#!/usr/bin/env bash
# Interleaved A/B of recur-linalg's products: two builds of the criterion `gemm` bench binary
# run alternately, shape by shape and instruction set by instruction set, PASSES times, on
# the thread's CPU clock. Build each with `cargo bench -p recur-linalg --bench gemm --no-run`
# and copy target/release/deps/gemm-<hash> aside. Prints GFLOP/s per pass and the ratio of
# the best runs (second build ÷ first).
#
#   SHAPES="logits_b1 dw_b1 logits_b32 dw_b32 lstm_x lstm_dw" PASSES=2 \
#       bash scripts/peers/ab_gemm.sh before=/tmp/gemm_old after=/tmp/gemm_new
set -euo pipefail
SHAPES="${SHAPES:-logits_b1 dw_b1 logits_b32 dw_b32 lstm_x lstm_dw}"
PASSES="${PASSES:-2}"
ISAS="${ISAS:-avx512 avx2}"
raw="$(mktemp)"
for pass in $(seq 1 "$PASSES"); do
  for shape in $SHAPES; do
    for isa in $ISAS; do
      for entry in "$@"; do
        echo "@@ ${entry%%=*}" >>"$raw"
        RECUR_BENCH_CLOCK=thread-cpu "${entry#*=}" --bench "^f32/$shape/recur-$isa(-packed)?/" \
          --warm-up-time 1 --measurement-time 2 --noplot >>"$raw" 2>/dev/null
      done
    done
  done
done
python3 - "$raw" <<'PY'
import re, sys
from collections import defaultdict
runs, names, labels = defaultdict(list), [], []
label = name = None
for line in open(sys.argv[1]):
    if line.startswith("@@"):
        label = line.split()[1]
        labels += [label] if label not in labels else []
    elif re.match(r"^f32/\S+$", line.strip()):
        name = line.strip()
        names += [name] if name not in names else []
    elif name and (m := re.search(r"thrpt:\s+\[\S+ \S+ ([\d.]+) Gelem", line)):
        runs[(name, label)].append(float(m.group(1)))
        name = None
a, b = labels[:2]
for n in names:
    x, y = runs[(n, a)], runs[(n, b)]
    print(f"{n:48} {a} {[round(v, 1) for v in x]} {b} {[round(v, 1) for v in y]} {max(y) / max(x):.3f}")
PY
rm -f "$raw"
