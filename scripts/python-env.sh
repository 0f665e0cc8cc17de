#!/usr/bin/env bash
# Creates .venv-test with the Python client's pinned dependencies (protobuf matches the committed generated code,
# made by Debian's protoc 3.21.12) and pytest. Idempotent. Prints the venv's python path.
set -euo pipefail
venv=.venv-test
want="pyzmq==27.3.0 protobuf==4.21.12 pytest==9.0.3"
stamp="$venv/.installed"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2 || { echo "python-env: python3 -m venv failed (apt-get install python3-venv)" >&2; exit 1; }
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$venv/bin/python" -m pip install --disable-pip-version-check -q $want >&2
  echo "$want" > "$stamp"
fi
echo "$venv/bin/python"
