"""The fine-tune on the team's graded simulator (zrank simulate-log --graded): truth NDCG@10 gain with the default
options on the CI-sized log, int8 conversion (zrank convert) against the fp32 folder, int8 embedding fidelity.

Needs a zrank binary: .build/release/zrank when it exists, else $ZRANK, else /tmp/zrank-bin/zrank; skipped loudly
without one. One fine-tune run (session-scoped) serves every test here."""

import json
import os
import subprocess

import numpy as np
import pytest
from conftest import CATALOG, FIXTURES, REPO, run_cli

QUERIES = REPO / "bench" / "data" / "wands" / "query.csv"
# The CI-sized graded log: the same command as bench/fine-tune/README.md's CI figure.
SIMULATE = ["simulate-log", "--graded", "--catalog", str(CATALOG), "--queries", str(QUERIES), "--sessions", "800",
            "--query-pool", "300", "--seed", "1"]
GAIN_BAR = 0.02


def zrank_binary():
    for c in (REPO / ".build" / "release" / "zrank", os.environ.get("ZRANK"), "/tmp/zrank-bin/zrank"):
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return str(c)
    return None


@pytest.fixture(scope="session")
def zrank():
    z = zrank_binary()
    if z is None:
        pytest.skip("SKIPPED LOUDLY: no zrank binary (.build/release/zrank, $ZRANK or /tmp/zrank-bin/zrank): the "
                    "graded-simulator fine-tune tests did not run")
    if "--graded" not in subprocess.run([z, "simulate-log", "--help"], capture_output=True, text=True).stdout:
        pytest.skip(f"SKIPPED LOUDLY: {z} has no simulate-log --graded")
    return z


@pytest.fixture(scope="session")
def graded(zrank, base_model, tmp_path_factory):
    d = tmp_path_factory.mktemp("graded")
    r = subprocess.run([zrank, *SIMULATE, "--out", str(d / "log.jsonl"), "--truth", str(d / "truth.jsonl")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # The defaults, as `zrank fine-tune` runs them (only the paths and the report given).
    r = run_cli("fine-tune", "--base", base_model, "--catalog", CATALOG, "--log", d / "log.jsonl", "--truth",
                d / "truth.jsonl", "--out", d / "ft", "--json", d / "report.json", timeout=900)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([zrank, "convert", "--from", str(d / "ft"), "--out", str(d / "ft.zrm")], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    return d, json.loads((d / "report.json").read_text())


def evaluate(d, model):
    env_zrank = zrank_binary()
    r = run_cli("evaluate", "--model", model, "--catalog", CATALOG, "--log", d / "log.jsonl", "--truth",
                d / "truth.jsonl", "--validation-queries", d / "ft" / "validation_queries.txt",
                env={"ZRANK": env_zrank})
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_truth_gain_over_base_with_the_defaults(graded):
    d, rep = graded
    v = rep["validation"]
    print(json.dumps({k: rep[k] for k in ("seconds", "examples_per_s", "best_epoch", "epochs")}), json.dumps(v))
    assert rep["log"]["validation_queries"] >= 30
    assert v["truth_ndcg10"] - v["base_truth_ndcg10"] >= GAIN_BAR, v
    assert v["ndcg10"] > v["base_ndcg10"], v
    for h in rep["history"]:
        assert set(h["train"]) >= {"pointwise", "listwise", "inbatch", "engagement", "total"}
        assert set(h["validation"]["losses"]) == {"pointwise", "listwise", "engagement"}
        assert np.isfinite(h["validation"]["truth_ndcg10"])


def test_validation_queries_file_is_the_split(graded):
    d, rep = graded
    lines = (d / "ft" / "validation_queries.txt").read_text().split("\n")
    assert lines[-1] == "" and len(lines) - 1 == rep["log"]["validation_queries"]
    vq = set(lines[:-1])
    logged = {json.loads(l)["query"] for l in open(d / "log.jsonl")}
    assert vq <= logged and len(vq) == len(lines) - 1
    # Every list of those queries is a validation list: (user, query) pairs.
    lists = {(json.loads(l)["user"]["id"], json.loads(l)["query"]) for l in open(d / "log.jsonl")}
    assert sum(q in vq for _, q in lists) == rep["validation"]["sessions"]


def test_evaluate_matches_the_report_and_int8_stays_close(graded):
    d, rep = graded
    fp32 = evaluate(d, d / "ft")
    int8 = evaluate(d, d / "ft.zrm")
    print("fp32", fp32, "int8", int8)
    v = rep["validation"]
    assert fp32["lists"] == int8["lists"] == v["sessions"]
    assert abs(fp32["truth_ndcg10"] - v["truth_ndcg10"]) <= 1e-3, (fp32, v)
    assert abs(int8["truth_ndcg10"] - fp32["truth_ndcg10"]) <= 0.005, (int8, fp32)


def test_int8_embeddings_of_the_fine_tuned_model(graded, zrank, tmp_path):
    d, _ = graded
    texts = [json.loads(l) for l in open(FIXTURES / "texts.jsonl")]
    r = run_cli("embed", "--model", d / "ft", "--texts", FIXTURES / "texts.jsonl", "--out", tmp_path / "fp32.jsonl")
    assert r.returncode == 0, r.stderr
    fp32 = {o["id"]: np.asarray(o["embedding"]) for o in map(json.loads, open(tmp_path / "fp32.jsonl"))}
    r = subprocess.run([zrank, "embed", "--model", str(d / "ft.zrm")], capture_output=True, text=True,
                       input="".join(json.dumps({"id": t["id"], "text": t["text"]}) + "\n" for t in texts))
    assert r.returncode == 0, r.stderr
    int8 = {o["id"]: np.asarray(o["embedding"]) for o in map(json.loads, r.stdout.splitlines())}
    assert set(int8) == set(fp32) and len(fp32) == 390
    cos = np.array([fp32[i] @ int8[i] / np.linalg.norm(fp32[i]) / np.linalg.norm(int8[i]) for i in fp32])
    print(f"int8 vs fp32 cosine: min {cos.min():.5f}, mean {cos.mean():.5f}")
    assert cos.min() >= 0.99 and cos.mean() >= 0.998, (cos.min(), cos.mean())
