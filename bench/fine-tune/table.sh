#!/usr/bin/env bash
# Base vs heads vs fine-tuned vs fine-tuned + heads on the graded simulator, all int8 as served, judged on the same
# held-out queries (the fine-tune's validation_queries.txt): truth NDCG@10 (gain 2^grade - 1) and NDCG@10 of the
# clicks per validation list, from `zrank train-heads --truth --validation-queries` (its cosine_* figures are the
# model alone). Usage: bench/fine-tune/table.sh WORK   (WORK holds log.jsonl, truth.jsonl, ft/, ft.zrm from run.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
work="${1:?usage: bench/fine-tune/table.sh WORK}"
zrank=.build/release/zrank
catalog=bench/data/catalog.jsonl
out=bench/results/fine-tune/table.md
"$zrank" index --model models/minilm-l6-int8.zrm --catalog "$catalog" --out "$work/base.zri" >/dev/null
"$zrank" index --model "$work/ft.zrm" --catalog "$catalog" --out "$work/ft.zri" >/dev/null
for m in base ft; do
  model=models/minilm-l6-int8.zrm; [ "$m" = ft ] && model="$work/ft.zrm"
  "$zrank" train-heads --model "$model" --index "$work/$m.zri" --log "$work/log.jsonl" --truth "$work/truth.jsonl" \
    --validation-queries "$work/ft/validation_queries.txt" --out "$work/heads-$m.json" --json > "$work/heads-$m.report.json"
done
python3 - "$work" "$out" <<'PY'
import json, sys
work, out = sys.argv[1], sys.argv[2]
rows = []
for m, name in (("base", "base model"), ("ft", "fine-tuned")):
    r = json.load(open(f"{work}/heads-{m}.report.json"))
    t = r["segments"]["truth_graded"]
    rows.append((name, t["cosine_ndcg10"], r["cosine_ndcg10"], t["sessions"]))
    rows.append((name + " + heads", t["ndcg10"], r["ndcg10"], t["sessions"]))
lines = ["# Graded simulator: base vs heads vs fine-tuned vs fine-tuned + heads (int8, as served)", "",
         f"Command: `bench/fine-tune/table.sh {work}` after `bench/fine-tune/run.sh` (log, truth and fine-tune as in",
         "`graded-200k.md`). Heads trained with `zrank train-heads` on the training queries of the same split; every",
         "figure on the fine-tune's held-out queries (`validation_queries.txt`).", "",
         "| ranking | truth NDCG@10 | click NDCG@10 | validation lists |", "| --- | --- | --- | --- |"]
lines += [f"| {n} | {a:.4f} | {b:.4f} | {s} |" for n, a, b, s in rows]
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
