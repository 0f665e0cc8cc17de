#!/usr/bin/env bash
# Does -Ounchecked pay on the hot loops? The release build (every target checked) against the same sources built
# with ZRANK_UNCHECKED_HOT_LOOPS=1 (Kernels, Model and Ranking with -Ounchecked, the rest checked), in
# alternating rounds on one machine: encoder sequences/s at batch 32 x 16 and 1 x 16 tokens (one thread), and ranking
# 1000 candidates with heads (bench-rank: cosine and heads). Writes bench/results/ounchecked.md.
# Usage: bench/ounchecked/run.sh [rounds] [seconds]   (needs `make model` and `swift build -c release`; builds the
# other side into .build-unchecked)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-3}"
secs="${2:-3}"
model=models/minilm-l6-int8.zrm
checked=.build/release/zrank
unchecked=.build-unchecked/release/zrank
ZRANK_UNCHECKED_HOT_LOOPS=1 swift build -c release --scratch-path .build-unchecked --product zrank >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$checked" index --model "$model" --catalog bench/data/catalog.jsonl --out "$work/catalog.zri" > /dev/null
"$checked" simulate-log --catalog bench/data/catalog.jsonl --queries bench/data/wands/query.csv --users 200 \
  --sessions 1000 --seed 1 --out "$work/log.jsonl" --truth "$work/truth.json" > /dev/null
"$checked" train-heads --model "$model" --index "$work/catalog.zri" --log "$work/log.jsonl" --out "$work/heads.json" \
  --l2 0.1 > /dev/null
raw="$work/raw.jsonl"
for round in $(seq "$rounds"); do
  # Alternate which build goes first, so neither always runs on a colder or hotter machine.
  order="unchecked checked"
  [ $((round % 2)) -eq 0 ] && order="checked unchecked"
  for build in $order; do
    zrank=$unchecked
    [ "$build" = checked ] && zrank=$checked
    for batch in 32 1; do
      line=$("$zrank" bench-encoder --model "$model" --batch "$batch" --seq 16 --threads 1 --seconds "$secs" | tail -1)
      echo "{\"build\": \"$build\", \"round\": $round, \"bench\": \"encoder-$batch\", \"result\": $line}" >> "$raw"
    done
    "$zrank" bench-rank --model "$model" --index "$work/catalog.zri" --heads "$work/heads.json" --candidates 1000 \
      --seconds "$secs" --rounds 1 | tail -1 | sed "s/^/{\"build\": \"$build\", \"round\": $round, \"bench\": \"rank\", \"result\": /; s/\$/}/" >> "$raw"
  done
done
python3 - "$raw" "$rounds" "$secs" <<'PY'
import json, statistics, sys, subprocess
raw, rounds, secs = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [json.loads(l) for l in open(raw)]
def pick(build, bench):
    return [r["result"] for r in rows if r["build"] == build and r["bench"] == bench]
isa = subprocess.run([".build/release/zrank", "--version"], capture_output=True, text=True).stdout.strip()
flags = open("/proc/cpuinfo").read()
vnni = "avx512_vnni" in flags
out = ["# -Ounchecked on the hot loops: measured, not assumed", "",
       f"`bench/ounchecked/run.sh {rounds} {secs}`: the same sources built with `-Ounchecked` on Kernels, Model and Ranking",
       "(`ZRANK_UNCHECKED_HOT_LOOPS=1`) and with every target checked (the release build), both builds in each of",
       f"{rounds} rounds (which goes first alternates), {secs} s per measurement, one thread. Machine: {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} vCPU,",
       f"{'AVX-512 VNNI' if vnni else 'AVX2 only'}; `{isa}`.", "",
       "| benchmark | -Ounchecked (median) | checked (median) | checked / -Ounchecked |", "| --- | --- | --- | --- |"]
def seq_rate(r):
    return r.get("sequences_per_s") or r.get("seq_per_s") or r.get("sequences_per_second")
for bench, label in [("encoder-32", "encoder batch 32 x 16, sequences/s"), ("encoder-1", "encoder batch 1 x 16, sequences/s")]:
    u = statistics.median(seq_rate(r) for r in pick("unchecked", bench))
    c = statistics.median(seq_rate(r) for r in pick("checked", bench))
    out.append(f"| {label} | {u:.1f} | {c:.1f} | {c / u:.3f} |")
for key, label in [("cosine_p50_us", "rank 1000 candidates, cosine, p50 µs"), ("heads_p50_us", "rank 1000 candidates, heads, p50 µs")]:
    u_all = [r.get(key) for r in pick("unchecked", "rank")]
    c_all = [r.get(key) for r in pick("checked", "rank")]
    if None in u_all or None in c_all:
        continue
    u, c = statistics.median(u_all), statistics.median(c_all)
    out.append(f"| {label} | {u:.1f} | {c:.1f} | {c / u:.3f} |")
out += ["", "Raw lines (one per measurement):", "", "```"] + [json.dumps(r) for r in rows] + ["```", ""]
open("bench/results/ounchecked.md", "w").write("\n".join(out))
print("\n".join(out[:14]))
PY
