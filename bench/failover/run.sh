#!/usr/bin/env bash
# Two routers active-active under load, one SIGKILLed (#14): keys from zrank keygen, CURVE on every tcp endpoint,
# two workers (the demo model and catalog) connected to both routers, zrank-bench --endpoint A,B at RATE req/s for
# SECONDS s with CANDIDATES candidates; at 5 s of measured load the workers are stopped for 0.2 s and router A is
# SIGKILLed in the middle of it (so it certainly holds requests). Prints the bench summary and its JSON figures.
# Usage: bench/failover/run.sh [RATE] [SECONDS] [CANDIDATES]     (needs make model; run from the repository root)
set -euo pipefail
cd "$(dirname "$0")/../.."
rate=${1:-100}; seconds=${2:-20}; candidates=${3:-1000}
zrank=.build/release/zrank; bench=.build/release/zrank-bench
model=models/minilm-l6-int8.zrm; index=models/demo-catalog.zri
[ -f "$model" ] && [ -f "$index" ] || { echo "run make demo first ($model, $index)" >&2; exit 2; }
work=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/clients" "$work/workers" "$work/admins"
for k in server clients/c1 workers/w1 admins/ops; do "$zrank" keygen --out "$work/$k" >/dev/null; done
curve=(--curve-key "$work/server.key" --curve-clients "$work/clients" --curve-workers "$work/workers" --curve-admins "$work/admins")
port=$((20000 + RANDOM % 20000))
A=tcp://127.0.0.1:$port; AB=tcp://127.0.0.1:$((port + 1)); B=tcp://127.0.0.1:$((port + 2)); BB=tcp://127.0.0.1:$((port + 3))
"$zrank" router --bind "$A" --backend "$AB" "${curve[@]}" 2>"$work/router-a.log" & pids+=($!); routerA=$!
"$zrank" router --bind "$B" --backend "$BB" "${curve[@]}" 2>"$work/router-b.log" & pids+=($!)
workers=()
for w in 1 2; do
  "$zrank" worker --model "$model" --index "$index" --connect "$AB,$BB" --id "w$w" \
    --curve-server "$work/server.pub" --curve-key "$work/workers/w1.key" 2>"$work/worker-$w.log" & pids+=($!); workers+=($!)
done
for e in "$A" "$B"; do
  for _ in $(seq 50); do
    "$zrank" health --endpoint "$e" --ready --timeout 1s --curve-server "$work/server.pub" --curve-key "$work/clients/c1.key" >/dev/null 2>&1 && break
    sleep 0.2
  done
done
( sleep 5.9; kill -STOP "${workers[@]}"; sleep 0.1; kill -9 "$routerA"; sleep 0.1; kill -CONT "${workers[@]}" ) &
echo "command: zrank-bench --endpoint A,B --rate $rate --duration ${seconds}s --warmup 1s --candidates $candidates --try-timeout 300ms (CURVE); router A SIGKILLed at 5 s"
"$bench" --endpoint "$A,$B" --rate "$rate" --duration "${seconds}s" --warmup 1s --candidates "$candidates" --try-timeout 300ms \
  --curve-server "$work/server.pub" --curve-key "$work/clients/c1.key" --json "$work/out.json"
python3 -c "
import json; d = json.load(open('$work/out.json'))
print(json.dumps({k: d[k] for k in ('sent', 'ok', 'errors', 'client_timeouts', 'unsent', 'failover_resends', 'duplicates_dropped', 'latency_ms')}))"
