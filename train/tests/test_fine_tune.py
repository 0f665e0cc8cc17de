"""A real fine-tune (real weights, a generated position-biased log) and the folder it writes."""

import json

import numpy as np
import pytest
from conftest import CATALOG, JAX_CACHE, write_jsonl
from safetensors import safe_open


@pytest.fixture(scope="module")
def run(base_model, tmp_path_factory):
    import jax
    import loggen
    from zrank_train import train as T

    jax.config.update("jax_compilation_cache_dir", str(JAX_CACHE))
    d = tmp_path_factory.mktemp("ft")
    log, truth = loggen.generate(str(CATALOG), sessions=240, shown=8, seed=1)
    write_jsonl(d / "log.jsonl", log)
    write_jsonl(d / "truth.jsonl", truth)
    o = T.Options(base=str(base_model), catalog=str(CATALOG), log=str(d / "log.jsonl"), out=str(d / "out"),
                  truth=str(d / "truth.jsonl"), epochs=2, freeze_layers=4, lr=3e-4, seed=0)
    r = T.fine_tune(o, log=lambda s: None)
    T.write_result(r, o.out)
    return r, d / "out"


def test_improves_validation_ndcg_over_base(run):
    r, _ = run
    v = r.report["validation"]
    print(json.dumps(v, indent=1))
    assert r.report["log"]["validation_queries"] >= 10
    assert v["ndcg10"] > v["base_ndcg10"] + 0.01, v
    assert v["truth_ndcg10"] > v["base_truth_ndcg10"], v
    assert v["auc"] > 0.5 and v["base_auc"] > 0.5


def test_report_has_per_head_losses_per_epoch(run):
    r, _ = run
    assert r.report["epochs"] >= 1 and r.report["examples"] > 0 and r.report["seconds"] > 0
    assert r.report["options"]["freeze_layers"] == 4
    for h in r.report["history"]:
        assert set(h["train"]) >= {"pointwise", "listwise", "inbatch", "engagement", "total"}
        assert set(h["validation"]["losses"]) == {"pointwise", "listwise", "engagement"}
        assert all(np.isfinite(list(h["train"].values())))


def test_folder_has_base_tensor_names_shapes_dtypes(run, base_model):
    r, out = run
    with safe_open(str(base_model / "model.safetensors"), "np") as b, safe_open(str(out / "model.safetensors"), "np") as f:
        assert sorted(b.keys()) == sorted(f.keys())
        assert f.metadata() == b.metadata()
        for k in b.keys():
            x, y = b.get_tensor(k), f.get_tensor(k)
            assert (x.shape, x.dtype) == (y.shape, y.dtype), k
            frozen = k.startswith(("embeddings.", "pooler.")) or any(k.startswith(f"encoder.layer.{i}.") for i in range(4))
            if frozen:
                assert np.array_equal(x, y), f"{k} should be frozen"
        assert not np.array_equal(b.get_tensor("encoder.layer.5.output.dense.weight"),
                                  f.get_tensor("encoder.layer.5.output.dense.weight"))
    for name in ("config.json", "tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json",
                 "modules.json", "sentence_bert_config.json", "1_Pooling/config.json", "zrank_fine_tune.json"):
        assert (out / name).is_file(), name
    meta = json.loads((out / "zrank_fine_tune.json").read_text())
    heads = meta["heads"]
    assert set(heads) == {"w", "b", "pos_bias", "a", "c"} and heads["pos_bias"][0] == 0
    assert heads["w"] > 0
    assert meta["report"]["validation"]["ndcg10"] == r.report["validation"]["ndcg10"]


def test_reloaded_folder_gives_the_trained_embeddings(run):
    from zrank_train import model as M

    r, out = run
    m = M.load_base(str(out))
    tok = M.load_tokenizer(str(out), 128)
    texts = ["outdoor accent chairs", "cozy bedding", "Guilford scandinavian chrome glass accent chair oversized"]
    seqs = M.tokenize(tok, texts)
    enc = M.Encoder(m.config)
    reloaded = enc(m.params(), seqs)
    trained = enc({k: np.asarray(v) for k, v in r.params.items() if k in m.params()}, seqs)
    np.testing.assert_array_equal(reloaded, trained)
    base = enc(M.load_base(r.base.folder).params(), seqs)
    assert np.max(np.abs(base - trained)) > 1e-4
