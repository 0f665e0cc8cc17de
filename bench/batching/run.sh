#!/usr/bin/env bash
# Cross-request batching in workers: a pool of 2 workers, closed loop with 16 requests in flight, WANDS queries
# drawn uniformly with the query cache off (--query-cache 0: every query is encoded), 100 and 1000 candidates,
# --max-batch 8 against --max-batch 1, alternating in each round on one machine. Writes bench/results/batching/.
# Usage: bench/batching/run.sh [rounds] [seconds]   (needs `make model`; builds the demo index when missing)
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/lib/pool.sh
rounds="${1:-2}"
secs="${2:-15}"
zrank=.build/release/zrank
bench=.build/release/zrank-bench
model=models/minilm-l6-int8.zrm
index=models/demo-catalog.zri
out=bench/results/batching
mkdir -p "$out"
rm -f "$out"/*.json "$out"/*.cmd
[ -f "$index" ] || "$zrank" index --model "$model" --catalog bench/data/catalog.jsonl --out "$index"
port=5900
for round in $(seq "$rounds"); do
  order="1 8"
  [ $((round % 2)) -eq 0 ] && order="8 1"
  for candidates in 100 1000; do
    for batch in $order; do
      port=$((port + 1))
      endpoint="tcp://127.0.0.1:$port"
      "$zrank" serve --model "$model" --index "$index" --workers 2 --bind "$endpoint" --query-cache 0 --max-batch "$batch" 2>/dev/null &
      pool=$!
      wait_ready "$endpoint" "$zrank"
      name="r${round}-c${candidates}-batch${batch}"
      cmd=("$bench" --endpoint "$endpoint" --concurrency 16 --duration "${secs}s" --warmup 2s --candidates "$candidates" --top-k 10 --json "$out/$name.json")
      echo "zrank serve --model $model --index $index --workers 2 --bind $endpoint --query-cache 0 --max-batch $batch; ${cmd[*]}" > "$out/$name.cmd"
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
for f in sorted(glob.glob(f"{out}/r*-c*-batch*.json")):
    _, c, b = os.path.basename(f)[:-5].split("-")
    runs.setdefault((int(c[1:]), int(b[5:])), []).append(json.load(open(f)))
import re
def cpu_line(info):
    field = lambda k: (re.search(rf"^{k}\s*: (.*)$", info, re.M) or [None, "?"])[1]
    return f"{field('model name')} (family {field('cpu family')} model {field('model')})"
flags = open("/proc/cpuinfo").read()
lines = ["# Cross-request batching in workers", "",
         f"`bench/batching/run.sh {rounds} {secs}`: `zrank serve --workers 2 --query-cache 0` (tcp, 127.0.0.1, MiniLM-L6 int8,",
         "5,000-item demo catalog), `zrank-bench --concurrency 16` over the WANDS queries drawn uniformly, top_k 10;",
         f"`--max-batch 8` against `--max-batch 1`, alternating in each of {rounds} rounds ({secs} s each, medians shown).",
         f"Machine: {os.cpu_count()} vCPU {cpu_line(flags)}, {'AVX-512 VNNI' if 'avx512_vnni' in flags else 'AVX2 only'}; the load generator shares the cores with the pool.", "",
         "| candidates | --max-batch | req/s | p50 ms | p99 ms | req/s ratio (8 / 1) | p99 ratio |", "| --- | --- | --- | --- | --- | --- | --- |"]
for c in sorted({k[0] for k in runs}):
    one, eight = runs[(c, 1)], runs[(c, 8)]
    med = lambda rs, f: statistics.median(f(j) for j in rs)
    r1, r8 = med(one, lambda j: j["achieved_rate"]), med(eight, lambda j: j["achieved_rate"])
    p1, p8 = med(one, lambda j: j["latency_ms"]["p99"]), med(eight, lambda j: j["latency_ms"]["p99"])
    lines.append(f"| {c} | 1 | {r1:.0f} | {med(one, lambda j: j['latency_ms']['p50']):.2f} | {p1:.2f} | | |")
    lines.append(f"| {c} | 8 | {r8:.0f} | {med(eight, lambda j: j['latency_ms']['p50']):.2f} | {p8:.2f} | {r8 / r1:.2f}x | {p8 / p1:.2f}x |")
open(f"{out}/summary.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
