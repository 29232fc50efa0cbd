#!/usr/bin/env bash
# Interleaved timing of the gated character model (2 layers, hidden 256, vocabulary 65,
# batch 32, sequences of 100, full BPTT, Adam): recur's throughput example and
# gated_torch.py, LSTM and GRU, 1 and 2 threads, ROUNDS rounds. Each round runs every
# setting of every implementation once, so all of them see the same load. JSON lines go to
# OUT/gated.jsonl (tagged with the round and the binary's label), load averages to
# OUT/gated_uptime.txt.
#
#   RECUR="after=target/release/examples/throughput" ROUNDS=3 OUT=/tmp/gated \
#       bash scripts/peers/gated_session.sh
#   RECUR="before=/tmp/old/throughput after=target/release/examples/throughput" ...
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
PY="${PY:-python3}"
RECUR="${RECUR:-recur=$here/../../target/release/examples/throughput}"
ROUNDS="${ROUNDS:-3}"
OUT="${OUT:-/tmp/gated}"
STEPS="${STEPS:-8}"
SECONDS_PER="${SECONDS_PER:-3}"
mkdir -p "$OUT"
res="$OUT/gated.jsonl"
: >"$res"
: >"$OUT/gated_uptime.txt"
work="--layers 2 --vocab 65 --hidden 256 --batch 32 --seq-len 100 --truncation full"

tag() { # add "round" and "label" to each JSON line
  "$PY" -c '
import json, sys
for line in sys.stdin:
    if line.startswith("{"):
        d = json.loads(line)
        d["round"], d["label"] = int(sys.argv[1]), sys.argv[2]
        print(json.dumps(d), flush=True)
' "$1" "$2"
}

for round in $(seq 1 "$ROUNDS"); do
  echo "round $round start: $(uptime)" >>"$OUT/gated_uptime.txt"
  for cell in lstm gru; do
    for t in 1 2; do
      for entry in $RECUR; do
        # shellcheck disable=SC2086
        "${entry#*=}" --cell "$cell" $work --steps "$STEPS" --threads "$t" \
          | tag "$round" "${entry%%=*}" | tee -a "$res"
      done
      "$PY" "$here/gated_torch.py" --cell "$cell" --threads "$t" --seconds "$SECONDS_PER" \
        2>/dev/null | tag "$round" torch | tee -a "$res"
    done
  done
  echo "round $round end: $(uptime)" >>"$OUT/gated_uptime.txt"
done
