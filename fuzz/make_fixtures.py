#!/usr/bin/env python3
"""Writes the fuzzers' fixtures into fuzz/fixtures/ (committed; rerun only when a file format changes):

  tiny.zrm      a tiny random BERT (hidden 16, 2 layers, 2 heads, 32 positions, ~130-token vocabulary) converted by
                `zrank convert`
  catalog.jsonl 40 catalog lines (bench/data/catalog.jsonl's first 34, line 777, and the ids proto/vectors uses)
  tiny.zri      the index of catalog.jsonl built with tiny.zrm by `zrank index`
  heads.json    ranking heads for tiny.zrm (random weights; the feature set, dimension and content hash it checks)

They are the FuzzModelFile seeds, and FuzzRankRequest ranks against them. The checkpoint is generated like
Sources/_TestSupport/SyntheticCheckpoint.swift does (a seeded random BERT in Hugging Face layout), with a small
vocabulary so that the model file stays a small fuzzing seed.

Usage: fuzz/make_fixtures.py ZRANK_BINARY   (e.g. .build/release/zrank; only `convert` and `index` are run)
"""
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "fixtures")
HIDDEN, HEADS, LAYERS, INTERMEDIATE, POSITIONS, TYPES = 16, 2, 2, 32, 32, 2


def catalog_lines():
    with open(os.path.join(ROOT, "bench", "data", "catalog.jsonl"), encoding="utf-8") as f:
        lines = f.read().splitlines()
    chosen = lines[:34] + [lines[776]]
    extra = [
        {"id": "B07XJ8C8F5", "title": "walnut lift-top coffee table", "price": 199.0, "popularity": 3.5},
        {"id": "12345", "title": "smart coffee table with storage"},
        {"id": "a", "title": "salon chair", "popularity": 0.5},
        {"id": "b", "title": "chrome glass accent chair", "price": 80},
        {"id": "c", "title": "linen accent pillow", "text": "a soft pillow"},
    ]
    return chosen + [json.dumps(e, sort_keys=True) for e in extra]


def vocabulary(lines):
    counts = {}
    for line in lines:
        o = json.loads(line)
        for w in re.split(r"[^0-9a-z]+", o["title"].lower()):
            if len(w) > 1:
                counts[w] = counts.get(w, 0) + 1
    # The 40 most frequent title words (ties by name), plus the words of the seed queries; the rest is spelt in pieces.
    words = set(sorted(counts, key=lambda w: (-counts[w], w))[:40])
    words |= set("smart coffee table salon chair walnut lift top accent linen pillow glass chrome".split())
    chars = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [str(d) for d in range(10)] + list("-'")
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    return specials + chars + ["##" + c for c in chars] + sorted(words - set(chars))


def checkpoint(directory, vocab, seed=5):
    rng = random.Random(seed)

    def rand(n, scale):
        return [rng.uniform(-scale, scale) for _ in range(n)]

    def around1(n):
        return [rng.uniform(0.8, 1.2) for _ in range(n)]

    h, tensors = HIDDEN, []
    tensors.append(("embeddings.word_embeddings.weight", [len(vocab), h], rand(len(vocab) * h, 0.5)))
    tensors.append(("embeddings.position_embeddings.weight", [POSITIONS, h], rand(POSITIONS * h, 0.2)))
    tensors.append(("embeddings.token_type_embeddings.weight", [TYPES, h], rand(TYPES * h, 0.2)))
    tensors.append(("embeddings.LayerNorm.weight", [h], around1(h)))
    tensors.append(("embeddings.LayerNorm.bias", [h], rand(h, 0.1)))
    ws = 1 / h ** 0.5
    for layer in range(LAYERS):
        p = f"encoder.layer.{layer}."
        for m in ("query", "key", "value"):
            tensors.append((p + f"attention.self.{m}.weight", [h, h], rand(h * h, ws * 1.5)))
            tensors.append((p + f"attention.self.{m}.bias", [h], rand(h, 0.1)))
        tensors.append((p + "attention.output.dense.weight", [h, h], rand(h * h, ws)))
        tensors.append((p + "attention.output.dense.bias", [h], rand(h, 0.1)))
        tensors.append((p + "attention.output.LayerNorm.weight", [h], around1(h)))
        tensors.append((p + "attention.output.LayerNorm.bias", [h], rand(h, 0.1)))
        tensors.append((p + "intermediate.dense.weight", [INTERMEDIATE, h], rand(INTERMEDIATE * h, ws * 1.5)))
        tensors.append((p + "intermediate.dense.bias", [INTERMEDIATE], rand(INTERMEDIATE, 0.1)))
        tensors.append((p + "output.dense.weight", [h, INTERMEDIATE], rand(h * INTERMEDIATE, 1 / INTERMEDIATE ** 0.5)))
        tensors.append((p + "output.dense.bias", [h], rand(h, 0.1)))
        tensors.append((p + "output.LayerNorm.weight", [h], around1(h)))
        tensors.append((p + "output.LayerNorm.bias", [h], rand(h, 0.1)))
    os.makedirs(directory, exist_ok=True)
    config = {"architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu", "hidden_size": h,
              "num_attention_heads": HEADS, "num_hidden_layers": LAYERS, "intermediate_size": INTERMEDIATE,
              "max_position_embeddings": POSITIONS, "type_vocab_size": TYPES, "vocab_size": len(vocab),
              "layer_norm_eps": 1e-12, "position_embedding_type": "absolute"}
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(config, f, sort_keys=True)
    with open(os.path.join(directory, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    header, body = {"__metadata__": {"format": "pt"}}, bytearray()
    for name, shape, values in tensors:
        begin = len(body)
        body += struct.pack(f"<{len(values)}f", *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [begin, len(body)]}
    hdr = json.dumps(header, sort_keys=True).encode()
    hdr += b" " * ((8 - len(hdr) % 8) % 8)
    with open(os.path.join(directory, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hdr)) + hdr + body)


def content_hash(zrm):
    with open(zrm, "rb") as f:
        head = f.read(64)
        (length,) = struct.unpack_from("<Q", head, 16)
        return json.loads(f.read(length))["contentHash"]


def heads(hash_, seed=7):
    rng = random.Random(seed)
    names = ["cosine", "lexical", "personal", "has_profile", "log_popularity", "log_price", "position_bias"]
    names += [f"qd_{i}" for i in range(HIDDEN)]
    n = len(names)

    def head():
        return {"bias": round(rng.uniform(-1, 1), 4), "weights": [round(rng.uniform(-0.5, 0.5), 4) for _ in range(n)]}

    return {"format": "zrank-heads", "format_version": 1, "heads_version": "fuzz-heads", "feature_set": "zrank-features-v1",
            "features": names, "mean": [round(rng.uniform(-0.2, 0.2), 4) for _ in range(n)],
            "std": [round(rng.uniform(0.5, 1.5), 4) for _ in range(n)], "ctr": head(), "engagement": head(),
            "alpha": 1, "beta": 0.1, "model_content_hash": hash_, "created_at": "2026-01-01T00:00:00Z",
            "report": {"auc": 0.5}}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    zrank = sys.argv[1]
    os.makedirs(OUT, exist_ok=True)
    lines = catalog_lines()
    catalog = os.path.join(OUT, "catalog.jsonl")
    with open(catalog, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    work = tempfile.mkdtemp(prefix="zrank-fuzz-fixtures-")
    try:
        checkpoint(os.path.join(work, "ckpt"), vocabulary(lines))
        model = os.path.join(OUT, "tiny.zrm")
        subprocess.run([zrank, "convert", "--from", os.path.join(work, "ckpt"), "--out", model, "--version", "tiny-v1"],
                       check=True)
        subprocess.run([zrank, "index", "--model", model, "--catalog", catalog, "--out", os.path.join(OUT, "tiny.zri"),
                        "--threads", "1"], check=True)
    finally:
        shutil.rmtree(work)
    with open(os.path.join(OUT, "heads.json"), "w") as f:
        json.dump(heads(content_hash(model)), f, indent=1, sort_keys=True)
        f.write("\n")
    for name in sorted(os.listdir(OUT)):
        print(f"{name}: {os.path.getsize(os.path.join(OUT, name))} bytes")


if __name__ == "__main__":
    main()
