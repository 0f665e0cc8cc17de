#!/usr/bin/env python3
"""zrank vs ONNX Runtime int8 on the same all-MiniLM-L6-v2 weights, same shapes, alternating rounds.

For every cell of the grid (batch x seq x threads) and every round, ONNX Runtime is timed first and
``zrank bench-encoder`` second, so slow drifts of a shared machine hit both alike; the table reports the
median over rounds of each engine's sequences/s and the median of the per-round ratios zrank/ORT.

Before any timing both engines embed the 390 fixture texts (``Tests/Fixtures/minilm``) and are compared with
each other and with the fp32 reference embeddings; the run aborts when they disagree (see ``--min-cosine``).
Afterwards single-query latency (batch 1 x 16 tokens, thousands of runs per engine) is measured in
alternating rounds as well.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import onnxruntime as ort

from export_onnx import FP32_NAME, INT8_NAME, cosines, embed_with_session, load_fixture_tokens, load_reference

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DEFAULT_ZRANK = REPO / ".build/release/zrank"
DEFAULT_ZRANK_MODEL = REPO / "models/minilm-l6-int8.zrm"
DEFAULT_ONNX_DIR = HERE / ".cache"
FIXTURES = REPO / "Tests/Fixtures/minilm"

FULL_BATCHES = (1, 8, 32, 128)
FULL_SEQS = (16, 32, 64, 128)
FULL_THREADS = (1, 2)
QUICK_BATCHES = (1, 32)
QUICK_SEQS = (16, 32)

CLS_ID, SEP_ID = 101, 102
# The product text zrank's bench-encoder cycles through (Sources/ZRankCLI/BenchEncoder.swift) ...
PRODUCT_TEXT = (
    "modern solid wood coffee table with storage drawer walnut finish mid century living room "
    "furniture outdoor patio chair cushion set grey velvet accent armchair kitchen bar stool"
)
# ... and its word-piece ids (checked against `zrank tokenize` at start-up).
PRODUCT_WORD_PIECES = (
    2715, 5024, 3536, 4157, 2795, 2007, 5527, 13065, 18489, 3926, 3054, 2301, 2542, 2282, 7390, 7254, 19404,
    3242, 22936, 2275, 4462, 10966, 9669, 29372, 3829, 3347, 14708,
)


# ----------------------------------------------------------------------------------------------------------------
# Helpers


def parse_int_list(text: str) -> list[int]:
    """``"1,8,32"`` -> ``[1, 8, 32]``."""
    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from error
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def percentile(sorted_ms: list[float], p: float) -> float:
    """The same nearest-rank percentile zrank bench-encoder uses: ``sorted[min(n-1, int(p*n))]``."""
    return sorted_ms[min(len(sorted_ms) - 1, int(p * len(sorted_ms)))]


def median(values: list[float]) -> float:
    """Median of a non-empty list."""
    return float(statistics.median(values))


def bench_inputs(batch: int, seq: int) -> dict[str, np.ndarray]:
    """Token ids of exactly [batch, seq] built like zrank's bench-encoder: [CLS], product word pieces, [SEP]."""
    ids = np.empty((batch, seq), dtype=np.int64)
    for b in range(batch):
        ids[b, 0] = CLS_ID
        for i in range(seq - 2):
            ids[b, 1 + i] = PRODUCT_WORD_PIECES[(i + b) % len(PRODUCT_WORD_PIECES)]
        ids[b, seq - 1] = SEP_ID
    return {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}


def make_session(path: Path, threads: int) -> ort.InferenceSession:
    """The peer's session: all graph optimisations, ``threads`` intra-op threads, one inter-op, sequential."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_zrank(zrank: Path, args: list[str], stdin: str | None = None) -> str:
    """Run the zrank binary and return stdout; exit with its stderr when it fails."""
    proc = subprocess.run([str(zrank), *args], input=stdin, capture_output=True, text=True, encoding="utf-8")
    if proc.returncode != 0:
        raise SystemExit(f"side_by_side: `zrank {' '.join(args)}` failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout


# ----------------------------------------------------------------------------------------------------------------
# Measurements


def time_ort(session: ort.InferenceSession, batch: int, seq: int, threads: int, seconds: float) -> dict:
    """Warm up for min(1, seconds/3) s, then run batches for ``seconds``; same summary as zrank bench-encoder."""
    feeds = bench_inputs(batch, seq)
    run = session.run
    warmup_end = time.perf_counter() + min(1.0, seconds / 3)
    while time.perf_counter() < warmup_end:
        run(None, feeds)
    latencies: list[float] = []
    start = time.perf_counter_ns()
    deadline = start + int(seconds * 1e9)
    now = start
    while now < deadline:
        t0 = time.perf_counter_ns()
        run(None, feeds)
        now = time.perf_counter_ns()
        latencies.append((now - t0) / 1e6)
    elapsed = (now - start) / 1e9
    latencies.sort()
    return {"batch": batch, "seq": seq, "threads": threads, "batches": len(latencies),
            "sequences_per_s": len(latencies) * batch / elapsed,
            "p50_ms": percentile(latencies, 0.5), "p99_ms": percentile(latencies, 0.99)}


def time_zrank(zrank: Path, model: Path, batch: int, seq: int, threads: int, seconds: float) -> dict:
    """``zrank bench-encoder``; its last stdout line is the JSON summary."""
    out = run_zrank(zrank, ["bench-encoder", "--model", str(model), "--batch", str(batch), "--seq", str(seq),
                            "--threads", str(threads), "--seconds", f"{seconds:g}"])
    lines = [line for line in out.splitlines() if line.strip()]
    summary = json.loads(lines[-1])
    summary["log"] = lines[:-1]
    return summary


def ort_latency(session: ort.InferenceSession, runs: int) -> dict:
    """Single-query latency: batch 1 x 16, ``runs`` runs each timed with perf_counter_ns, after 100 warm-ups."""
    feeds = bench_inputs(1, 16)
    for _ in range(100):
        session.run(None, feeds)
    latencies = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        session.run(None, feeds)
        latencies.append((time.perf_counter_ns() - t0) / 1e6)
    latencies.sort()
    return {"runs": runs, "p50_ms": percentile(latencies, 0.5), "p99_ms": percentile(latencies, 0.99),
            "mean_ms": float(np.mean(latencies))}


def zrank_latency(zrank: Path, model: Path, runs: int, runs_per_s: float) -> dict:
    """Single-query latency from ``bench-encoder --batch 1 --seq 16``, with --seconds sized for ~``runs`` runs."""
    seconds = min(120.0, max(1.0, runs / runs_per_s))
    summary = time_zrank(zrank, model, 1, 16, 1, seconds)
    counted = [re.search(r"(\d+) batches of", line) for line in summary["log"]]
    batches = next((int(m.group(1)) for m in counted if m), round(summary["sequences_per_s"] * seconds))
    return {"runs": batches, "seconds": seconds, "p50_ms": summary["p50_ms"], "p99_ms": summary["p99_ms"],
            "mean_ms": 1000 / summary["sequences_per_s"]}


# ----------------------------------------------------------------------------------------------------------------
# Fidelity


def check_word_pieces(zrank: Path, model: Path) -> None:
    """Make sure the ORT inputs use the same ids as zrank's bench-encoder (warn on mismatch)."""
    out = run_zrank(zrank, ["tokenize", "--model", str(model)], json.dumps({"id": "p", "text": PRODUCT_TEXT}) + "\n")
    ids = json.loads(out.splitlines()[0])["input_ids"]
    if tuple(ids[1:-1]) != PRODUCT_WORD_PIECES:
        print("side_by_side: WARNING: zrank tokenises the bench text differently from PRODUCT_WORD_PIECES; "
              "ORT and zrank inputs differ", file=sys.stderr)


def check_fidelity(zrank: Path, zrank_model: Path, int8_path: Path, min_cosine: float, min_mean: float) -> dict:
    """Embed the 390 fixture texts with both engines; compare with each other and with the fp32 reference.

    zrank tokenises the raw texts itself (``zrank embed``, max length 128); ORT gets the fixture's trunc128 ids,
    padded per batch of 32 with an attention mask. Aborts when any zrank-vs-ORT cosine is <= ``min_cosine`` or
    the mean is <= ``min_mean``.
    """
    texts = (FIXTURES / "texts.jsonl").read_text(encoding="utf-8")
    ids, input_ids, type_ids = load_fixture_tokens(FIXTURES)
    reference = load_reference(FIXTURES)
    z_rows = read_jsonl_text(run_zrank(zrank, ["embed", "--model", str(zrank_model)], texts))
    z_emb = {row["id"]: np.asarray(row["embedding"], dtype=np.float32) for row in z_rows}
    missing = [i for i in ids if i not in z_emb]
    if missing:
        raise SystemExit(f"side_by_side: zrank embed returned no embedding for {len(missing)} ids, e.g. {missing[:3]}")
    o_emb = embed_with_session(make_session(int8_path, 1), ids, input_ids, type_ids)

    result = {"texts": len(ids), "min_cosine_required": min_cosine, "min_mean_required": min_mean}
    for label, a, b in (("zrank_vs_ort_int8", z_emb, o_emb), ("zrank_vs_fp32_reference", z_emb, reference),
                        ("ort_int8_vs_fp32_reference", o_emb, reference)):
        cos = cosines(a, b, ids)
        worst = int(cos.argmin())
        result[label] = {"min": float(cos.min()), "mean": float(cos.mean()), "worst_id": ids[worst],
                         "below_0.99": int((cos <= 0.99).sum())}
        print(f"fidelity {label:28s} min {cos.min():.5f} ({ids[worst]}), mean {cos.mean():.5f}, "
              f"{int((cos <= 0.99).sum())} of {len(ids)} <= 0.99", file=sys.stderr)
    pair = result["zrank_vs_ort_int8"]
    result["passed"] = pair["min"] > min_cosine and pair["mean"] > min_mean
    if not result["passed"]:
        raise SystemExit(f"side_by_side: fidelity check failed: zrank vs ORT int8 min {pair['min']:.5f} "
                         f"(need > {min_cosine}), mean {pair['mean']:.5f} (need > {min_mean}); not timing anything")
    return result


def read_jsonl_text(text: str) -> list[dict]:
    """JSON lines from a string, split on "\\n" only."""
    return [json.loads(line) for line in text.split("\n") if line.strip()]


# ----------------------------------------------------------------------------------------------------------------
# Report


def summarise_cell(rounds: list[dict]) -> dict:
    """Medians over rounds of each engine's figures and of the per-round ratio zrank/ORT."""
    def med(engine: str, key: str) -> float:
        return median([r[engine][key] for r in rounds])

    return {
        "ort_sequences_per_s": med("ort", "sequences_per_s"), "zrank_sequences_per_s": med("zrank", "sequences_per_s"),
        "ratio_zrank_over_ort": median([r["zrank"]["sequences_per_s"] / r["ort"]["sequences_per_s"] for r in rounds]),
        "ort_p50_ms": med("ort", "p50_ms"), "ort_p99_ms": med("ort", "p99_ms"),
        "zrank_p50_ms": med("zrank", "p50_ms"), "zrank_p99_ms": med("zrank", "p99_ms"),
    }


def print_table(cells: list[dict], rounds: int) -> None:
    """One line per cell: medians of ``rounds`` alternating rounds."""
    print(f"\nthroughput, median of {rounds} alternating round(s) (ORT first, then zrank)")
    header = (f"{'thr':>3} {'batch':>5} {'seq':>4} | {'ORT seq/s':>10} {'p50 ms':>8} {'p99 ms':>8} | "
              f"{'zrank seq/s':>11} {'p50 ms':>8} {'p99 ms':>8} | {'zrank/ORT':>9}")
    print(header)
    print("-" * len(header))
    for cell in cells:
        m = cell["median"]
        print(f"{cell['threads']:>3} {cell['batch']:>5} {cell['seq']:>4} | {m['ort_sequences_per_s']:>10.1f} "
              f"{m['ort_p50_ms']:>8.3f} {m['ort_p99_ms']:>8.3f} | {m['zrank_sequences_per_s']:>11.1f} "
              f"{m['zrank_p50_ms']:>8.3f} {m['zrank_p99_ms']:>8.3f} | {m['ratio_zrank_over_ort']:>8.2f}x")


def print_latency(latency: dict) -> None:
    """Single-query latency summary."""
    m = latency["median"]
    print(f"\nsingle-query latency, batch 1 x 16 tokens, 1 thread, median of {len(latency['rounds'])} round(s)")
    print(f"  ORT   p50 {m['ort_p50_ms']:.3f} ms  p99 {m['ort_p99_ms']:.3f} ms")
    print(f"  zrank p50 {m['zrank_p50_ms']:.3f} ms  p99 {m['zrank_p99_ms']:.3f} ms")
    print(f"  zrank/ORT latency ratio: p50 {m['ratio_p50']:.2f}x  p99 {m['ratio_p99']:.2f}x (>1 means zrank slower)")


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo when available."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# ----------------------------------------------------------------------------------------------------------------
# Main


def parse_args() -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zrank", type=Path, default=Path(os.environ.get("ZRANK", DEFAULT_ZRANK)),
                        help="zrank binary (env ZRANK; default %(default)s)")
    parser.add_argument("--model", type=Path, default=Path(os.environ.get("ZRANK_MODEL", DEFAULT_ZRANK_MODEL)),
                        help="zrank model file (env ZRANK_MODEL; default %(default)s)")
    parser.add_argument("--onnx", type=Path, default=DEFAULT_ONNX_DIR / INT8_NAME, help="ORT int8 model (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per cell (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=2.0, help="measured seconds per engine per round (default %(default)s)")
    parser.add_argument("--quick", action="store_true", help="batch 1,32 x seq 16,32 only")
    parser.add_argument("--batches", type=parse_int_list, help="comma-separated batch sizes (default 1,8,32,128)")
    parser.add_argument("--seqs", type=parse_int_list, help="comma-separated sequence lengths (default 16,32,64,128)")
    parser.add_argument("--threads", type=parse_int_list, help="comma-separated thread counts (default 1,2)")
    parser.add_argument("--latency-runs", type=int, default=3000,
                        help="single-query runs per engine per round; 0 skips the latency section (default %(default)s)")
    parser.add_argument("--min-cosine", type=float, default=0.95,
                        help="fidelity gate: every text's cosine(zrank, ORT int8) must exceed this (default %(default)s)")
    parser.add_argument("--min-mean-cosine", type=float, default=0.985,
                        help="fidelity gate: the mean cosine(zrank, ORT int8) must exceed this (default %(default)s)")
    parser.add_argument("--json", type=Path, help="write every round's raw figures and the medians here")
    args = parser.parse_args()
    args.batches = args.batches or list(QUICK_BATCHES if args.quick else FULL_BATCHES)
    args.seqs = args.seqs or list(QUICK_SEQS if args.quick else FULL_SEQS)
    args.threads = args.threads or list(FULL_THREADS)
    if args.rounds < 1 or args.seconds <= 0:
        parser.error("--rounds must be >= 1 and --seconds > 0")
    if any(s < 2 or s > 512 for s in args.seqs):
        parser.error("--seqs must lie in 2..512")
    return args


def main() -> None:
    """Fidelity gate, throughput grid, single-query latency, report."""
    args = parse_args()
    for path, what in ((args.zrank, "zrank binary (build it with `make`, or set ZRANK)"),
                       (args.model, "zrank model (set ZRANK_MODEL)"),
                       (args.onnx, "ORT int8 model (run export_onnx.py)")):
        if not path.exists():
            raise SystemExit(f"side_by_side: missing {what}: {path}")

    version = run_zrank(args.zrank, ["--version"]).strip()
    print(f"{version} ({args.zrank}, {args.model}) vs onnxruntime {ort.__version__} ({args.onnx})",
          file=sys.stderr)
    check_word_pieces(args.zrank, args.model)
    fidelity = check_fidelity(args.zrank, args.model, args.onnx, args.min_cosine, args.min_mean_cosine)

    sessions = {t: make_session(args.onnx, t) for t in args.threads}
    cells = []
    for threads in args.threads:
        for batch in args.batches:
            for seq in args.seqs:
                rounds = []
                for r in range(args.rounds):
                    o = time_ort(sessions[threads], batch, seq, threads, args.seconds)
                    z = time_zrank(args.zrank, args.model, batch, seq, threads, args.seconds)
                    rounds.append({"round": r + 1, "ort": o, "zrank": z})
                    print(f"  t={threads} b={batch:<3} s={seq:<3} round {r + 1}: ORT {o['sequences_per_s']:9.1f} seq/s"
                          f"  zrank {z['sequences_per_s']:9.1f} seq/s", file=sys.stderr)
                cells.append({"batch": batch, "seq": seq, "threads": threads, "rounds": rounds,
                              "median": summarise_cell(rounds)})

    latency = None
    if args.latency_runs > 0:
        latency_session = sessions.get(1) or make_session(args.onnx, 1)
        probe = time_zrank(args.zrank, args.model, 1, 16, 1, 1.0)  # sizes --seconds for ~latency_runs runs
        latency_rounds = []
        for r in range(args.rounds):
            o = ort_latency(latency_session, args.latency_runs)
            z = zrank_latency(args.zrank, args.model, args.latency_runs, probe["sequences_per_s"])
            latency_rounds.append({"round": r + 1, "ort": o, "zrank": z})
            print(f"  latency round {r + 1}: ORT p50 {o['p50_ms']:.3f} ms ({o['runs']} runs)  zrank p50 "
                  f"{z['p50_ms']:.3f} ms ({z['runs']} runs)", file=sys.stderr)
        med = {f"{e}_{k}": median([r[e][k] for r in latency_rounds])
               for e in ("ort", "zrank") for k in ("p50_ms", "p99_ms")}
        med["ratio_p50"] = median([r["zrank"]["p50_ms"] / r["ort"]["p50_ms"] for r in latency_rounds])
        med["ratio_p99"] = median([r["zrank"]["p99_ms"] / r["ort"]["p99_ms"] for r in latency_rounds])
        latency = {"batch": 1, "seq": 16, "threads": 1, "rounds": latency_rounds, "median": med}

    print_table(cells, args.rounds)
    if latency:
        print_latency(latency)
    f = fidelity
    print(f"\nfidelity over {f['texts']} texts (cosine min / mean): zrank vs ORT int8 "
          f"{f['zrank_vs_ort_int8']['min']:.4f} / {f['zrank_vs_ort_int8']['mean']:.4f}; zrank vs fp32 "
          f"{f['zrank_vs_fp32_reference']['min']:.4f} / {f['zrank_vs_fp32_reference']['mean']:.4f}; ORT int8 vs fp32 "
          f"{f['ort_int8_vs_fp32_reference']['min']:.4f} / {f['ort_int8_vs_fp32_reference']['mean']:.4f}")

    if args.json:
        report = {
            "meta": {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "host": platform.node(),
                     "cpu": cpu_model(), "cpus": os.cpu_count(), "python": platform.python_version(),
                     "onnxruntime": ort.__version__, "numpy": np.__version__, "zrank_version": version,
                     "zrank": str(args.zrank), "zrank_model": str(args.model), "onnx_model": str(args.onnx),
                     "fp32_onnx_model": str(args.onnx.parent / FP32_NAME),
                     "rounds": args.rounds, "seconds": args.seconds, "latency_runs": args.latency_runs,
                     "order": "per round: ORT then zrank"},
            "fidelity": fidelity, "cells": cells, "latency": latency,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
