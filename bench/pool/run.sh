#!/usr/bin/env bash
# Requests/s and p50/p99 through the pool with 1 and 2 workers for 100 and 1000 candidates, plus the SLO sweep
# (p99 <= 10 ms) for the same cases; each with its zrank-bench command line, JSON and plot, in bench/results/pool/.
# Usage: bench/pool/run.sh [seconds-per-run]   (needs `make model`; builds the demo index when missing)
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/lib/pool.sh
secs="${1:-10}"
zrank=.build/release/zrank
bench=.build/release/zrank-bench
model=models/minilm-l6-int8.zrm
index=models/demo-catalog.zri
out=bench/results/pool
mkdir -p "$out"
[ -f "$index" ] || "$zrank" index --model "$model" --catalog bench/data/catalog.jsonl --out "$index"
summary="$out/summary.md"
{
  echo "# Pool throughput and latency"
  echo
  echo "Machine: $(nproc) vCPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%FT%TZ). Produced by \`bench/pool/run.sh $secs\`."
  echo "Pool: \`zrank serve --workers N\` over tcp on 127.0.0.1, model $($zrank inspect --json $model | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])'), 5,000-item demo catalog, real WANDS queries, top_k 10."
  echo "The load generator shares the 2 vCPUs with the pool. Closed-loop figures are capacity; the sweep finds the highest open-loop rate whose p99 stays at or under 10 ms."
  echo
  echo "| workers | candidates | closed-loop req/s (concurrency 4) | p50 ms | p99 ms | sweep: best rate with p99 <= 10 ms |"
  echo "| --- | --- | --- | --- | --- | --- |"
} > "$summary"
port=5700
for workers in 1 2; do
  for candidates in 100 1000; do
    port=$((port + 1))
    endpoint="tcp://127.0.0.1:$port"
    "$zrank" serve --model "$model" --index "$index" --workers "$workers" --bind "$endpoint" 2>/dev/null &
    pool=$!
    wait_ready "$endpoint" "$zrank"
    name="w${workers}-c${candidates}"
    cmd=("$bench" --endpoint "$endpoint" --concurrency 4 --duration "${secs}s" --warmup 2s --candidates "$candidates" --top-k 10 --json "$out/$name.json" --plot "$out/$name.svg")
    echo "${cmd[*]}" > "$out/$name.cmd"
    "${cmd[@]}" | tee "$out/$name.txt"
    sweep=("$bench" --endpoint "$endpoint" --sweep --rate 20 --sweep-factor 1.4 --slo-p99 10ms --duration 5s --warmup 1s --candidates "$candidates" --top-k 10 --json "$out/$name-sweep.json" --plot "$out/$name-sweep.svg")
    echo "${sweep[*]}" > "$out/$name-sweep.cmd"
    "${sweep[@]}" | tee "$out/$name-sweep.txt"
    kill -TERM $pool; wait $pool || true
    python3 - "$out/$name.json" "$out/$name-sweep.json" "$workers" "$candidates" >> "$summary" <<'PY'
import json, sys
run, sweep = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
best = sweep.get("best_rate")
print(f"| {sys.argv[3]} | {sys.argv[4]} | {run['achieved_rate']:.1f} | {run['latency_ms']['p50']:.2f} | {run['latency_ms']['p99']:.2f} | {best:.1f} req/s |" if best else
      f"| {sys.argv[3]} | {sys.argv[4]} | {run['achieved_rate']:.1f} | {run['latency_ms']['p50']:.2f} | {run['latency_ms']['p99']:.2f} | none |")
PY
  done
done
cat "$summary"
