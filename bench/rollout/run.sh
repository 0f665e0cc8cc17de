#!/usr/bin/env bash
# Latency during a rolling model upgrade vs steady state, from the same run (bench/scenarios/rollout.yaml): a registry
# with the real model under two names, a 2-worker pool serving v1, zrank-bench at a fixed open-loop rate while the
# coordinator rolls v2 out (shadow 5 s, canary 10%, +30% every 8 s). Writes bench/results/rollout/.
# Usage: bench/rollout/run.sh   (needs `make model` and a release build)
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/lib/pool.sh
zrank=.build/release/zrank
bench=.build/release/zrank-bench
model=models/minilm-l6-int8.zrm
out=bench/results/rollout
registry=$(mktemp -d)/registry
mkdir -p "$out"
for v in minilm-v1 minilm-v2; do
  "$zrank" registry add --registry "$registry" --version "$v" --model "$model" --catalog bench/data/catalog.jsonl \
    --notes "bench/rollout: the same weights under a second name" >/dev/null
done
endpoint="tcp://127.0.0.1:5791"
export ZRANK_ADMIN="ipc://$(dirname "$registry")/admin.sock"
export ZRANKCTL=.build/release/zrankctl
export ZRANK_TARGET=minilm-v2
"$zrank" serve --registry "$registry" --version minilm-v1 --workers 2 --bind "$endpoint" --admin "$ZRANK_ADMIN" \
  --metrics 127.0.0.1:9464 2> "$out/pool.log" &
pool=$!
trap 'kill $pool 2>/dev/null; wait $pool 2>/dev/null || true' EXIT
wait_ready "$endpoint" "$zrank"
cmd=("$bench" --endpoint "$endpoint" --scenario bench/scenarios/rollout.yaml --warmup 3s --candidates 100 --top-k 10
     --connections 64 --json "$out/rollout.json" --timeline-plot "$out/rollout.svg")
echo "${cmd[*]}" > "$out/rollout.cmd"
"${cmd[@]}" | tee "$out/rollout.txt"
"$ZRANKCTL" status --admin "$ZRANK_ADMIN" --json > "$out/status-after.json"
curl -s http://127.0.0.1:9464/metrics > "$out/metrics-after.txt" 2>/dev/null || python3 -c \
  "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9464/metrics').read().decode(), end='')" > "$out/metrics-after.txt"
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
run = json.load(open(f"{out}/rollout.json"))
status = json.load(open(f"{out}/status-after.json"))
lines = ["# Latency during a rollout vs steady state (same run)", "",
         "Produced by `bench/rollout/run.sh` (scenario `bench/scenarios/rollout.yaml`, command in `rollout.cmd`).",
         "2-worker pool on the shared 2-vCPU VM, real MiniLM-L6 int8, 5,000-item demo catalog, 100 candidates, top 10,",
         "open loop at 150 req/s (coordinated-omission corrected). v2 is the same weights under a second registry name,",
         "so this measures the rollout machinery (drain, mmap, warm-up, smoke set, split, shadow copies), not a model change.", "",
         "| phase | sent | ok | errors | timeouts | p50 ms | p99 ms | max ms | answers by version |",
         "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
for p in run["phases"] + [dict(run, name="whole run")]:
    l = p["latency_ms"]
    errs = sum(p["errors"].values())
    versions = ", ".join(f"{k} {v}" for k, v in sorted(p["versions"].items()))
    lines.append(f"| {p['name']} | {p['sent']} | {p['ok']} | {errs} | {p['client_timeouts']} | {l['p50']:.2f} | {l['p99']:.2f} | {l['max']:.2f} | {versions} |")
lines += ["", "Rollout decisions (`zrankctl status --json` → rollout.history):", ""]
lines += [f"- {h}" for h in status["rollout"]["history"]]
shadow = status.get("shadow")
if shadow:
    lines += ["", f"Shadow: {shadow['requests']} requests compared, top-10 overlap {shadow['top10_overlap']:.3f}, rank correlation {shadow['rank_correlation']:.3f}."]
lines += ["", "Plot: `rollout.svg` (p50/p99 per second; share of answers by version per second)."]
open(f"{out}/summary.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
