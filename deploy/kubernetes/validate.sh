#!/usr/bin/env bash
# Validates deploy/kubernetes/*.yaml offline. kubernetes-validate --strict checks every manifest (the kustomization
# aside) against the OpenAPI schemas bundled in the package, for each Kubernetes version in K8S_VERSIONS: unknown
# or misspelt fields, wrong types, missing required fields. It only warns, exit status 0, for a kind or apiVersion it
# has no schema for (a typo there), so any WARN fails here too. check-manifests.py then checks what a schema cannot
# see (selectors, ports, mounts, Secret items, key file modes). Creates .venv-deploy at the repository root with the
# pinned validator; idempotent: reinstalls only when the pin changes. Exit status 1 on any finding.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=.venv-deploy
want="kubernetes-validate==1.37.0"
stamp="$venv/.installed"
versions=${K8S_VERSIONS:-"1.31.0 1.37.0"}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2 || { echo "validate: python3 -m venv failed (apt-get install python3-venv)" >&2; exit 1; }
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$venv/bin/python" -m pip install --disable-pip-version-check -q $want >&2
  "$venv/bin/python" -m pip check >&2
  echo "$want" > "$stamp"
fi
manifests=()
for f in deploy/kubernetes/*.yaml; do
  [ "$(basename "$f")" = kustomization.yaml ] || manifests+=("$f")
done
flags=()
for v in $versions; do flags+=(-k "$v"); done
rc=0
out=$("$venv/bin/kubernetes-validate" --strict --quiet "${flags[@]}" "${manifests[@]}" 2>&1) || rc=$?
[ -z "$out" ] || echo "$out"
if [ "$rc" -ne 0 ] || grep -q '^WARN' <<<"$out"; then
  echo "validate: kubernetes-validate found problems in deploy/kubernetes (above)" >&2
  exit 1
fi
"$venv/bin/python" deploy/kubernetes/check-manifests.py
echo "validate: ${#manifests[@]} manifests valid for Kubernetes $versions (kubernetes-validate --strict)"
