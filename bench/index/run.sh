#!/usr/bin/env bash
# Indexing throughput: `zrank index` on the demo catalog with --threads 1 and --threads 2, alternating round by round
# in one run (the VM is shared and noisy), into bench/results/index-threads.md. Usage: bench/index/run.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-3}"
zrank=.build/release/zrank
model=models/minilm-l6-int8.zrm
catalog=bench/data/catalog.jsonl
[ -x "$zrank" ] && [ -f "$model" ] || { echo "run make model first" >&2; exit 1; }
out=bench/results/index-threads.md
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
isa=$(grep -o -m1 'avx512_vnni' /proc/cpuinfo || grep -o -m1 'avx2' /proc/cpuinfo || echo "neither avx2 nor avx512_vnni")
rows=()
for r in $(seq 1 "$rounds"); do
  for t in 1 2; do
    s=$(date +%s.%N)
    ZRANK_PROGRESS_INTERVAL=3600 "$zrank" index --model "$model" --catalog "$catalog" --out "$tmp/t$t.zri" --threads "$t" >/dev/null 2>&1
    e=$(date +%s.%N)
    rows+=("$r $t $(python3 -c "print(f'{$e - $s:.2f}')")")
    echo "round $r, --threads $t: ${rows[-1]##* } s" >&2
  done
done
n=$(wc -l < "$catalog")
python3 - "$out" "$n" "$rounds" "$isa" "$(nproc)" "${rows[@]}" <<'PY'
import statistics, sys
out, n, rounds, isa, cores = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
runs = [r.split() for r in sys.argv[6:]]
by = {t: [float(s) for (_, tt, s) in runs if tt == t] for t in ("1", "2")}
med = {t: statistics.median(v) for t, v in by.items()}
lines = [
    "# zrank index: items/s with --threads 1 and 2", "",
    f"Command: `bench/index/run.sh {rounds}` ({n} demo catalog items, real all-MiniLM-L6-v2 int8, {rounds} alternating rounds;",
    f"machine: {cores} cores, kernels {isa}). Whole-command wall time (model mapping, tokenising, encoding, writing).", "",
    "| threads | seconds per round | median s | items/s (median) |", "| --- | --- | --- | --- |",
]
for t in ("1", "2"):
    lines.append(f"| {t} | {', '.join(f'{x:.2f}' for x in by[t])} | {med[t]:.2f} | {n / med[t]:.0f} |")
lines += ["", f"**--threads 2 / --threads 1: {med['1'] / med['2']:.2f}x** items/s (medians of the same run)."]
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
