#!/usr/bin/env bash
# Creates .venv-train (repo root) with the fine-tuning package (train/, JAX on CPU, pinned in train/pyproject.toml)
# and pytest. Idempotent: a stamp holding the hash of train/pyproject.toml and the package sources makes a rerun a
# no-op. Prints the venv's python path on stdout; progress and the install's wall time go to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-train
stamp="$venv/.installed"
want="$(cat train/pyproject.toml train/zrank_train/*.py | sha256sum | cut -d' ' -f1)"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "$PWD/$venv/bin/python"
  exit 0
fi
start=$(date +%s)
if [ ! -x "$venv/bin/python" ]; then
  echo "train-env: creating $venv" >&2
  python3 -m venv "$venv" >&2 || { echo "train-env: python3 -m venv failed (apt-get install python3-venv)" >&2; exit 1; }
fi
echo "train-env: pip install ./train[test] (jax, optax, numpy, safetensors, tokenizers, tqdm, pytest)" >&2
# A regular (non-editable) install: the Swift wrapper execs $venv/bin/python -m zrank_train from any directory.
"$venv/bin/python" -m pip install --disable-pip-version-check -q "./train[test]" >&2
rm -rf train/build train/*.egg-info
echo "$want" > "$stamp"
echo "train-env: installed in $(( $(date +%s) - start )) s" >&2
echo "$PWD/$venv/bin/python"
