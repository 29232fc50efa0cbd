#!/usr/bin/env bash
# Interleaved timing session: recur's throughput example and the numpy, PyTorch and JAX
# peers, ROUNDS rounds, each round running every implementation once. JSON lines go to
# OUT/results.jsonl (each tagged with its round), load averages to OUT/uptime.txt.
#
#   PY=/tmp/peers-venv/bin/python RECUR=target/release/examples/throughput \
#       ROUNDS=3 OUT=/tmp/peers-results bash scripts/peers/run_session.sh
#   python3 scripts/peers/summarise.py /tmp/peers-results/results.jsonl
#
# ISA=avx2 runs everything on AVX2 kernels, so an AVX-512 host measures what an AVX2 host
# would run: RECUR_ISA=avx2 for recur, OPENBLAS_CORETYPE=Haswell for numpy's OpenBLAS,
# ATEN_CPU_CAPABILITY=avx2, MKL_ENABLE_INSTRUCTIONS=AVX2 and ONEDNN_MAX_CPU_ISA=AVX2 for
# PyTorch, XLA_FLAGS=--xla_cpu_max_isa=AVX2 for JAX. Every line is tagged with "isa".
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
PY="${PY:-/tmp/peers-venv/bin/python}"
RECUR="${RECUR:-$here/../../target/release/examples/throughput}"
ROUNDS="${ROUNDS:-3}"
OUT="${OUT:-/tmp/peers-results}"
SECONDS_PER="${SECONDS_PER:-3}"
ISA="${ISA:-native}"
case "$ISA" in
  native) numpy_env=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE) ;;
  avx2)
    export RECUR_ISA=avx2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 \
      ONEDNN_MAX_CPU_ISA=AVX2 XLA_FLAGS=--xla_cpu_max_isa=AVX2
    numpy_env=(env OPENBLAS_CORETYPE=Haswell)
    ;;
  *) echo "ISA must be native or avx2, not $ISA" >&2; exit 2 ;;
esac
mkdir -p "$OUT"
res="$OUT/results.jsonl"
: >"$res"
: >"$OUT/uptime.txt"

"$PY" "$here/cpu_sampler.py" $$ 0.5 >"$OUT/other_cpu.txt" &

tag() { # add "round" and "t_end", and name recur's line
  "$PY" -c '
import json, sys, time
r = int(sys.argv[1])
for line in sys.stdin:
    line = line.strip()
    if not line.startswith("{"):
        continue
    d = json.loads(line)
    d.setdefault("impl", "recur")
    d["round"] = r
    d["t_end"] = time.time()
    d["isa"] = sys.argv[2]
    print(json.dumps(d), flush=True)
' "$1" "$ISA"
}

# recur: step counts chosen so each setting times >= ~3 s on this machine.
recur_settings=(
  "--batch 1 --truncation per-output:4 --dtype f32 --steps 1500"
  "--batch 1 --truncation per-output:4 --dtype f64 --steps 700"
  "--batch 1 --truncation full --dtype f32 --steps 1600"
  "--batch 32 --truncation full --dtype f32 --steps 75"
)

for round in $(seq 1 "$ROUNDS"); do
  echo "round $round start: $(uptime)" >>"$OUT/uptime.txt"
  for s in "${recur_settings[@]}"; do
    for t in 1 2; do
      # shellcheck disable=SC2086
      "$RECUR" $s --threads "$t" | tag "$round" | tee -a "$res"
    done
  done
  "${numpy_env[@]}" \
    "$PY" "$here/lm_numpy.py" --seconds "$SECONDS_PER" 2>>"$OUT/numpy_blas.txt" | tag "$round" | tee -a "$res"
  "$PY" "$here/lm_torch.py" --seconds "$SECONDS_PER" 2>/dev/null | tag "$round" | tee -a "$res"
  "$PY" "$here/lm_torch.py" --seconds "$SECONDS_PER" --sparse-embedding \
    --batch 1 --truncation per-output:4 --dtype f32 2>/dev/null | tag "$round" | tee -a "$res"
  "$PY" "$here/lm_jax.py" --seconds "$SECONDS_PER" 2>/dev/null | tag "$round" | tee -a "$res"
  echo "round $round end: $(uptime)" >>"$OUT/uptime.txt"
done
