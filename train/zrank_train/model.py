"""all-MiniLM-L6-v2 (a BERT encoder) in JAX, fp32, read from and written to a Hugging Face folder.

Parameters are a flat dict keyed by the Hugging Face `BertModel` tensor names, so the folder written after training
has exactly the base's names, shapes and dtypes (the pooler and the `position_ids` buffer, unused by sentence
embeddings, are carried over unchanged).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .errors import InputError

# Files copied from the base folder to the fine-tuned one (those present), besides config.json and the weights.
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")
SENTENCE_TRANSFORMERS_FILES = ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json")
SENTENCE_TRANSFORMERS_DIRS = ("1_Pooling", "2_Normalize")


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int
    layer_norm_eps: float
    hidden_dropout_prob: float
    attention_probs_dropout_prob: float

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


def layer_names(i: int) -> list[str]:
    p = f"encoder.layer.{i}."
    return [p + s for s in (
        "attention.self.query.weight", "attention.self.query.bias",
        "attention.self.key.weight", "attention.self.key.bias",
        "attention.self.value.weight", "attention.self.value.bias",
        "attention.output.dense.weight", "attention.output.dense.bias",
        "attention.output.LayerNorm.weight", "attention.output.LayerNorm.bias",
        "intermediate.dense.weight", "intermediate.dense.bias",
        "output.dense.weight", "output.dense.bias",
        "output.LayerNorm.weight", "output.LayerNorm.bias")]


EMBEDDING_NAMES = [
    "embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
    "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias"]


def expected_shapes(c: BertConfig) -> dict[str, tuple[int, ...]]:
    h, f = c.hidden_size, c.intermediate_size
    shapes = {
        "embeddings.word_embeddings.weight": (c.vocab_size, h),
        "embeddings.position_embeddings.weight": (c.max_position_embeddings, h),
        "embeddings.token_type_embeddings.weight": (c.type_vocab_size, h),
        "embeddings.LayerNorm.weight": (h,), "embeddings.LayerNorm.bias": (h,),
    }
    for i in range(c.num_hidden_layers):
        for n in layer_names(i):
            if n.endswith("intermediate.dense.weight"):
                shapes[n] = (f, h)
            elif n.endswith("intermediate.dense.bias"):
                shapes[n] = (f,)
            elif n.endswith("output.dense.weight") and "attention" not in n:
                shapes[n] = (h, f)
            elif n.endswith(".weight") and "LayerNorm" not in n:
                shapes[n] = (h, h)
            else:
                shapes[n] = (h,)
    return shapes


@dataclass
class BaseModel:
    folder: str
    config: BertConfig
    config_json: dict
    tensors: dict[str, np.ndarray]   # every tensor of the file, as read (names, shapes, dtypes kept for writing)
    metadata: dict[str, str] | None

    def params(self) -> dict[str, jnp.ndarray]:
        """The encoder's trainable float parameters (no pooler, no position_ids buffer)."""
        return {n: jnp.asarray(self.tensors[n], dtype=jnp.float32) for n in expected_shapes(self.config)}


def load_base(folder: str) -> BaseModel:
    """Reads a Hugging Face BERT folder; InputError when it is not one (no config.json, model_type != bert,
    missing or misshapen tensors)."""
    from safetensors import SafetensorError, safe_open

    if not os.path.isdir(folder):
        raise InputError(f"{folder}: not a folder")
    cpath = os.path.join(folder, "config.json")
    try:
        with open(cpath, encoding="utf-8") as f:
            cj = json.load(f)
    except FileNotFoundError:
        raise InputError(f"{folder}: no config.json (not a Hugging Face model folder)") from None
    except (OSError, ValueError) as e:
        raise InputError(f"{cpath}: cannot read: {e}") from None
    if not isinstance(cj, dict) or cj.get("model_type") != "bert":
        mt = cj.get("model_type") if isinstance(cj, dict) else None
        raise InputError(f"{cpath}: model_type is {mt!r}, not 'bert'")
    if cj.get("hidden_act", "gelu") != "gelu" or cj.get("position_embedding_type", "absolute") != "absolute":
        raise InputError(f"{cpath}: only hidden_act 'gelu' and absolute position embeddings are supported")
    try:
        c = BertConfig(
            vocab_size=int(cj["vocab_size"]), hidden_size=int(cj["hidden_size"]),
            num_hidden_layers=int(cj["num_hidden_layers"]), num_attention_heads=int(cj["num_attention_heads"]),
            intermediate_size=int(cj["intermediate_size"]),
            max_position_embeddings=int(cj["max_position_embeddings"]),
            type_vocab_size=int(cj.get("type_vocab_size", 2)), layer_norm_eps=float(cj.get("layer_norm_eps", 1e-12)),
            hidden_dropout_prob=float(cj.get("hidden_dropout_prob", 0.1)),
            attention_probs_dropout_prob=float(cj.get("attention_probs_dropout_prob", 0.1)))
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{cpath}: missing or bad BERT field {e}") from None
    if c.hidden_size % c.num_attention_heads:
        raise InputError(f"{cpath}: hidden_size is not a multiple of num_attention_heads")
    wpath = os.path.join(folder, "model.safetensors")
    if not os.path.isfile(wpath):
        raise InputError(f"{folder}: no model.safetensors")
    if not os.path.isfile(os.path.join(folder, "tokenizer.json")):
        raise InputError(f"{folder}: no tokenizer.json")
    try:
        tensors = {}
        with safe_open(wpath, framework="np") as f:
            metadata = f.metadata()
            for k in f.keys():
                tensors[k] = f.get_tensor(k)
    except (SafetensorError, OSError, ValueError) as e:
        raise InputError(f"{wpath}: cannot read: {e}") from None
    # Accept a "bert." prefix? No: the project's converter reads BertModel names, so require them.
    missing = [n for n in expected_shapes(c) if n not in tensors]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise InputError(f"{wpath}: missing tensor {missing[0]}{more}: not a BertModel checkpoint")
    for n, shape in expected_shapes(c).items():
        t = tensors[n]
        if tuple(t.shape) != shape or t.dtype != np.float32:
            raise InputError(f"{wpath}: tensor {n} is {t.dtype}{list(t.shape)}, expected float32{list(shape)}")
    return BaseModel(folder, c, cj, tensors, metadata)


# ---------------------------------------------------------------------------------------------------------------
# Forward


def _dense(x, params, name):
    # A 2-D matmul (rows*tokens x in) @ (in x out): XLA on CPU runs the rank-3 einsum ~1.9x slower (measured).
    w = params[name + ".weight"]
    y = jnp.dot(x.reshape(-1, x.shape[-1]), w.T)
    return y.reshape(*x.shape[:-1], w.shape[0]) + params[name + ".bias"]


def _layer_norm(x, params, name, eps):
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + eps) * params[name + ".weight"] + params[name + ".bias"]


def _dropout(x, rate, key):
    if key is None or rate <= 0:
        return x
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), 0.0)


def embed_tokens(params, ids, config: BertConfig, dropout_key=None):
    """The embedding layer: word + position + token type 0, LayerNorm, dropout. [rows, length, hidden]."""
    length = ids.shape[1]
    x = (params["embeddings.word_embeddings.weight"][ids]
         + params["embeddings.position_embeddings.weight"][:length][None]
         + params["embeddings.token_type_embeddings.weight"][0][None, None])
    x = _layer_norm(x, params, "embeddings.LayerNorm", config.layer_norm_eps)
    return _dropout(x, config.hidden_dropout_prob, dropout_key)


def run_layers(params, x, mask, config: BertConfig, start: int, stop: int, dropout_key=None):
    """Encoder layers start..stop-1 on hidden states x [rows, length, hidden]."""
    c = config
    rows, length, _ = x.shape
    keys = iter(jax.random.split(dropout_key, 3 * max(1, stop - start))) if dropout_key is not None else None

    def k():
        return next(keys) if keys is not None else None

    m = mask.astype(jnp.float32)
    attn_bias = (1.0 - m)[:, None, None, :] * jnp.float32(-1e9)
    nh, hd = c.num_attention_heads, c.head_dim
    for i in range(start, stop):
        p = f"encoder.layer.{i}."

        def heads(t):
            return t.reshape(rows, length, nh, hd).transpose(0, 2, 1, 3)

        q = heads(_dense(x, params, p + "attention.self.query"))
        kk = heads(_dense(x, params, p + "attention.self.key"))
        v = heads(_dense(x, params, p + "attention.self.value"))
        scores = jnp.einsum("bhqd,bhkd->bhqk", q, kk) / np.float32(np.sqrt(hd)) + attn_bias
        probs = _dropout(jax.nn.softmax(scores, axis=-1), c.attention_probs_dropout_prob, k())
        ctx = jnp.einsum("bhqk,bhkd->bhqd", probs, v).transpose(0, 2, 1, 3).reshape(rows, length, nh * hd)
        a = _dropout(_dense(ctx, params, p + "attention.output.dense"), c.hidden_dropout_prob, k())
        x = _layer_norm(a + x, params, p + "attention.output.LayerNorm", c.layer_norm_eps)
        h = jax.nn.gelu(_dense(x, params, p + "intermediate.dense"), approximate=False)
        o = _dropout(_dense(h, params, p + "output.dense"), c.hidden_dropout_prob, k())
        x = _layer_norm(o + x, params, p + "output.LayerNorm", c.layer_norm_eps)
    return x


def pool(x, mask):
    """Mean over the mask's tokens, then L2 normalisation (a row without tokens gives the zero vector, with a finite
    gradient)."""
    m = mask.astype(jnp.float32)
    pooled = jnp.sum(x * m[:, :, None], axis=1) / jnp.maximum(jnp.sum(m, axis=1, keepdims=True), 1e-9)
    norm = jnp.sqrt(jnp.maximum(jnp.sum(jnp.square(pooled), axis=-1, keepdims=True), 1e-24))
    return pooled / norm


def encode(params, ids, mask, config: BertConfig, dropout_key=None):
    """Sentence embeddings [rows, hidden]: BERT, mean pooling over the mask's tokens, L2 normalisation.
    ids, mask: int32 [rows, length]. dropout_key: None for inference, a PRNG key for training (dropout as in
    BERT: embeddings, attention probabilities, both residual branches)."""
    k1, k2 = jax.random.split(dropout_key) if dropout_key is not None else (None, None)
    x = embed_tokens(params, ids, config, k1)
    x = run_layers(params, x, mask, config, 0, config.num_hidden_layers, k2)
    return pool(x, mask)


# ---------------------------------------------------------------------------------------------------------------
# Tokenisation and padding


def load_tokenizer(folder: str, max_length: int):
    from tokenizers import Tokenizer

    path = os.path.join(folder, "tokenizer.json")
    try:
        tok = Tokenizer.from_file(path)
    except Exception as e:  # tokenizers raises its own Exception type
        raise InputError(f"{path}: cannot read the tokenizer: {e}") from None
    tok.no_padding()
    tok.enable_truncation(max_length=max_length)
    return tok


def tokenize(tok, texts: list[str]) -> list[np.ndarray]:
    return [np.asarray(e.ids, dtype=np.int32) for e in tok.encode_batch(texts, add_special_tokens=True)]


def bucket(n: int, step: int, cap: int | None = None) -> int:
    b = max(step, -(-n // step) * step)
    return min(b, cap) if cap else b


def pad(seqs: list[np.ndarray], rows: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.zeros((rows, length), dtype=np.int32)
    mask = np.zeros((rows, length), dtype=np.int32)
    for r, s in enumerate(seqs):
        s = s[:length]
        ids[r, :len(s)] = s
        mask[r, :len(s)] = 1
    return ids, mask


def bottom(params, ids, mask, config: BertConfig, layers: int):
    """Hidden states after the embeddings and the first `layers` layers, no dropout (the frozen part)."""
    return run_layers(params, embed_tokens(params, ids, config), mask, config, 0, layers)


def pad_hidden(hs: list[np.ndarray], rows: int, length: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.zeros((rows, length, width), dtype=np.float32)
    mask = np.zeros((rows, length), dtype=np.int32)
    for r, h in enumerate(hs):
        x[r, :len(h)] = h
        mask[r, :len(h)] = 1
    return x, mask


class Encoder:
    """Inference (no dropout) over token id lists, in padded buckets (rows 8/32/128, lengths multiples of 16) so
    that XLA compiles few shapes."""

    def __init__(self, config: BertConfig, rows: int = 128):
        self.config = config
        self.rows = rows
        self._f = jax.jit(lambda p, i, m: encode(p, i, m, config))

    def _batches(self, seqs):
        order = sorted(range(len(seqs)), key=lambda j: len(seqs[j]))  # similar lengths together: less padding
        for s in range(0, len(order), self.rows):
            idx = order[s:s + self.rows]
            rows = next(r for r in (8, 32, self.rows) if r >= len(idx) or r == self.rows)
            length = bucket(max(len(seqs[j]) for j in idx), 16, self.config.max_position_embeddings)
            yield idx, rows, length

    def hidden(self, params, seqs: list[np.ndarray], layers: int) -> list[np.ndarray]:
        """Per text, the hidden states [tokens, hidden] after the first `layers` layers (no dropout)."""
        if not hasattr(self, "_bottom"):
            self._bottom = jax.jit(lambda p, i, m, n: bottom(p, i, m, self.config, n), static_argnums=3)
        out: list = [None] * len(seqs)
        for idx, rows, length in self._batches(seqs):
            ids, mask = pad([seqs[j] for j in idx], rows, length)
            h = np.asarray(self._bottom(params, ids, mask, layers))
            for r, j in enumerate(idx):
                out[j] = h[r, :len(seqs[j])].copy()
        return out

    def top(self, params, hs: list[np.ndarray], start: int) -> np.ndarray:
        """Embeddings from cached hidden states (layers start.. , pooling, normalisation), no dropout."""
        if not hasattr(self, "_top"):
            c = self.config
            self._top = jax.jit(lambda p, x, m, s: pool(run_layers(p, x, m, c, s, c.num_hidden_layers), m),
                                static_argnums=3)
        out = np.zeros((len(hs), self.config.hidden_size), dtype=np.float32)
        for idx, rows, length in self._batches(hs):
            x, mask = pad_hidden([hs[j] for j in idx], rows, length, self.config.hidden_size)
            out[idx] = np.asarray(self._top(params, x, mask, start))[:len(idx)]
        return out

    def __call__(self, params, seqs: list[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(seqs), self.config.hidden_size), dtype=np.float32)
        for idx, rows, length in self._batches(seqs):
            ids, mask = pad([seqs[j] for j in idx], rows, length)
            out[idx] = np.asarray(self._f(params, ids, mask))[:len(idx)]
        return out


# ---------------------------------------------------------------------------------------------------------------
# Writing


def write_folder(base: BaseModel, params: dict, out: str, extra: dict) -> None:
    """Writes a Hugging Face folder: config.json, model.safetensors (the base's names, shapes and dtypes, trained
    values), tokenizer and sentence-transformers files copied from the base, zrank_fine_tune.json (extra)."""
    from safetensors.numpy import save_file

    os.makedirs(out, exist_ok=True)
    tensors = {}
    for n, t in base.tensors.items():
        if n in params:
            v = np.asarray(params[n], dtype=t.dtype)
            assert v.shape == t.shape, n
            tensors[n] = np.ascontiguousarray(v)
        else:
            tensors[n] = t
    save_file(tensors, os.path.join(out, "model.safetensors"), metadata=base.metadata or {"format": "pt"})
    with open(os.path.join(out, "config.json"), "w", encoding="utf-8") as f:
        json.dump(base.config_json, f, indent=2)
        f.write("\n")
    for name in TOKENIZER_FILES + SENTENCE_TRANSFORMERS_FILES:
        src = os.path.join(base.folder, name)
        if os.path.isfile(src):
            shutil.copyfile(src, os.path.join(out, name))
    for name in SENTENCE_TRANSFORMERS_DIRS:
        src = os.path.join(base.folder, name)
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(out, name), dirs_exist_ok=True)
    with open(os.path.join(out, "zrank_fine_tune.json"), "w", encoding="utf-8") as f:
        json.dump(extra, f, indent=2)
        f.write("\n")
