"""Cross-checks between the manifests that schema validation cannot see (run by validate.sh, in .venv-deploy).

Checks that selectors match pod labels, Services and probes name real container ports, every volume mount, Secret
item, ConfigMap key, claim and $(VAR) resolves, every /keys/... path on a command line or in a probe is a mounted
file or folder, secret keys (*.key) are mounted unreadable by others (zrank refuses them otherwise), the
kustomization lists every manifest but the template Secret and the one-off pod, and router-b.yaml is router-a.yaml
with the name changed. Prints one line per finding; exit status 1 when there is any.
"""
import os
import re
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
NOT_IN_KUSTOMIZATION = {"secret-curve.yaml", "registry-shell.yaml"}
findings = []


def finding(where, text):
    findings.append(f"{where}: {text}")


def load(name):
    with open(os.path.join(HERE, name), encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


files = sorted(f for f in os.listdir(HERE) if f.endswith(".yaml"))
docs = [(f, d) for f in files if f != "kustomization.yaml" for d in load(f)]
by_kind = {}
for f, d in docs:
    by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d

# The kustomization lists every manifest except the two kept out on purpose.
listed = load("kustomization.yaml")[0].get("resources", [])
for name in listed:
    if name not in files:
        finding("kustomization.yaml", f"lists {name}, which does not exist")
for name in files:
    if name != "kustomization.yaml" and name not in listed and name not in NOT_IN_KUSTOMIZATION:
        finding("kustomization.yaml", f"does not list {name}")

# router-b.yaml is router-a.yaml with the name changed (comments aside).
renamed = [yaml.safe_load(yaml.safe_dump(d).replace("router-b", "router-a")) for d in load("router-b.yaml")]
if load("router-a.yaml") != renamed:
    finding("router-b.yaml", "differs from router-a.yaml by more than the name")

secrets = by_kind.get("Secret", {})
configmaps = by_kind.get("ConfigMap", {})
claims = by_kind.get("PersistentVolumeClaim", {})


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


pods = []  # (where, pod spec, pod labels)
for kind in ("Deployment", "Pod"):
    for name, d in by_kind.get(kind, {}).items():
        where = f"{kind.lower()}/{name}"
        if kind == "Deployment":
            spec, labels = d["spec"]["template"]["spec"], d["spec"]["template"]["metadata"].get("labels", {})
            if not matches(d["spec"]["selector"]["matchLabels"], labels):
                finding(where, "selector does not match the pod template's labels")
        else:
            spec, labels = d["spec"], d["metadata"].get("labels", {})
        pods.append((where, spec, labels))

for where, spec, _ in pods:
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounted = set()
    for c in spec["containers"]:
        cw = f"{where} container {c['name']}"
        env = {e["name"] for e in c.get("env", [])}
        ports = {p.get("name") for p in c.get("ports", [])}
        for e in c.get("env", []):
            ref = e.get("valueFrom", {}).get("configMapKeyRef")
            if ref and ref["key"] not in configmaps.get(ref["name"], {}).get("data", {}):
                finding(cw, f"env {e['name']}: no ConfigMap {ref['name']} with key {ref['key']}")
        # Files each mount shows: path -> mode (None: a folder whose contents are not known here).
        files_at, folders = {}, set()
        for m in c.get("volumeMounts", []):
            mounted.add(m["name"])
            v = volumes.get(m["name"])
            if v is None:
                finding(cw, f"mounts volume {m['name']}, which the pod does not declare")
                continue
            folders.add(m["mountPath"])
            if "secret" in v:
                s = v["secret"]
                secret = secrets.get(s["secretName"], {})
                data = {**secret.get("data", {}), **secret.get("stringData", {})}
                if s["secretName"] not in secrets:
                    finding(cw, f"volume {m['name']}: no Secret {s['secretName']} among the manifests")
                for item in s.get("items", []):
                    if item["key"] not in data:
                        finding(cw, f"volume {m['name']}: Secret {s['secretName']} has no key {item['key']}")
                    files_at[f"{m['mountPath']}/{item['path']}"] = item.get("mode", s.get("defaultMode", 0o644))
        for path, mode in files_at.items():
            if path.endswith(".key") and mode & 0o026:
                finding(cw, f"{path} is mounted mode {mode:o}: zrank refuses a secret key others can read")
        if folders & {"/keys/server", "/keys/self"} and spec.get("securityContext", {}).get("fsGroup") is None:
            finding(where, "mounts keys 0440 but sets no fsGroup: a non-root user could not read them")
        probes = [c.get(p) for p in ("livenessProbe", "readinessProbe", "startupProbe") if c.get(p)]
        words = list(c.get("command", [])) + list(c.get("args", []))
        for probe in probes:
            words += probe.get("exec", {}).get("command", [])
            for how in ("httpGet", "tcpSocket"):
                port = probe.get(how, {}).get("port")
                if isinstance(port, str) and port not in ports:
                    finding(cw, f"probe names port {port}, which the container does not declare")
        for word in words:
            for var in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", str(word)):
                if var not in env:
                    finding(cw, f"$({var}) is not an env var of the container")
            if str(word).startswith("/keys/") and word not in files_at and word not in folders:
                finding(cw, f"{word} is neither a mounted key file nor a mounted folder")
    for name, v in volumes.items():
        if name not in mounted:
            finding(where, f"volume {name} is declared but not mounted")
        claim = v.get("persistentVolumeClaim", {}).get("claimName")
        if claim and claim not in claims:
            finding(where, f"volume {name}: no PersistentVolumeClaim {claim}")

# Services and budgets select pods that exist; Services' target ports are named container ports.
for name, svc in by_kind.get("Service", {}).items():
    chosen = [(w, s) for w, s, labels in pods
              if w.startswith("deployment/") and matches(svc["spec"]["selector"], labels)]
    if len(chosen) != 1:
        finding(f"service/{name}", f"selects {len(chosen)} Deployments, not one")
    names = {p.get("name") for _, s in chosen for c in s["containers"] for p in c.get("ports", [])}
    for p in svc["spec"]["ports"]:
        if isinstance(p.get("targetPort"), str) and p["targetPort"] not in names:
            finding(f"service/{name}", f"targetPort {p['targetPort']} is no container port of its pods")
for name, pdb in by_kind.get("PodDisruptionBudget", {}).items():
    chosen = [w for w, _, labels in pods
              if w.startswith("deployment/") and matches(pdb["spec"]["selector"]["matchLabels"], labels)]
    if not chosen:
        finding(f"poddisruptionbudget/{name}", "selects no Deployment's pods")
    elif name == "zrank-router" and len(chosen) != 2:
        finding(f"poddisruptionbudget/{name}", f"selects {chosen}, not both routers")

for line in findings:
    print("ERROR", line)
print(f"check-manifests: {len(docs)} resources in {len(files)} files, {len(findings)} findings")
sys.exit(1 if findings else 0)
