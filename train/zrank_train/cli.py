"""Command line: `python -m zrank_train fine-tune ...` and `python -m zrank_train embed ...`."""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")

from .errors import InputError  # noqa: E402


def _setup_jax():
    import jax

    cache = os.environ.get("ZRANK_TRAIN_JAX_CACHE")
    if cache:  # persistent XLA compilation cache (tests use it to compile the train step once)
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def _fine_tune_parser(sub):
    p = sub.add_parser("fine-tune", help="fine-tune the bi-encoder on a click/engagement log")
    p.add_argument("--base", required=True, help="Hugging Face BERT folder (all-MiniLM-L6-v2)")
    p.add_argument("--catalog", required=True, help='JSON lines {"id", "title", "text"?}')
    p.add_argument("--log", required=True, help='JSON lines {"query", "item", "user"?, "position"?, "clicked", '
                                                '"dwell_s"?}')
    p.add_argument("--out", required=True, help="folder to write (absent or empty)")
    p.add_argument("--validation", type=float, default=0.2, help="share of queries held out (default 0.2)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch", type=int, default=16, help="impression lists (query sessions) per step")
    p.add_argument("--lr", type=float, default=3e-4, help="encoder learning rate (AdamW, default 3e-4)")
    p.add_argument("--head-lr", type=float, default=1e-3, help="heads' learning rate after their warm start")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--freeze-layers", type=int, default=5, help="freeze the embeddings and the bottom N layers "
                   "(default 5: only the top layer trains)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-minutes", type=float, default=None, help="stop cleanly after M minutes (best so far)")
    p.add_argument("--json", default=None, help="write the report here")
    p.add_argument("--truth", default=None, help='JSON lines {"query", "item", "grade"}: graded validation NDCG')
    p.add_argument("--list-cap", type=int, default=20, help="items per impression list (top positions kept)")
    p.add_argument("--item-tokens", type=int, default=40, help="item tokens a training step reads (default 40)")
    p.add_argument("--alpha", type=float, default=1.0, help="weight of the click losses")
    p.add_argument("--beta", type=float, default=0.1, help="weight of the engagement loss")
    p.add_argument("--inbatch-weight", type=float, default=0.1, help="weight of the in-batch negatives loss")
    p.add_argument("--pointwise-weight", type=float, default=1.0, help="weight of the pointwise click loss")
    p.add_argument("--listwise-weight", type=float, default=1.0, help="weight of the listwise click loss")
    p.add_argument("--warmup", type=float, default=0.1, help="share of the steps with a linear lr warmup")
    p.add_argument("--patience", type=int, default=2, help="epochs without validation gain before stopping")
    p.add_argument("--dropout", action="store_true", help="train with dropout 0.1 (default off)")
    p.add_argument("--no-dropout", action="store_true", help="train without dropout (the default)")


def _embed_parser(sub):
    p = sub.add_parser("embed", help="fp32 embeddings of texts with a model folder")
    p.add_argument("--model", required=True)
    p.add_argument("--texts", required=True, help='JSON lines {"id", "text"}')
    p.add_argument("--out", required=True, help='JSON lines {"id", "embedding"}')
    p.add_argument("--max-length", type=int, default=128)


def _evaluate_parser(sub):
    p = sub.add_parser("evaluate", help="validation figures of a model folder or a zrank .zrm file")
    p.add_argument("--model", required=True, help="a Hugging Face folder (fp32 forward) or a .zrm file (embedded "
                                                  "by `$ZRANK embed`, default zrank on PATH or /tmp/zrank-bin/zrank)")
    p.add_argument("--catalog", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--truth", default=None)
    p.add_argument("--validation-queries", required=True, help="one query per line (fine-tune's "
                                                               "validation_queries.txt)")
    p.add_argument("--max-length", type=int, default=128)


def zrank_binary() -> str:
    import shutil as sh

    for c in (os.environ.get("ZRANK"), sh.which("zrank"), "/tmp/zrank-bin/zrank"):
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    raise InputError("no zrank binary: set ZRANK, put zrank on PATH or build it")


def zrank_embed(model: str, texts: list[str], max_length: int = 128):
    """Embeddings of texts with a .zrm model via `zrank embed` (stdin {"id","text"}, stdout {"id","embedding"})."""
    import subprocess

    import numpy as np

    inp = "".join(json.dumps({"id": str(n), "text": t}) + "\n" for n, t in enumerate(texts))
    r = subprocess.run([zrank_binary(), "embed", "--model", model, "--max-length", str(max_length)], input=inp,
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise InputError(f"zrank embed --model {model} failed ({r.returncode}): {r.stderr.strip()[-500:]}")
    vecs = {}
    for line in r.stdout.splitlines():
        if line.strip():
            o = json.loads(line)
            vecs[int(o["id"])] = o["embedding"]
    if len(vecs) != len(texts):
        raise InputError(f"zrank embed returned {len(vecs)} embeddings for {len(texts)} texts")
    out = np.asarray([vecs[n] for n in range(len(texts))], np.float32)
    return out


def run_evaluate(a) -> int:
    from . import data as D
    from . import train as T

    catalog = D.read_catalog(a.catalog)
    known = [r for r in D.read_log(a.log) if r.item in catalog]
    truth = D.read_truth(a.truth) if a.truth else None
    vq = set(D.read_query_lines(a.validation_queries))
    lists = [s for s in D.evaluation_lists(known) if s.query in vq]
    if not lists:
        raise InputError(f"{a.log}: no impression list of the {len(vq)} validation queries")
    queries = sorted({s.query for s in lists})
    items = sorted({i for s in lists for i in s.items})
    texts = queries + [catalog[i] for i in items]
    if a.model.endswith(".zrm"):
        emb = zrank_embed(a.model, texts, a.max_length)
    else:
        from . import model as M

        _setup_jax()
        base = M.load_base(a.model)
        tok = M.load_tokenizer(a.model, a.max_length)
        emb = M.Encoder(base.config)(base.params(), M.tokenize(tok, texts))
    qe = dict(zip(queries, emb[:len(queries)]))
    ie = dict(zip(items, emb[len(queries):]))
    ev = T.evaluate(lists, T.session_scores(lists, qe, ie), None, truth)
    print(json.dumps({"truth_ndcg10": ev.get("truth_ndcg10"), "ndcg10": ev["ndcg10"], "auc": ev["auc"],
                      "lists": ev["lists"], "truth_lists": ev.get("truth_sessions"),
                      "ndcg_lists": ev["ndcg_sessions"], "model": a.model}))
    return 0


def run_fine_tune(a) -> int:
    from . import train as T

    if a.json:
        parent = os.path.dirname(os.path.abspath(a.json))
        if not os.path.isdir(parent):
            raise InputError(f"--json {a.json}: folder {parent} does not exist")
    for name in ("list_cap", "item_tokens", "patience"):
        if getattr(a, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} must be >= 1")
    if a.max_minutes is not None and a.max_minutes <= 0:
        raise InputError("--max-minutes must be > 0")
    o = T.Options(base=a.base, catalog=a.catalog, log=a.log, out=a.out, validation=a.validation, epochs=a.epochs,
                  batch=a.batch, lr=a.lr, head_lr=a.head_lr, weight_decay=a.weight_decay,
                  freeze_layers=a.freeze_layers, seed=a.seed, max_minutes=a.max_minutes, json=a.json, truth=a.truth,
                  list_cap=a.list_cap, item_tokens=a.item_tokens, alpha=a.alpha, beta=a.beta,
                  inbatch_weight=a.inbatch_weight, pointwise_weight=a.pointwise_weight,
                  listwise_weight=a.listwise_weight, warmup=a.warmup, patience=a.patience, dropout=a.dropout and not a.no_dropout)
    _setup_jax()
    r = T.fine_tune(o, log=lambda s: print(s, file=sys.stderr, flush=True))
    T.write_result(r, a.out)
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(r.report, f, indent=2)
            f.write("\n")
    v = r.report["validation"]
    if v:
        print(f"zrank fine-tune: wrote {a.out}: validation NDCG@10 {v['ndcg10']:.4f} (base {v['base_ndcg10']:.4f}), "
              f"AUC {v['auc']:.4f} (base {v['base_auc']:.4f}), best epoch {r.report['best_epoch']}, "
              f"{r.report['stopped_reason']}", file=sys.stderr)
    else:
        print(f"zrank fine-tune: wrote {a.out} (no validation split)", file=sys.stderr)
    return 0


def run_embed(a) -> int:
    from . import data as D
    from . import model as M

    base = M.load_base(a.model)
    texts = []
    for n, o in D._lines(a.texts, "texts"):
        if not isinstance(o.get("id"), str) or not isinstance(o.get("text"), str):
            raise InputError(f'{a.texts}: line {n}: expected {{"id": str, "text": str}}')
        texts.append(o)
    try:
        f = open(a.out, "w", encoding="utf-8")
    except OSError as e:
        raise InputError(f"{a.out}: cannot write: {e.strerror or e}") from None
    _setup_jax()
    tok = M.load_tokenizer(a.model, a.max_length)
    emb = M.Encoder(base.config)(base.params(), M.tokenize(tok, [t["text"] for t in texts]))
    with f:
        for t, e in zip(texts, emb):
            f.write(json.dumps({"id": t["id"], "embedding": [float(x) for x in e]}) + "\n")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zrank_train")
    sub = parser.add_subparsers(dest="command", required=True)
    _fine_tune_parser(sub)
    _embed_parser(sub)
    _evaluate_parser(sub)
    a = parser.parse_args(argv)
    prog = "zrank fine-tune" if a.command == "fine-tune" else f"zrank_train {a.command}"
    try:
        return {"fine-tune": run_fine_tune, "embed": run_embed, "evaluate": run_evaluate}[a.command](a)
    except InputError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except FloatingPointError as e:
        print(f"{prog}: error: training diverged: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
