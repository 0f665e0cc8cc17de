#!/usr/bin/env bash
# Two zrank builds' pools alternated on the query-cache benchmark's workload: `zrank serve --workers 2` with the
# query cache on (10,000 entries) and off, `zrank-bench --concurrency 4 --zipf 1.0` over the WANDS queries, top_k 10,
# CANDIDATES candidates; the other build first in odd rounds, this one first in even rounds. One JSON line per run:
# {"tree": "other"|"this", "round": R, "cache": N, "candidates": C, "result": <zrank-bench --json>}.
# Usage: bench/query-cache/ab.sh OTHER_ZRANK [ROUNDS [SECONDS [CANDIDATES]]]   (needs `make model`)
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/lib/pool.sh
other="${1:?usage: bench/query-cache/ab.sh OTHER_ZRANK [ROUNDS [SECONDS [CANDIDATES]]]}"
rounds="${2:-2}" secs="${3:-15}" candidates="${4:-1000}"
this="${ZRANK:-.build/release/zrank}"
bench=.build/release/zrank-bench
model=models/minilm-l6-int8.zrm
index=models/demo-catalog.zri
[ -f "$index" ] || "$this" index --model "$model" --catalog bench/data/catalog.jsonl --out "$index"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
port=5700
for round in $(seq "$rounds"); do
  order="other this"; (( round % 2 == 0 )) && order="this other"
  for cache in 10000 0; do
    for tree in $order; do
      bin="$this"; [[ $tree == other ]] && bin="$other"
      port=$((port + 1))
      endpoint="tcp://127.0.0.1:$port"
      "$bin" serve --model "$model" --index "$index" --workers 2 --bind "$endpoint" --query-cache "$cache" 2>/dev/null &
      pool=$!
      wait_ready "$endpoint" "$bin"
      "$bench" --endpoint "$endpoint" --concurrency 4 --duration "${secs}s" --warmup 2s --candidates "$candidates" \
        --top-k 10 --zipf 1.0 --json "$tmp/run.json" > /dev/null
      kill -TERM "$pool"
      wait "$pool" || true
      result="$(python3 -c 'import json, sys; print(json.dumps(json.load(open(sys.argv[1]))))' "$tmp/run.json")"
      echo "{\"tree\": \"$tree\", \"round\": $round, \"cache\": $cache, \"candidates\": $candidates, \"result\": $result}"
    done
  done
done
