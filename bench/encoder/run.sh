#!/usr/bin/env bash
# zrank vs ONNX Runtime int8, side by side. See bench/encoder/README.md.
#
# Usage: bench/encoder/run.sh [side_by_side.py options]
#   bench/encoder/run.sh --quick --rounds 1 --seconds 1      # smoke test
#   bench/encoder/run.sh --json                               # full grid -> bench/results/encoder-side-by-side.json
#   bench/encoder/run.sh --json /tmp/x.json --threads 1       # any other file
# Env: ZRANK (zrank binary, default .build/release/zrank), ZRANK_MODEL (default models/minilm-l6-int8.zrm).
# Never builds zrank: run `make` first.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
py="$here/.venv/bin/python"
export ZRANK="${ZRANK:-$root/.build/release/zrank}"
export ZRANK_MODEL="${ZRANK_MODEL:-$root/models/minilm-l6-int8.zrm}"

"$here/setup-venv.sh"

# (Re-)export the ORT models unless both exist and are newer than the exporter.
onnx_dir="$here/.cache"
fp32="$onnx_dir/minilm-l6-fp32.onnx"
int8="$onnx_dir/minilm-l6-int8-dynamic.onnx"
if [[ -f "$fp32" && -f "$int8" && "$fp32" -nt "$here/export_onnx.py" && "$int8" -nt "$here/export_onnx.py" ]]; then
  echo "run.sh: ONNX models up to date in $onnx_dir" >&2
else
  "$py" "$here/export_onnx.py" --out-dir "$onnx_dir"
fi

# A bare --json (last argument, or followed by another option) means the default results file.
args=()
while (($#)); do
  if [[ "$1" == "--json" && ( $# -eq 1 || "$2" == --* ) ]]; then
    args+=("--json" "$root/bench/results/encoder-side-by-side.json")
  else
    args+=("$1")
  fi
  shift
done

"$py" "$here/side_by_side.py" --onnx "$int8" "${args[@]+"${args[@]}"}"

# Then zrank's GEMM on the MiniLM shapes at M = 1..8 as a fraction of the multiply instruction's measured peak, for
# the kernel set zrank picked on this CPU (bench/kernels/run.sh; ZRANK_GEMM_SECONDS per cell, 0 skips it).
gemm_seconds="${ZRANK_GEMM_SECONDS:-0.2}"
if [[ "$gemm_seconds" != "0" ]]; then
  isa="$("$ZRANK" --version | sed -n 's/.*kernels: \([a-z0-9]*\).*/\1/p')"
  "$root/bench/kernels/run.sh" "$gemm_seconds" | "$py" "$here/gemm_table.py" "$isa"
fi
