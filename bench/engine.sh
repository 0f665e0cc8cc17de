#!/usr/bin/env bash
# The engine's first benchmark: GEMM GOP/s on the MiniLM shapes and encoder sequences/s at batch 1 and 32,
# sequence length 16 and 64, one thread; then batch 32 x 16/32 tokens at 1 and 2 threads, alternating, 3 rounds. Writes bench/results/engine.jsonl (one JSON object per line) and prints it.
# Usage: bench/engine.sh [seconds-per-cell]   (needs `make model` first)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-3}"
zrank=.build/release/zrank
model=models/minilm-l6-int8.zrm
out=bench/results/engine.jsonl
{
  echo "{\"command\": \"bench/engine.sh $secs\", \"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\", \"cpu\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\", \"cores\": $(nproc), \"zrank\": \"$($zrank --version)\"}"
  bench/kernels/run.sh 0.5 | grep -v '"scalar"'
  for batch in 1 32; do
    for seq in 16 64; do
      $zrank bench-encoder --model "$model" --batch "$batch" --seq "$seq" --threads 1 --seconds "$secs" | tail -1
    done
  done
  # Two-thread scaling, alternating with one thread (3 rounds each).
  for round in 1 2 3; do
    for seq in 16 32; do
      for threads in 1 2; do
        $zrank bench-encoder --model "$model" --batch 32 --seq "$seq" --threads "$threads" --seconds "$secs" | tail -1
      done
    done
  done
} | tee "$out"
