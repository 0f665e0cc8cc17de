#!/usr/bin/env bash
# The workers' CPU time for the same work, two zrank builds alternated: `zrank serve --workers 2 --query-cache 10000`,
# `zrank-bench` open loop at RATE req/s for SECONDS over Zipf(1.0) WANDS queries with CANDIDATES candidates (both
# builds serve the same number of requests, so CPU time per request compares them with less noise than req/s on a
# shared machine). One line per run: ROUND TREE workers_cpu_ticks TICKS ok OK (ticks: 1/100 s, user + system, both
# workers). Usage: bench/query-cache/worker-cpu.sh OTHER_ZRANK [ROUNDS [RATE [SECONDS [CANDIDATES]]]]
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/lib/pool.sh
other="${1:?usage: bench/query-cache/worker-cpu.sh OTHER_ZRANK [ROUNDS [RATE [SECONDS [CANDIDATES]]]]}"
rounds="${2:-3}" rate="${3:-1500}" secs="${4:-10}" candidates="${5:-1000}"
this="${ZRANK:-.build/release/zrank}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cpu() { local t=0; for w in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$w/stat"))); done; echo "$t"; }
port=5650
for round in $(seq "$rounds"); do
  order="other this"; (( round % 2 == 0 )) && order="this other"
  for tree in $order; do
    bin="$this"; [[ $tree == other ]] && bin="$other"
    port=$((port + 1)); endpoint="tcp://127.0.0.1:$port"
    "$bin" serve --model models/minilm-l6-int8.zrm --index models/demo-catalog.zri --workers 2 --bind "$endpoint" \
      --query-cache 10000 2>/dev/null &
    pool=$!
    wait_ready "$endpoint" "$bin"
    mapfile -t workers < <(pgrep -P "$pool" -f " worker ")
    t0=$(cpu "${workers[@]}")
    .build/release/zrank-bench --endpoint "$endpoint" --rate "$rate" --duration "${secs}s" --warmup 1s \
      --candidates "$candidates" --top-k 10 --zipf 1.0 --json "$tmp/run.json" > /dev/null
    t1=$(cpu "${workers[@]}")
    ok=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["ok"])' "$tmp/run.json")
    echo "$round $tree workers_cpu_ticks $((t1 - t0)) ok $ok"
    kill -TERM "$pool"; wait "$pool" || true
  done
done
