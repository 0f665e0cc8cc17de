"""The JAX fp32 forward against sentence-transformers' reference vectors (Tests/Fixtures/minilm)."""

import json

import numpy as np
from conftest import FIXTURES, run_cli


def test_embed_cli_matches_sentence_transformers(base_model, tmp_path):
    out = tmp_path / "emb.jsonl"
    r = run_cli("embed", "--model", base_model, "--texts", FIXTURES / "texts.jsonl", "--out", out)
    assert r.returncode == 0, r.stderr
    ref = {o["id"]: np.asarray(o["embedding"]) for o in map(json.loads, open(FIXTURES / "embeddings.jsonl"))}
    got = {o["id"]: np.asarray(o["embedding"]) for o in map(json.loads, open(out))}
    texts = [json.loads(l)["id"] for l in open(FIXTURES / "texts.jsonl")]
    assert list(got) == texts and len(texts) == 390
    worst = min((float(got[i] @ ref[i] / np.linalg.norm(got[i]) / np.linalg.norm(ref[i])), i) for i in texts)
    assert worst[0] >= 0.99999, worst
    for i in texts:
        assert abs(np.linalg.norm(got[i]) - 1) < 1e-5
