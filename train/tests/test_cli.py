"""The CLI: determinism for a seed, --max-minutes, and every bad input (exit 2, one clear line)."""

import json
import os

import pytest
from conftest import CATALOG, run_cli, write_jsonl
from safetensors import safe_open

TIMING = {"seconds", "train_seconds", "examples_per_s", "steady_examples_per_s", "setup_seconds",
          "frozen_bottom_seconds"}


def strip_timing(report):
    report = {k: v for k, v in report.items() if k not in TIMING}
    report["options"] = {k: v for k, v in report["options"].items() if k not in ("out", "json")}
    return report


def tiny_run(base, log, out, rep, *extra):
    return run_cli("fine-tune", "--base", base, "--catalog", CATALOG, "--log", log, "--out", out, "--epochs", "1",
                   "--batch", "8", "--freeze-layers", "5", "--lr", "1e-4", "--seed", "3", "--json", rep, *extra)


def test_same_seed_same_report_and_weights(base_model, tiny_log, tmp_path):
    # Two unknown-item impressions: skipped and counted.
    rows = [json.loads(l) for l in open(tiny_log)]
    rows += [{"query": "red sofa", "item": "NOT-IN-CATALOG-1", "clicked": True},
             {"query": "red sofa", "item": "NOT-IN-CATALOG-2", "clicked": False}]
    log = write_jsonl(tmp_path / "log.jsonl", rows)
    reports, weights = [], []
    for n in (1, 2):
        r = tiny_run(base_model, log, tmp_path / f"out{n}", tmp_path / f"r{n}.json")
        assert r.returncode == 0, r.stderr
        reports.append(json.loads((tmp_path / f"r{n}.json").read_text()))
        with safe_open(str(tmp_path / f"out{n}" / "model.safetensors"), "np") as f:
            weights.append({k: f.get_tensor(k) for k in f.keys()})
    assert reports[0]["log"]["unknown_item_impressions"] == 2
    assert strip_timing(reports[0]) == strip_timing(reports[1])
    v = reports[0]["validation"]
    assert set(v) >= {"ndcg10", "auc", "base_ndcg10", "base_auc"}
    assert {"examples", "epochs", "seconds", "options"} <= set(reports[0])
    for k in weights[0]:
        assert (weights[0][k] == weights[1][k]).all(), k
    if reports[0]["best_epoch"] == 1:
        assert (weights[0]["encoder.layer.5.output.dense.weight"] != 0).any()


def test_max_minutes_stops_cleanly_with_a_checkpoint(base_model, tiny_log, tmp_path):
    r = tiny_run(base_model, tiny_log, tmp_path / "out", tmp_path / "r.json", "--max-minutes", "0.05")
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["stopped_reason"] == "max_minutes"
    assert (tmp_path / "out" / "model.safetensors").is_file()
    assert json.loads((tmp_path / "out" / "zrank_fine_tune.json").read_text())["report"]["stopped_reason"] == "max_minutes"
    assert rep["validation"]["ndcg10"] is not None


def bad(base, log, out, expect, catalog=CATALOG):
    r = run_cli("fine-tune", "--base", base, "--catalog", catalog, "--log", log, "--out", out, timeout=120)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert len(lines) == 1 and expect in lines[0], lines
    assert not os.path.exists(out) or not os.listdir(out)
    return lines[0]


def test_bad_inputs_exit_2_with_one_line(base_model, tiny_log, tmp_path):
    out = tmp_path / "out"
    rows = [json.loads(l) for l in open(tiny_log)]
    unknown = write_jsonl(tmp_path / "unknown.jsonl", [dict(r, item="X" + r["item"]) for r in rows])
    bad(base_model, unknown, out, "none of the log's")
    noclick = write_jsonl(tmp_path / "noclick.jsonl", [dict(r, clicked=False) for r in rows])
    bad(base_model, noclick, out, "no clicks")
    badjson = write_jsonl(tmp_path / "badjson.jsonl", rows[:3] + ["{not json"] + rows[3:5] + ["[1, 2]"])
    msg = bad(base_model, badjson, out, "bad JSON lines")
    assert "line 4" in msg and "line 7" in msg
    badfield = write_jsonl(tmp_path / "badfield.jsonl", rows[:2] + [dict(rows[2], position=0)])
    assert "line 3" in bad(base_model, badfield, out, "position")
    bad(base_model, tmp_path / "missing.jsonl", out, "cannot read the log")
    bad(base_model, tiny_log, out, "cannot read the catalog", catalog=tmp_path / "missing-catalog.jsonl")
    badcat = write_jsonl(tmp_path / "cat.jsonl", [{"id": "a", "title": "x"}, {"id": "a", "title": "y"}])
    bad(base_model, tiny_log, out, "duplicated id", catalog=badcat)
    # --out exists and is not empty
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    r = run_cli("fine-tune", "--base", base_model, "--catalog", CATALOG, "--log", tiny_log, "--out", full)
    assert r.returncode == 2 and "not empty" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_bad_base_folders_exit_2(base_model, tiny_log, tmp_path):
    import numpy as np
    from safetensors.numpy import save_file

    out = tmp_path / "out"
    empty = tmp_path / "empty"
    empty.mkdir()
    bad(empty, tiny_log, out, "no config.json")
    notbert = tmp_path / "notbert"
    notbert.mkdir()
    cfg = json.loads((base_model / "config.json").read_text())
    (notbert / "config.json").write_text(json.dumps(dict(cfg, model_type="gpt2")))
    bad(notbert, tiny_log, out, "not 'bert'")
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "config.json").write_text(json.dumps(cfg))
    (partial / "tokenizer.json").write_text((base_model / "tokenizer.json").read_text())
    save_file({"embeddings.LayerNorm.weight": np.ones(384, np.float32)}, str(partial / "model.safetensors"))
    bad(partial, tiny_log, out, "missing tensor")
    (partial / "model.safetensors").write_bytes(b"garbage")
    bad(partial, tiny_log, out, "cannot read")


def test_embed_bad_model_exit_2(tmp_path):
    r = run_cli("embed", "--model", tmp_path, "--texts", tmp_path / "t.jsonl", "--out", tmp_path / "e.jsonl")
    assert r.returncode == 2 and "no config.json" in r.stderr and "Traceback" not in r.stderr
