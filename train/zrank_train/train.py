"""Fine-tuning: a bi-encoder with click (pointwise + listwise [+ in-batch]) and engagement heads, trained jointly.

s(q, d) = cosine(emb(q), emb(d)); click logit = w*s + b + pos_bias[position] (position: training only);
engagement = a*s + c regressed on log(1 + dwell_s) of clicked impressions.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import data as D
from . import model as M
from .errors import InputError
from .metrics import auc, ndcg_at
from .progress import Progress

MAX_POSITION = 50  # pos_bias has one entry per position 1..MAX_POSITION; deeper positions share the last one


@dataclass
class Options:
    base: str
    catalog: str
    log: str
    out: str
    validation: float = 0.2
    epochs: int = 1
    batch: int = 16
    lr: float = 3e-4
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.1
    freeze_layers: int = 5
    seed: int = 0
    max_minutes: float | None = None
    json: str | None = None
    truth: str | None = None
    list_cap: int = 20
    item_tokens: int = 40
    query_tokens: int = 128
    alpha: float = 1.0
    beta: float = 0.1
    inbatch_weight: float = 0.1
    pointwise_weight: float = 1.0
    listwise_weight: float = 1.0
    inbatch_scale: float = 20.0
    patience: int = 2
    dropout: bool = False


@dataclass
class Result:
    report: dict
    params: dict           # best encoder parameters (numpy, HF names)
    heads: dict
    base: M.BaseModel = field(repr=False)
    validation_queries: list = field(default_factory=list)  # the held-out queries, sorted


# ---------------------------------------------------------------------------------------------------------------
# Losses


def head_values(heads):
    pos = heads["pos"].at[0].set(0.0)  # position 1 is the reference: b is the click logit there
    return heads["w"], heads["b"], pos, heads["a"], heads["c"]


def losses_from_scores(s, heads, bt):
    """Per-head losses from cosines s [S, C] and a batch dict (numpy or jax arrays). Returns a dict of scalars."""
    w, b, pos, a, c = head_values(heads)
    valid, clicked = bt["valid"], bt["clicked"]
    pterm = pos[bt["pos_idx"]] * bt["has_pos"]
    logit = w * s + b + pterm
    bce = jnp.maximum(logit, 0) - logit * clicked + jnp.log1p(jnp.exp(-jnp.abs(logit)))
    pointwise = jnp.sum(bce * valid) / jnp.maximum(jnp.sum(valid), 1.0)
    # Listwise: softmax over the list's click logits (b cancels), clicked items as the target distribution.
    ll = jnp.where(valid > 0, w * s + pterm, -1e9)
    logp = jax.nn.log_softmax(ll, axis=-1)
    nclick = jnp.sum(clicked * valid, axis=-1)
    has = (nclick > 0).astype(jnp.float32)
    per_list = -jnp.sum(clicked * valid * logp, axis=-1) / jnp.maximum(nclick, 1.0)
    listwise = jnp.sum(per_list * has) / jnp.maximum(jnp.sum(has), 1.0)
    e = a * s + c
    hd = bt["has_dwell"]
    engagement = jnp.sum(hd * jnp.square(e - bt["log_dwell"])) / jnp.maximum(jnp.sum(hd), 1.0)
    return {"pointwise": pointwise, "listwise": listwise, "engagement": engagement}


def inbatch_loss(sim, pos_sim, bt):
    """MultipleNegativesRanking-like, on the step's unique items: each clicked (query, item) pair against the items
    clicked in the batch's lists of other queries (items also shown to this list are not used as its negatives).
    sim [S, U]: scaled cosines of the lists' queries and the unique items; pos_sim [S, C]: those of each list's
    items."""
    neg = ((bt["other_q"] @ bt["click_su"]) > 0) & (bt["shown_su"] == 0) & (bt["u_valid"][None, :] > 0)
    has_neg = jnp.any(neg, axis=-1)
    neg_lse = jax.nn.logsumexp(jnp.where(neg, sim, -1e9), axis=-1)  # [S], finite (gradient) even without negatives
    pair = (bt["clicked"] * bt["valid"]) > 0
    per = jnp.logaddexp(pos_sim, neg_lse[:, None]) - pos_sim
    use = pair & has_neg[:, None]
    per = jnp.where(use, per, 0.0)
    n = jnp.sum(use.astype(jnp.float32))
    return jnp.sum(per) / jnp.maximum(n, 1.0)


# ---------------------------------------------------------------------------------------------------------------
# Inputs: every distinct text once, on the device


class Store:
    """Per distinct text (index = position in `texts`), the encoder's input at full length (query_tokens): the
    frozen bottom's hidden states [N, L, hidden] (freeze_layers > 0; computed once, without dropout) or the token
    ids [N, L]; one padded device array plus its mask. `train_x` / `train_mask` are the first `train_len` tokens,
    what a training step reads (the item token cap: the frozen layers saw the whole text, the trained layers see
    its first train_len tokens)."""

    def __init__(self, encoder, params0, seqs, freeze: int, width: int, train_len: int):
        n = len(seqs)
        self.length = M.bucket(max(len(t) for t in seqs), 8)
        mask = np.zeros((n, self.length), np.int32)
        self.lengths = np.asarray([len(t) for t in seqs], np.int32)
        for r, t in enumerate(seqs):
            mask[r, :len(t)] = 1
        if freeze > 0:
            x = np.zeros((n, self.length, width), np.float32)
            for r, h in enumerate(encoder.hidden(params0, seqs, freeze)):
                x[r, :len(h)] = h
        else:
            x = np.zeros((n, self.length), np.int32)
            for r, t in enumerate(seqs):
                x[r, :len(t)] = t
        self.train_len = min(self.length, M.bucket(train_len, 8))
        self.x, self.mask = jnp.asarray(x), jnp.asarray(mask)
        if self.train_len < self.length:
            self.train_x, self.train_mask = jnp.asarray(x[:, :self.train_len]), jnp.asarray(mask[:, :self.train_len])
        else:
            self.train_x, self.train_mask = self.x, self.mask


GROUP = 4  # a step's lists come in blocks of up to GROUP lists of the same query (their shown items overlap)
U_STEP = 64  # the number of unique items per step is padded to a multiple of this (few compiled shapes)


def plan_epoch(train: list[D.Session], batch: int, rng) -> list[list[int]]:
    """The epoch's steps (lists of training-list indices): lists grouped by query in blocks of up to GROUP, blocks
    shuffled, then cut into steps of `batch` lists. Same-query lists in one step share most shown items, which a
    step encodes once."""
    by_q: dict[str, list[int]] = {}
    for i, s in enumerate(train):
        by_q.setdefault(s.query, []).append(i)
    blocks = []
    for q in sorted(by_q):
        idx = [by_q[q][j] for j in rng.permutation(len(by_q[q]))]
        blocks += [idx[k:k + GROUP] for k in range(0, len(idx), GROUP)]
    order = [i for b in rng.permutation(len(blocks)) for i in blocks[b]]
    return [order[k:k + batch] for k in range(0, len(order), batch)]


def make_batch(chunk: list[D.Session], S: int, C: int, q_index, i_index) -> dict:
    """Numpy arrays of one step: query rows qi [S], unique item rows ui [U] (store indices), each list position's
    slot into ui [S, C], labels and masks."""
    uniq: dict[int, int] = {}
    for s in chunk:
        for it in s.items:
            uniq.setdefault(i_index[it], len(uniq))
    U = min(S * C, M.bucket(len(uniq), U_STEP)) if len(uniq) <= S * C else len(uniq)
    bt = {k: np.zeros((S, C), np.float32) for k in ("valid", "clicked", "has_pos", "has_dwell", "log_dwell")}
    bt["pos_idx"] = np.zeros((S, C), np.int32)
    bt["slot"] = np.zeros((S, C), np.int32)
    bt["qi"] = np.zeros((S,), np.int32)
    bt["q_valid"] = np.zeros((S,), np.int32)
    bt["ui"] = np.zeros((U,), np.int32)
    bt["u_valid"] = np.zeros((U,), np.float32)
    bt["shown_su"] = np.zeros((S, U), np.float32)
    bt["click_su"] = np.zeros((S, U), np.float32)
    for k, u in uniq.items():
        bt["ui"][u] = k
        bt["u_valid"][u] = 1
    qkey = np.full((S,), -1, np.int64)
    for si, s in enumerate(chunk):
        bt["qi"][si] = qkey[si] = q_index[s.query]
        bt["q_valid"][si] = 1
        for j, item in enumerate(s.items):
            u = uniq[i_index[item]]
            bt["slot"][si, j] = u
            bt["valid"][si, j] = 1
            bt["shown_su"][si, u] = 1
            if s.clicked[j]:
                bt["clicked"][si, j] = 1
                bt["click_su"][si, u] = 1
            p = s.positions[j]
            if p is not None:
                bt["has_pos"][si, j] = 1
                bt["pos_idx"][si, j] = min(p, MAX_POSITION) - 1
            if s.clicked[j] and s.dwell[j] is not None:
                bt["has_dwell"][si, j] = 1
                bt["log_dwell"][si, j] = math.log1p(s.dwell[j])
    real = qkey >= 0
    bt["other_q"] = ((qkey[:, None] != qkey[None, :]) & real[:, None] & real[None, :]).astype(np.float32)
    bt["examples"] = int(bt["valid"].sum())
    return bt


# ---------------------------------------------------------------------------------------------------------------
# Evaluation


class Embedder:
    """Sentence embeddings of store rows at full length, no dropout, in chunks of a fixed row count (one compiled
    shape per store)."""

    def __init__(self, cfg, freeze: int, rows: int = 128):
        self.rows, self.width = rows, cfg.hidden_size
        top = cfg.num_hidden_layers
        if freeze > 0:
            self._f = jax.jit(lambda p, x, m: M.pool(M.run_layers(p, x, m, cfg, freeze, top), m))
        else:
            self._f = jax.jit(lambda p, x, m: M.encode(p, x, m, cfg))

    def __call__(self, params, store: Store, idx) -> np.ndarray:
        """Rows sorted by length, in chunks padded to lengths of multiples of 16 (few shapes, little padding)."""
        idx = np.asarray(idx, np.int32)
        lens = store.lengths[idx]
        order = np.argsort(lens, kind="stable")
        out = np.zeros((len(idx), self.width), np.float32)
        for k in range(0, len(idx), self.rows):
            part = order[k:k + self.rows]
            pad = np.zeros((self.rows,), np.int32)
            pad[:len(part)] = idx[part]
            L = M.bucket(int(lens[part].max()), 16, store.length)
            e = self._f(params, store.x[pad, :L], store.mask[pad, :L])
            out[part] = np.asarray(e)[:len(part)]
        return out


def session_scores(sessions, qemb, iemb):
    return [np.array([float(qemb[s.query] @ iemb[i]) for i in s.items], np.float64) for s in sessions]


def evaluate(sessions, scores, heads_np, truth=None) -> dict:
    """Validation figures over impression lists (data.evaluation_lists): NDCG@10 of each list's shown items ranked
    by the cosine (gain: clicked; truth: 2^grade - 1, ungraded pairs grade 0; ties: log order; lists without any
    gain skipped), AUC of w*s + b against the clicks of every impression."""
    nd, tn = [], []
    all_s, all_y = [], []
    w, b = (float(heads_np["w"]), float(heads_np["b"])) if heads_np is not None else (1.0, 0.0)
    for s, sc in zip(sessions, scores):
        v = ndcg_at(sc, [1.0 if c else 0.0 for c in s.clicked])
        if v is not None:
            nd.append(v)
        if truth is not None:
            tv = ndcg_at(sc, [2.0 ** truth.get((s.query, i), 0.0) - 1.0 for i in s.items])
            if tv is not None:
                tn.append(tv)
        all_s.extend((w * sc + b).tolist())
        all_y.extend(s.clicked)
    out = {"ndcg10": float(np.mean(nd)) if nd else None, "auc": auc(all_s, all_y), "ndcg_sessions": len(nd),
           "lists": len(sessions)}
    if truth is not None:
        out["truth_ndcg10"] = float(np.mean(tn)) if tn else None
        out["truth_sessions"] = len(tn)
    return out


def stack_scores(sessions, scores, cap):
    """Scores and batch arrays for all sessions at once (numpy), to compute the heads' losses on a split."""
    S = len(sessions)
    sc = np.zeros((S, cap), np.float32)
    bt = {k: np.zeros((S, cap), np.float32) for k in ("valid", "clicked", "has_pos", "has_dwell", "log_dwell")}
    bt["pos_idx"] = np.zeros((S, cap), np.int32)
    for si, (s, x) in enumerate(zip(sessions, scores)):
        n = min(len(s.items), cap)
        sc[si, :n] = x[:n]
        bt["valid"][si, :n] = 1
        for j in range(n):
            bt["clicked"][si, j] = float(s.clicked[j])
            if s.positions[j] is not None:
                bt["has_pos"][si, j] = 1
                bt["pos_idx"][si, j] = min(s.positions[j], MAX_POSITION) - 1
            if s.clicked[j] and s.dwell[j] is not None:
                bt["has_dwell"][si, j] = 1
                bt["log_dwell"][si, j] = math.log1p(s.dwell[j])
    return sc, bt


def fit_heads(sc, bt, heads, steps=400, lr=0.05):
    """Heads alone on fixed cosines (the encoder frozen): the warm start, and base_auc's w, b."""
    opt = optax.adam(lr)
    state = opt.init(heads)
    sc = jnp.asarray(sc)
    btj = {k: jnp.asarray(v) for k, v in bt.items()}

    def loss(h):
        l = losses_from_scores(sc, h, btj)
        return l["pointwise"] + l["listwise"] + l["engagement"]

    @jax.jit
    def step(h, st):
        g = jax.grad(loss)(h)
        u, st = opt.update(g, st, h)
        return optax.apply_updates(h, u), st

    for _ in range(steps):
        heads, state = step(heads, state)
    return heads


def head_losses(sc, bt, heads) -> dict:
    l = losses_from_scores(jnp.asarray(sc), heads, {k: jnp.asarray(v) for k, v in bt.items()})
    return {k: float(v) for k, v in l.items()}


# ---------------------------------------------------------------------------------------------------------------
# The run


def check_out(out: str):
    if os.path.exists(out):
        if not os.path.isdir(out):
            raise InputError(f"{out}: exists and is not a folder")
        if os.listdir(out):
            raise InputError(f"{out}: exists and is not empty")
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise InputError(f"{out}: parent folder {parent} does not exist")


def fine_tune(o: Options, log=print) -> Result:
    t0 = time.monotonic()
    deadline = t0 + o.max_minutes * 60 if o.max_minutes is not None else None
    if not 0 <= o.validation < 1:
        raise InputError(f"--validation {o.validation}: must be in [0, 1)")
    if o.epochs < 1 or o.batch < 1:
        raise InputError("--epochs and --batch must be >= 1")
    check_out(o.out)
    base = M.load_base(o.base)
    if not 0 <= o.freeze_layers <= base.config.num_hidden_layers - 1:
        raise InputError(f"--freeze-layers {o.freeze_layers}: the model has {base.config.num_hidden_layers} "
                         "layers (at most that minus one can be frozen)")
    catalog = D.read_catalog(o.catalog)
    rows = D.read_log(o.log)
    truth = D.read_truth(o.truth) if o.truth else None
    known = [r for r in rows if r.item in catalog]
    unknown = len(rows) - len(known)
    if not known:
        raise InputError(f"{o.log}: none of the log's {len(rows)} impressions is of an item in {o.catalog}")
    if not any(r.clicked for r in known):
        raise InputError(f"{o.log}: the log has no clicks (on catalog items)")
    sessions, dropped = D.sessions_of(known, o.list_cap)
    val_queries = D.validation_queries({s.query for s in sessions}, o.validation, o.seed)
    train = [s for s in sessions if s.query not in val_queries]
    # Validation figures: every shown impression of each (user, query) of a validation query, in log order.
    val = [s for s in D.evaluation_lists(known) if s.query in val_queries]
    if not any(s.clicks for s in train):
        raise InputError(f"{o.log}: no clicks left in the training split (--validation {o.validation})")
    cap = max(len(s.items) for s in train)
    val_cap = max((len(s.items) for s in val), default=1)

    # Every distinct query and item once, at full length (query_tokens, as serving embeds them).
    tok = M.load_tokenizer(o.base, o.query_tokens)
    queries = sorted({r.query for r in known})
    items = sorted({r.item for r in known})
    q_index = {q: n for n, q in enumerate(queries)}
    i_index = {i: n for n, i in enumerate(items)}
    cfg = base.config
    encoder = M.Encoder(cfg)
    params0 = base.params()
    ts_ = time.monotonic()
    q_store = Store(encoder, params0, M.tokenize(tok, queries), o.freeze_layers, cfg.hidden_size, o.query_tokens)
    i_store = Store(encoder, params0, M.tokenize(tok, [catalog[i] for i in items]), o.freeze_layers,
                    cfg.hidden_size, o.item_tokens)
    store_seconds = time.monotonic() - ts_
    embedder = Embedder(cfg, o.freeze_layers)

    def embed_lists(params, ss):
        qs = sorted({s.query for s in ss})
        its = sorted({i for s in ss for i in s.items})
        qe = embedder(params, q_store, [q_index[q] for q in qs])
        ie = embedder(params, i_store, [i_index[i] for i in its])
        return dict(zip(qs, qe)), dict(zip(its, ie))

    rng = np.random.RandomState(o.seed)

    # Warm start of the heads on the base model's cosines (a sample of training lists), encoder frozen.
    heads = {"w": jnp.float32(10.0), "b": jnp.float32(-3.0), "pos": jnp.zeros((MAX_POSITION,), jnp.float32),
             "a": jnp.float32(1.0), "c": jnp.float32(2.0)}
    sample = [train[i] for i in sorted(rng.choice(len(train), min(len(train), 256), replace=False))]
    qe, ie = embed_lists(params0, sample)
    ssc, sbt = stack_scores(sample, session_scores(sample, qe, ie), cap)
    heads = fit_heads(ssc, sbt, heads)
    log(f"zrank fine-tune: {len(known)} impressions in {len(sessions)} lists ({len(train)} train, {len(val)} "
        f"validation, {len(val_queries)} validation queries); {unknown} of unknown items skipped")

    def validate(params, heads_):
        qe, ie = embed_lists(params, val)
        scores = session_scores(val, qe, ie)
        h = {k: np.asarray(v) for k, v in heads_.items()}
        ev = evaluate(val, scores, h, truth)
        vsc, vbt = stack_scores(val, scores, val_cap)
        ev["losses"] = head_losses(vsc, vbt, heads_)
        return ev

    base_eval = validate(params0, heads) if val else None
    if base_eval is not None:
        # base_auc: raw cosine (AUC is rank-based; w > 0), base_ndcg10: ranking by cosine.
        log(f"zrank fine-tune: base model on validation: NDCG@10 {base_eval['ndcg10']}, AUC {base_eval['auc']}"
            + (f", truth NDCG@10 {base_eval['truth_ndcg10']}" if truth is not None else ""))

    # Trainable / frozen split: embeddings and the bottom freeze_layers layers are not differentiated at all.
    def frozen_name(n):
        if n.startswith("embeddings."):
            return o.freeze_layers > 0
        return int(n.split(".")[2]) < o.freeze_layers

    trainable = {n: v for n, v in params0.items() if not frozen_name(n)}
    frozen = {n: v for n, v in params0.items() if frozen_name(n)}
    plans = [plan_epoch(train, o.batch, rng) for _ in range(o.epochs)]
    steps_per_epoch = len(plans[0])
    total_steps = steps_per_epoch * o.epochs
    warm = max(1, int(round(o.warmup * total_steps)))

    def schedule(lr):
        return optax.join_schedules(
            [optax.linear_schedule(0.0, lr, warm), optax.linear_schedule(lr, 0.0, max(1, total_steps - warm))], [warm])

    decay_mask = {"enc": {n: (n.endswith(".weight") and "LayerNorm" not in n) for n in trainable},
                  "heads": {k: False for k in heads}}
    labels = {"enc": {n: "encoder" for n in trainable}, "heads": {k: "heads" for k in heads}}
    tx = optax.chain(
        optax.clip_by_global_norm(1.0),
        optax.multi_transform({
            "encoder": optax.adamw(schedule(o.lr), weight_decay=o.weight_decay, mask=decay_mask),
            "heads": optax.adam(schedule(o.head_lr)),
        }, labels))
    state = {"enc": trainable, "heads": heads}
    opt_state = tx.init(state)
    cached = o.freeze_layers > 0
    top = cfg.num_hidden_layers

    def loss_fn(st, frozen_, qx_all, qm_all, ix_all, im_all, bt, key):
        p = {**frozen_, **st["enc"]}
        kq, kd = (jax.random.split(key) if o.dropout else (None, None))
        qx, qm = qx_all[bt["qi"]], qm_all[bt["qi"]] * bt["q_valid"][:, None]
        dx, dm = ix_all[bt["ui"]], im_all[bt["ui"]] * bt["u_valid"].astype(jnp.int32)[:, None]
        if cached:
            qe = M.pool(M.run_layers(p, qx, qm, cfg, o.freeze_layers, top, kq), qm)
            de = M.pool(M.run_layers(p, dx, dm, cfg, o.freeze_layers, top, kd), dm)
        else:
            qe = M.encode(p, qx, qm, cfg, kq)
            de = M.encode(p, dx, dm, cfg, kd)
        cos = qe @ de.T                                              # [S, U]
        s = jnp.take_along_axis(cos, bt["slot"], axis=1)             # [S, C]
        l = losses_from_scores(s, st["heads"], bt)
        l["inbatch"] = (inbatch_loss(o.inbatch_scale * cos, o.inbatch_scale * s, bt) if o.inbatch_weight > 0
                        else jnp.float32(0))
        total = (o.alpha * (o.pointwise_weight * l["pointwise"] + o.listwise_weight * l["listwise"]
                            + o.inbatch_weight * l["inbatch"]) + o.beta * l["engagement"])
        l["total"] = total
        return total, l

    @jax.jit
    def train_step(st, ost, frozen_, qx_all, qm_all, ix_all, im_all, bt, key):
        (_, l), g = jax.value_and_grad(loss_fn, has_aux=True)(st, frozen_, qx_all, qm_all, ix_all, im_all, bt, key)
        u, ost = tx.update(g, ost, st)
        return optax.apply_updates(st, u), ost, l

    n_train = sum(len(s.items) for s in train)
    root_key = jax.random.key(o.seed, impl="unsafe_rbg")  # fast dropout masks on CPU; deterministic per seed

    def snapshot(st):
        return {n: np.asarray(v) for n, v in {**frozen, **st["enc"]}.items()}, \
            {k: np.asarray(v) for k, v in st["heads"].items()}

    best = {"epoch": 0, "ndcg10": base_eval["ndcg10"] if base_eval else None, "eval": base_eval}
    best["params"], best["heads"] = snapshot(state)
    history = []
    stopped = "epochs"
    seen = 0
    train_seconds = 0.0
    step_times = []
    step = 0
    since_best = 0
    progress = Progress(n_train * o.epochs)
    epochs_run = 0.0
    setup_seconds = time.monotonic() - t0
    try:
        for epoch in range(1, o.epochs + 1):
            sums, nb = {}, 0
            interrupted = False
            for chunk_idx in plans[epoch - 1]:
                if deadline is not None and time.monotonic() >= deadline:
                    interrupted = True
                    break
                bt = make_batch([train[i] for i in chunk_idx], o.batch, cap, q_index, i_index)
                n = bt.pop("examples")
                ts = time.monotonic()
                state, opt_state, l = train_step(state, opt_state, frozen, q_store.train_x, q_store.train_mask,
                                                 i_store.train_x, i_store.train_mask, bt,
                                                 jax.random.fold_in(root_key, step))
                l = {k: float(v) for k, v in l.items()}
                if not math.isfinite(l["total"]):
                    raise FloatingPointError(f"the loss is not finite at step {step + 1} (try a lower --lr)")
                dt = time.monotonic() - ts
                train_seconds += dt
                step_times.append((dt, n, len(bt["ui"])))
                step += 1
                seen += n
                nb += 1
                for k, v in l.items():
                    sums[k] = sums.get(k, 0.0) + v
                progress.update(n, f"epoch {epoch}/{o.epochs}", loss=l["total"])
            if nb == 0:
                stopped = "max_minutes"
                break
            epochs_run += nb / steps_per_epoch
            entry = {"epoch": epoch, "steps": nb, "train": {k: v / nb for k, v in sums.items()}}
            if val:
                ev = validate(state["enc"] | frozen, state["heads"])
                entry["validation"] = ev
                line = (f"zrank fine-tune: epoch {epoch}: train loss {entry['train']['total']:.4f}, validation "
                        f"NDCG@10 {ev['ndcg10']:.4f} (base {base_eval['ndcg10']:.4f}), AUC {ev['auc']:.4f}")
                if truth is not None:
                    line += f", truth NDCG@10 {ev['truth_ndcg10']:.4f} (base {base_eval['truth_ndcg10']:.4f})"
                progress.write(line)
                if best["ndcg10"] is None or (ev["ndcg10"] is not None and ev["ndcg10"] > best["ndcg10"]):
                    best.update(epoch=epoch, ndcg10=ev["ndcg10"], eval=ev)
                    best["params"], best["heads"] = snapshot(state)
                    since_best = 0
                else:
                    since_best += 1
            else:
                best.update(epoch=epoch, eval=None)
                best["params"], best["heads"] = snapshot(state)
            history.append(entry)
            if interrupted:
                stopped = "max_minutes"
                break
            if val and since_best >= o.patience and epoch < o.epochs:
                stopped = "early_stopping"
                break
    finally:
        progress.close()

    seconds = time.monotonic() - t0
    report = {
        "validation": None,
        "examples": n_train,
        "examples_seen": seen,
        "epochs": round(epochs_run, 4),
        "best_epoch": best["epoch"],
        "stopped_reason": stopped,
        "seconds": round(seconds, 3),
        "setup_seconds": round(setup_seconds, 3),
        "frozen_bottom_seconds": round(store_seconds, 3),
        "train_seconds": round(train_seconds, 3),
        "examples_per_s": round(seen / train_seconds, 2) if train_seconds > 0 else None,
        "steps": step,
        # Steady state: the median step (XLA compiles one train step per distinct padded shape; those steps are slow).
        "steady_examples_per_s": (round(float(np.median([n / t for t, n, _ in step_times])), 2)
                                  if step_times else None),
        "compiled_shapes": len({u for _, _, u in step_times}),
        "log": {"impressions": len(rows), "unknown_item_impressions": unknown, "lists": len(sessions),
                "train_lists": len(train), "validation_lists": len(val), "dropped_by_list_cap": dropped,
                "train_queries": len({s.query for s in train}), "validation_queries": len(val_queries),
                "clicks": sum(r.clicked for r in known)},
        "history": history,
        "options": {k: v for k, v in asdict(o).items()},
        "jax": jax.__version__,
    }
    if val:
        b_, e_ = base_eval, best["eval"]
        v = {"ndcg10": e_["ndcg10"], "auc": e_["auc"], "base_ndcg10": b_["ndcg10"], "base_auc": b_["auc"],
             "sessions": len(val), "ndcg_sessions": e_["ndcg_sessions"],
             "impressions": sum(len(s.items) for s in val), "losses": e_["losses"], "base_losses": b_["losses"]}
        if truth is not None:
            v["truth_ndcg10"], v["base_truth_ndcg10"] = e_["truth_ndcg10"], b_["truth_ndcg10"]
            v["truth_sessions"] = e_["truth_sessions"]
        report["validation"] = v
    return Result(report, best["params"], best["heads"], base, sorted(val_queries))


def heads_json(heads: dict) -> dict:
    pos = np.asarray(heads["pos"], np.float64).copy()
    pos[0] = 0.0
    return {"w": float(heads["w"]), "b": float(heads["b"]), "pos_bias": [float(x) for x in pos],
            "a": float(heads["a"]), "c": float(heads["c"])}


def write_result(r: Result, out: str):
    """Writes the folder next to `out` then renames it into place, so `out` is complete or absent."""
    parent = os.path.dirname(os.path.abspath(out))
    tmp = tempfile.mkdtemp(prefix=".zrank-fine-tune-", dir=parent)
    try:
        extra = {
            "format": "zrank-fine-tune/1",
            "heads": heads_json(r.heads),
            "scoring": ("s = cosine of mean-pooled, L2-normalised embeddings; rank by s; click probability "
                        "sigmoid(w*s + b) (pos_bias[i] is position i+1's training-only term, position 1 = 0, "
                        "the last entry for all deeper positions); engagement a*s + c estimates log(1 + dwell_s) "
                        "of a click"),
            "report": r.report,
        }
        M.write_folder(r.base, r.params, tmp, extra)
        # The held-out queries, one per line (zrank train-heads --validation-queries judges heads on the same ones).
        with open(os.path.join(tmp, "validation_queries.txt"), "w", encoding="utf-8") as f:
            f.write("".join(q + "\n" for q in r.validation_queries))
        if os.path.isdir(out):
            os.rmdir(out)  # empty (checked before training)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
