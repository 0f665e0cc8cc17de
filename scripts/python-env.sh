#!/usr/bin/env bash
# Creates .venv-test with the Python client installed as a package (pip install ./proto/python, its dependencies
# pinned here to the versions CI tests: protobuf matches the committed generated code, made by Debian's protoc
# 3.21.12) and pytest. Idempotent: reinstalls when the pins or the client's files change. Prints the venv's python.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-test
want="pyzmq==27.3.0 protobuf==4.21.12 jsonschema==4.26.0 pytest==9.0.3"
stamp="$venv/.installed"
client=$(cat proto/python/pyproject.toml proto/python/README.md proto/python/zrank_client/*.py proto/python/zrank_client/*.json | sha256sum)
client=${client%% *}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2 || { echo "python-env: python3 -m venv failed (apt-get install python3-venv)" >&2; exit 1; }
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want $client" ]; then
  "$venv/bin/python" -m pip install --disable-pip-version-check -q $want >&2
  # Not editable: the tests import the installed copy, as a user's program would.
  "$venv/bin/python" -m pip install --disable-pip-version-check -q --force-reinstall --no-deps ./proto/python >&2
  rm -rf proto/python/build proto/python/*.egg-info
  "$venv/bin/python" -m pip check >&2
  echo "$want $client" > "$stamp"
fi
echo "$PWD/$venv/bin/python"
