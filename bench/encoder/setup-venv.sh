#!/usr/bin/env bash
# Creates bench/encoder/.venv with the pinned peer stack (ONNX Runtime, onnx, numpy).
# Idempotent: when the venv already holds exactly these versions it does nothing.
# Usage: bench/encoder/setup-venv.sh        (env PYTHON overrides the interpreter, default python3)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
python="${PYTHON:-python3}"

# The pins. Change them here only; README.md quotes them.
pins=(
  "onnxruntime==1.32.0"
  "onnx==1.23.2"
  "numpy==2.4.6"
)

have_pins() {
  [[ -x "$venv/bin/python" ]] || return 1
  "$venv/bin/python" - "${pins[@]}" <<'PY'
import sys
from importlib.metadata import version, PackageNotFoundError
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    try:
        if version(name) != want:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
}

if have_pins; then
  echo "setup-venv: $venv already has ${pins[*]}" >&2
  exit 0
fi

if [[ ! -x "$venv/bin/python" ]]; then
  echo "setup-venv: creating $venv" >&2
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${pins[@]}"
have_pins || { echo "setup-venv: pins not satisfied after install" >&2; exit 1; }
echo "setup-venv: installed ${pins[*]}" >&2
