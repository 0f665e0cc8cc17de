#!/usr/bin/env bash
# The demo on the embedded default: index the generated home-goods catalog, start a pool (router + 2 workers),
# rank real WANDS queries over the whole catalog with `zrank query`, then train the seed's ranking heads (CTR +
# engagement) on a simulated click log and rank with them, with explanations; stop the pools.
set -euo pipefail
zrank="$1"; model="$2"
index=models/demo-catalog.zri
catalog=bench/data/catalog.jsonl
# Rebuild when missing, older than its inputs, or in index format 1 (no item facts for the ranking heads).
if [ ! -f "$index" ] || [ "$index" -ot "$model" ] || [ "$index" -ot "$catalog" ] \
   || [ "$(od -An -tu4 -j8 -N4 "$index" | tr -d ' ')" = "1" ]; then
  echo "demo: indexing $(wc -l < "$catalog") catalog items"
  "$zrank" index --model "$model" --catalog "$catalog" --out "$index"
fi
run=$(mktemp -d "${TMPDIR:-/tmp}/zrank-demo.XXXXXX")
endpoint="ipc://$run/pool.sock"
"$zrank" serve --model "$model" --index "$index" --workers 2 --bind "$endpoint" 2> "$run/serve.log" &
pool=$!
trap 'kill -TERM $pool 2>/dev/null; wait $pool 2>/dev/null; rm -rf "$run"' EXIT
python3 - "$run/queries.jsonl" <<'PY'
import csv, json, sys
picks = ["salon chair", "smart coffee table", "turquoise pillows", "king poster bed", "ombre rug",
         "black 5 drawer dresser by guilford", "chrome bathroom 4 light vanity light", "outdoor welcome rug"]
with open("bench/data/wands/query.csv", newline="", encoding="utf-8") as f:
    known = {row["query"] for row in csv.DictReader(f, delimiter="\t")}
with open(sys.argv[1], "w", encoding="utf-8") as out:
    for q in picks:
        assert q in known, q
        out.write(json.dumps({"id": q, "query": q}) + "\n")
PY
# Wait for a pool to answer (workers map the model and warm up); fail with its log when it never does.
wait_for_pool() {
  for _ in $(seq 1 60); do
    if "$zrank" query --endpoint "$1" --text "ping" --top-k 1 --timeout 500ms >/dev/null 2>&1; then return 0; fi
  done
  echo "demo: the pool at $1 did not answer within 30 s; its log:" >&2
  cat "$2" >&2
  exit 1
}
wait_for_pool "$endpoint" "$run/serve.log"
echo "demo: pool up ($("$zrank" --version)); ranking $(wc -l < "$run/queries.jsonl") real WANDS queries over the whole catalog"
"$zrank" query --endpoint "$endpoint" --batch "$run/queries.jsonl" --top-k 5 --json > "$run/answers.jsonl"
python3 - "$run/answers.jsonl" "$catalog" <<'PY'
import json, sys
titles = {}
with open(sys.argv[2], encoding="utf-8") as f:
    for line in f:
        item = json.loads(line)
        titles[item["id"]] = item["title"]
for line in open(sys.argv[1], encoding="utf-8"):
    a = json.loads(line)
    print(f"\nquery: {a['id']}   (model {a.get('model_version')})")
    for rank, item in enumerate(a.get("items", []), 1):
        print(f"  {rank}. {item['score']:.3f}  {item['id']}  {titles.get(item['id'], '?')}")
PY
echo
echo "demo: training ranking heads (CTR + engagement) on a simulated click log"
"$zrank" simulate-log --catalog "$catalog" --queries bench/data/wands/query.csv --users 200 --sessions 1500 --seed 1 \
  --out "$run/clicks.jsonl"
"$zrank" train-heads --model "$model" --index "$index" --log "$run/clicks.jsonl" --out "$run/demo-heads.json"
heads_endpoint="ipc://$run/heads.sock"
"$zrank" serve --model "$model" --index "$index" --heads "$run/demo-heads.json" --workers 1 --bind "$heads_endpoint" \
  2> "$run/serve-heads.log" &
heads_pool=$!
trap 'kill -TERM $pool $heads_pool 2>/dev/null; wait $pool $heads_pool 2>/dev/null; rm -rf "$run"' EXIT
wait_for_pool "$heads_endpoint" "$run/serve-heads.log"
echo "demo: score = P(click) + 0.1 * E[engagement], explained (largest terms of the CTR logit), for a user with history"
"$zrank" query --endpoint "$heads_endpoint" --text "turquoise pillows" --top-k 5 --explain --user demo-user \
  --recent "$(sed -n '3p;23p;43p' "$catalog" | python3 -c 'import json,sys; print(",".join(json.loads(l)["id"] for l in sys.stdin))')"
echo
echo "demo: stopping the pools"
