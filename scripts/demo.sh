#!/usr/bin/env bash
# The demo: embed the generated home-goods catalog with the int8 encoder, then rank real WANDS queries over the
# whole catalog by cosine similarity and print the top results.
set -euo pipefail
zrank="$1"; model="$2"
work=.cache/demo
mkdir -p "$work"
python3 - "$work/items.jsonl" <<'PY'
import json, sys
with open("bench/data/catalog.jsonl", encoding="utf-8") as f, open(sys.argv[1], "w", encoding="utf-8") as out:
    for line in f:
        item = json.loads(line)
        text = item["title"] + (" " + item["text"] if item.get("text") else "")
        out.write(json.dumps({"id": item["id"], "text": text}) + "\n")
PY
echo "demo: embedding $(wc -l < "$work/items.jsonl") catalog items with $($zrank --version)"
start=$(date +%s.%N)
"$zrank" embed --model "$model" --batch 64 < "$work/items.jsonl" > "$work/items.emb.jsonl"
end=$(date +%s.%N)
python3 -c "print('demo: %.1f items/s' % ($(wc -l < "$work/items.jsonl") / ($end - $start)))"
python3 - "$work/queries.jsonl" <<'PY'
import csv, json, sys
picks = ["salon chair", "smart coffee table", "turquoise pillows", "king poster bed", "ombre rug",
         "black 5 drawer dresser by guilford", "chrome bathroom 4 light vanity light", "outdoor welcome rug"]
with open("bench/data/wands/query.csv", newline="", encoding="utf-8") as f:
    known = {row["query"] for row in csv.DictReader(f, delimiter="\t")}
with open(sys.argv[1], "w", encoding="utf-8") as out:
    for q in picks:
        assert q in known, q
        out.write(json.dumps({"id": q, "text": q}) + "\n")
PY
"$zrank" embed --model "$model" < "$work/queries.jsonl" > "$work/queries.emb.jsonl"
python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
titles = {}
with open("bench/data/catalog.jsonl", encoding="utf-8") as f:
    for line in f:
        item = json.loads(line)
        titles[item["id"]] = item["title"]
items = [json.loads(l) for l in open(f"{work}/items.emb.jsonl", encoding="utf-8")]
for q in (json.loads(l) for l in open(f"{work}/queries.emb.jsonl", encoding="utf-8")):
    qv = q["embedding"]
    scored = sorted(((sum(a * b for a, b in zip(qv, it["embedding"])), it["id"]) for it in items), reverse=True)[:5]
    print(f"\nquery: {q['id']}")
    for rank, (score, item_id) in enumerate(scored, 1):
        print(f"  {rank}. {score:.3f}  {item_id}  {titles[item_id]}")
PY
