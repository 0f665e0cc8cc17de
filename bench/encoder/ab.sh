#!/usr/bin/env bash
# Two zrank builds' encoders alternated on the same model: `zrank bench-encoder` for each shape, both builds (the
# other first in odd rounds, this one first in even rounds), ROUNDS times (the machine is shared and noisy: compare
# the two only within one run). One JSON line per measurement:
# {"tree": "other"|"this", "round": R, "batch": B, "seq": S, "summary": {...}}.
# Usage: bench/encoder/ab.sh OTHER_ZRANK [ROUNDS [SECONDS]]
#        e.g. git worktree add /tmp/base <commit> && (cd /tmp/base && swift build -c release --product zrank)
#             bench/encoder/ab.sh /tmp/base/.build/release/zrank 3 1.5
# Env: ZRANK (this build, default .build/release/zrank), ZRANK_MODEL (default models/minilm-l6-int8.zrm),
#      SHAPES (space-separated BATCHxSEQ, default: single queries of 4, 6, 8, 12 and 16 tokens, and 32 x 16).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
other="${1:?usage: bench/encoder/ab.sh OTHER_ZRANK [ROUNDS [SECONDS]]}"
this="${ZRANK:-$root/.build/release/zrank}"
model="${ZRANK_MODEL:-$root/models/minilm-l6-int8.zrm}"
shapes="${SHAPES:-1x4 1x6 1x8 1x12 1x16 32x16}"
echo "this: $("$this" --version); other: $("$other" --version)" >&2
for round in $(seq "${2:-3}"); do
  for shape in $shapes; do
    batch="${shape%x*}" seq="${shape#*x}"
    order="other this"; (( round % 2 == 0 )) && order="this other"  # neither side always goes first
    for tree in $order; do
      bin="$this"; [[ $tree == other ]] && bin="$other"
      line=$("$bin" bench-encoder --model "$model" --batch "$batch" --seq "$seq" --seconds "${3:-1.5}" | tail -1)
      echo "{\"tree\": \"$tree\", \"round\": $round, \"batch\": $batch, \"seq\": $seq, \"summary\": $line}"
    done
  done
done
