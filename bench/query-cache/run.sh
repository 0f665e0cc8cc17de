#!/usr/bin/env bash
# The worker's query-embedding cache on a skewed query mix: a pool of 2 workers, closed loop (concurrency 4), WANDS
# queries drawn Zipf(1.0) (zrank-bench --zipf 1.0), 100 and 1000 candidates, --query-cache 10000 against
# --query-cache 0, alternating in each round on one machine. Writes bench/results/query-cache/ (the zrank-bench JSON
# of every run, its command line, summary.md).
# Usage: bench/query-cache/run.sh [rounds] [seconds]   (needs `make model`; builds the demo index when missing)
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/lib/pool.sh
rounds="${1:-2}"
secs="${2:-15}"
zrank=.build/release/zrank
bench=.build/release/zrank-bench
model=models/minilm-l6-int8.zrm
index=models/demo-catalog.zri
out=bench/results/query-cache
mkdir -p "$out"
rm -f "$out"/*.json "$out"/*.cmd
[ -f "$index" ] || "$zrank" index --model "$model" --catalog bench/data/catalog.jsonl --out "$index"
port=5800
for round in $(seq "$rounds"); do
  order="0 10000"
  [ $((round % 2)) -eq 0 ] && order="10000 0"
  for candidates in 100 1000; do
    for cache in $order; do
      port=$((port + 1))
      endpoint="tcp://127.0.0.1:$port"
      "$zrank" serve --model "$model" --index "$index" --workers 2 --bind "$endpoint" --query-cache "$cache" 2>/dev/null &
      pool=$!
      wait_ready "$endpoint" "$zrank"
      name="r${round}-c${candidates}-cache${cache}"
      cmd=("$bench" --endpoint "$endpoint" --concurrency 4 --duration "${secs}s" --warmup 2s --candidates "$candidates" --top-k 10 --zipf 1.0 --json "$out/$name.json")
      echo "zrank serve --model $model --index $index --workers 2 --bind $endpoint --query-cache $cache; ${cmd[*]}" > "$out/$name.cmd"
      "${cmd[@]}" > /dev/null
      kill -TERM "$pool"
      wait "$pool" || true
    done
  done
done
python3 - "$out" "$rounds" "$secs" <<'PY'
import glob, json, os, statistics, sys
out, rounds, secs = sys.argv[1], sys.argv[2], sys.argv[3]
runs = {}
for f in sorted(glob.glob(f"{out}/r*-c*-cache*.json")):
    name = os.path.basename(f)[:-5]
    _, c, cache = name.split("-")
    j = json.load(open(f))
    runs.setdefault((int(c[1:]), int(cache[5:])), []).append(j)
def rate(j): return j["achieved_rate"]
def p(j, q): return j["latency_ms"][q] if "latency_ms" in j else j[f"{q}_ms"]
import re
def cpu_line(info):
    field = lambda k: (re.search(rf"^{k}\s*: (.*)$", info, re.M) or [None, "?"])[1]
    return f"{field('model name')} (family {field('cpu family')} model {field('model')})"
flags = open("/proc/cpuinfo").read()
lines = ["# Query-embedding cache on a Zipf(1.0) query mix", "",
         f"`bench/query-cache/run.sh {rounds} {secs}`: `zrank serve --workers 2` (tcp, 127.0.0.1, MiniLM-L6 int8, 5,000-item demo",
         "catalog), `zrank-bench --concurrency 4 --zipf 1.0` over the WANDS queries, top_k 10; `--query-cache 10000` against",
         f"`--query-cache 0`, alternating in each of {rounds} rounds ({secs} s each, medians shown). Machine: {os.cpu_count()} vCPU {cpu_line(flags)}, "
         f"{'AVX-512 VNNI' if 'avx512_vnni' in flags else 'AVX2 only'}; the load generator shares the cores with the pool.", "",
         "| candidates | cache | req/s | p50 ms | p99 ms | req/s ratio (cache / none) | p99 ratio |", "| --- | --- | --- | --- | --- | --- | --- |"]
for c in sorted({k[0] for k in runs}):
    off, on = runs[(c, 0)], runs[(c, 10000)]
    r_off, r_on = statistics.median(rate(j) for j in off), statistics.median(rate(j) for j in on)
    p99_off, p99_on = statistics.median(p(j, "p99") for j in off), statistics.median(p(j, "p99") for j in on)
    lines.append(f"| {c} | off | {r_off:.0f} | {statistics.median(p(j, 'p50') for j in off):.2f} | {p99_off:.2f} | | |")
    lines.append(f"| {c} | 10,000 entries | {r_on:.0f} | {statistics.median(p(j, 'p50') for j in on):.2f} | {p99_on:.2f} | {r_on / r_off:.2f}x | {p99_on / p99_off:.2f}x |")
open(f"{out}/summary.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
