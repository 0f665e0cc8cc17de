#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into OUT/<target>/ (fuzz/run.sh calls it; nothing here is committed
but this script): the protocol's golden vectors (proto/vectors), the fuzz fixtures (fuzz/fixtures: tiny model, index,
catalog, heads), the demo catalog and WANDS queries (bench/data), in each target's input format (fuzz/README.md).

Usage: fuzz/make_seeds.py OUT
"""
import hashlib
import json
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "fuzz", "fixtures")


def read(*path, mode="rb"):
    with open(os.path.join(ROOT, *path), mode) as f:
        return f.read()


# --- protobuf (hand-encoded: no protobuf package needed) ---

def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def pb_bytes(field, b):
    return varint(field << 3 | 2) + varint(len(b)) + b


def pb_str(field, s):
    return pb_bytes(field, s.encode())


def pb_uint(field, v):
    return varint(field << 3) + varint(v)


def pb_float(field, v):
    return varint(field << 3 | 5) + struct.pack("<f", v)


def rank_request(query, candidates=(), inline=(), top_k=0, explain=False, user=None, recent=(), alpha=None, beta=None):
    out = pb_str(1, query)
    if user is not None or recent:
        out += pb_bytes(2, (pb_str(1, user) if user else b"") + b"".join(pb_str(2, r) for r in recent))
    out += b"".join(pb_str(3, c) for c in candidates)
    out += b"".join(pb_bytes(4, pb_str(1, i) + pb_str(2, t)) for i, t in inline)
    if top_k:
        out += pb_uint(5, top_k)
    if explain:
        out += pb_uint(6, 1)
    if alpha is not None:
        out += pb_float(7, alpha)
    if beta is not None:
        out += pb_float(8, beta)
    return out


def worker_ready(worker_id, version, capacity):
    return pb_str(1, worker_id) + pb_str(2, version) + pb_uint(3, capacity) + pb_str(4, "d34c8caf") + pb_uint(5, 40)


# --- wire header and the FuzzFrames script format ---

RANK_REQUEST, RANK_RESPONSE, INFO_REQUEST, INFO_RESPONSE, ERROR = 1, 2, 3, 4, 5
WORKER_READY, HEARTBEAT, DISCONNECT, LOAD, CONTROL = 16, 17, 18, 19, 32


def header(type_, request_id=0, deadline_ms=0, flags=0, error_code=0, major=1):
    return (b"ZR" + bytes([major, 0, type_, flags]) + struct.pack("<H", error_code) + struct.pack("<Q", request_id)
            + struct.pack("<I", deadline_ms) + struct.pack("<I", 0))


def frame(b):
    return struct.pack("<H", len(b)) + b


def client(frames):
    return bytes([0, len(frames)]) + b"".join(frame(f) for f in frames)


def worker(who, frames):
    return bytes([1, who, len(frames)]) + b"".join(frame(f) for f in frames)


def answer(pick, head, body=None):
    return bytes([2, pick]) + frame(head) + (bytes([1]) + frame(body) if body is not None else bytes([0]))


def tick(ms):
    return bytes([3]) + struct.pack("<H", ms)


def control(obj):
    return bytes([4]) + frame(json.dumps(obj).encode())


DRAIN, COMPARE = bytes([5]), bytes([6])


def frames_seeds(vectors):
    v = {x["name"]: [bytes.fromhex(f) for f in x["frames"]] for x in vectors}
    ready = [worker(0, [header(WORKER_READY), worker_ready("w0", "v1", 2)]),
             worker(1, [header(WORKER_READY), worker_ready("w1", "v2", 1)])]
    response, error, info = v["rank_response"][1], v["error_overloaded"][1], v["info_response"][1]
    seeds = {}
    for name, frames in v.items():
        seeds[f"vector-{name}"] = client([b"client-1"] + frames)
        seeds[f"vector-{name}-req"] = client([b"client-2", b""] + frames)
    seeds["round-trip"] = b"".join(ready + [
        client([b"c1"] + v["rank_request"]), client([b"c2", b""] + v["rank_request_pinned"]),
        answer(0, header(RANK_RESPONSE), response), answer(1, header(ERROR, error_code=3), error),
        client([b"c3", header(INFO_REQUEST, 9)]), answer(2, header(INFO_RESPONSE), info),
        worker(0, [header(HEARTBEAT), json.dumps({"warming": False, "query_cache": {
            "hits": 3, "misses": 1, "entries": 1, "bytes": 256}}).encode()]),
        tick(10), control({"op": "status"}), COMPARE])
    seeds["shadow"] = b"".join(ready + [
        control({"op": "shadow", "version": "v2"}), client([b"c1"] + v["rank_request"]),
        answer(0, header(RANK_RESPONSE), response), answer(1, header(RANK_RESPONSE), response), COMPARE,
        client([b"c1"] + v["rank_request"]), answer(2, header(ERROR, error_code=7), error),
        answer(3, header(RANK_RESPONSE), response), control({"op": "status"}), control({"op": "shadow"})])
    seeds["split-drain-load"] = b"".join(ready + [
        control({"op": "split", "weights": {"v1": 1, "v2": 3}}),
        client([b"c1"] + v["rank_request"]), client([b"c2"] + v["rank_request"]), client([b"c3"] + v["rank_request"]),
        answer(0, header(RANK_RESPONSE), response), control({"op": "drain", "worker": "w0"}),
        control({"op": "load", "worker": "w0", "version": "v3"}), answer(1, header(RANK_RESPONSE), response),
        worker(0, [header(WORKER_READY), worker_ready("w0", "v3", 2)]), control({"op": "window_reset"}),
        tick(5000), worker(1, [header(DISCONNECT)]), tick(20000), DRAIN, client([b"c4"] + v["rank_request"]),
        control({"op": "metrics"})])
    seeds["retry"] = b"".join(ready + [
        client([b"c1", header(RANK_REQUEST, 5, 60000), rank_request("salon chair")]),
        worker(0, [header(DISCONNECT)]), worker(1, [header(DISCONNECT)]),
        worker(2, [header(WORKER_READY), worker_ready("w2", "v1", 1)]), tick(3000), tick(3000),
        worker(3, [header(HEARTBEAT), b"warming"])])
    seeds["malformed"] = b"".join([
        client([b"c1", header(RANK_REQUEST)[:20]]), client([b"c1", b"XX" + header(RANK_REQUEST)[2:]]),
        client([b"c1", header(RANK_REQUEST, major=2)]), client([b"c1", header(77)]),
        client([b"c1", header(RANK_REQUEST, flags=1)]), client([b"c1", header(CONTROL), b"{}"]),
        client([b"c1", header(RANK_RESPONSE)]), client([b"c1", header(RANK_REQUEST), b"a", b"b"])])
    return seeds


def rank_request_seeds(vectors, catalog_ids):
    seeds = {f"vector-{x['name']}": bytes.fromhex(x["frames"][-1]) for x in vectors}
    ids = catalog_ids
    seeds["whole-catalog"] = rank_request("coffee table")
    seeds["candidates"] = rank_request("accent chair chrome", candidates=ids[:12], top_k=5, explain=True)
    seeds["personal"] = rank_request("linen pillow", candidates=ids[:6], user="u-1", recent=ids[6:9], alpha=0.7,
                                     beta=1.5, explain=True)
    seeds["inline"] = rank_request("walnut table", candidates=ids[:2],
                                   inline=[("new-1", "walnut lift-top coffee table"), ("new-2", "salon chair")], top_k=2)
    seeds["unknown"] = rank_request("glam", candidates=["nope", ids[0]], recent=["gone"], explain=True)
    seeds["unicode"] = rank_request("Ünïcödé \u6f22\u5b57 \U0001F600 chair's ##ing", candidates=ids[:3])
    return seeds


def admin_seeds():
    vectors = json.loads(read("proto", "vectors", "admin.json"))
    seeds = {}
    for group in ("requests", "invalid", "answers"):
        for x in vectors[group]:
            seeds[f"{group}-{x['name']}"] = json.dumps(x["json"]).encode()
    seeds["heartbeat"] = json.dumps({"warming": True, "query_cache": {"hits": 1, "misses": 2, "entries": 2,
                                                                     "bytes": 512}}).encode()
    seeds["heartbeat-word"] = b"warming"
    seeds["rollout-v2"] = json.dumps({"op": "rollout", "version": "v2", "canary": 0.5, "step": 0.5,
                                      "interval_s": 1, "min_requests": 0, "shadow_s": 0}).encode()
    seeds["rollout-record"] = json.dumps({"state": "running", "stable": "v1", "stage": "canary", "share": 0.1,
                                          "stage_started_at": 1000, "reason": "", "history": ["started"],
                                          "window_epoch": 3, "baseline_p99_ms": 4.5, "plan": {
                                              "target": "v2", "canary": 0.1, "step": 0.25}}).encode()
    seeds["manifest"] = json.dumps({"version": "v1", "model_content_hash": "ab", "catalog_source_hash": "cd",
                                    "created_at": "2026-01-01", "notes": "", "catalog_size": 40,
                                    "model_file_version": "tiny-v1", "heads_version": "h", "heads_hash": "ef",
                                    "file_sizes": {"model.zrm": 55840}}).encode()
    return seeds


def safetensors_seed():
    tensors = [("a.weight", "F32", [2, 3], struct.pack("<6f", 1, -2, 3.5, 0, 1e-3, -7)),
               ("b.bias", "F16", [4], struct.pack("<4e", 1, -1, 0.5, 2)),
               ("c.table", "BF16", [2, 2], struct.pack("<4H", 0x3F80, 0xBF80, 0x4000, 0x0000))]
    header_, body = {"__metadata__": {"format": "pt"}}, b""
    for name, dtype, shape, data in tensors:
        header_[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(body), len(body) + len(data)]}
        body += data
    h = json.dumps(header_, sort_keys=True).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + body


def model_seeds():
    model, index = read("fuzz", "fixtures", "tiny.zrm"), read("fuzz", "fixtures", "tiny.zri")
    return {"tiny.zrm": model, "tiny.zri": index, "tiny.safetensors": safetensors_seed(),
            # A version-1 index (no item facts): the same file with the facts fields cleared, checksum redone.
            "tiny-v1.zri": v1_index(index)}


def v1_index(index):
    b = bytearray(index[:-32])
    struct.pack_into("<I", b, 8, 1)
    struct.pack_into("<QQ", b, 104, 0, 0)
    return bytes(b) + hashlib.sha256(bytes(b)).digest()


def heads_seeds(catalog_lines):
    catalog = "\n".join(catalog_lines[:12]).encode() + b"\n"
    queries = b"".join(read("bench", "data", "wands", "query.csv").splitlines(keepends=True)[:25])
    ids = [json.loads(line)["id"] for line in catalog_lines]
    log = "\n".join(json.dumps(x) for x in [
        {"query": "coffee table", "item": ids[0], "clicked": True, "dwell_s": 12.5, "position": 1,
         "user": {"id": "u1", "recent": ids[1:3]}},
        {"query": "coffee table", "item": ids[1], "clicked": False, "position": 2, "user": None},
        {"query": "salon chair", "item": ids[2], "clicked": True, "dwell_s": 3},
        {"query": " ", "item": ids[2], "clicked": True}]).encode() + b"\nnot json\n"
    truth = {"tastes": {"u1": {"brands": ["Guilford"], "colors": ["chrome"], "styles": ["glam"], "price_band": 1,
                               "strong": True}},
             "query_classes": {"salon chair": "Massage Chairs"},
             "items": {ids[0]: {"id": ids[0], "category": "Accent Chairs", "brand": "Guilford", "color": "chrome",
                                "style": "glam", "price": 208.08, "popularity": 2.1}},
             "price_cuts": [100, 400], "popularity_mean": 1.0, "popularity_std": 0.5}
    graded = "\n".join(json.dumps({"query": "salon chair", "item": i, "grade": g}) for i, g in zip(ids, range(4)))
    jsonl_queries = b'{"query": "salon chair"}\n{"text": "smart coffee table"}\n'
    return {
        "heads": b"\x00" + read("fuzz", "fixtures", "heads.json"),
        "catalog": b"\x01" + catalog,
        "impressions": b"\x02" + log,
        "queries-text": b"\x03" + b"salon chair\nsmart coffee table\n\n  \n",
        "queries-jsonl": b"\x03" + jsonl_queries,
        "queries-csv": b"\x04" + queries,
        "catalog-ids": b"\x05" + catalog,
        "graded-truth": b"\x06" + graded.encode() + b"\n",
        "simulation-truth": b"\x07" + json.dumps(truth).encode(),
        "log-simulator": b"\x08" + catalog + b"\x00" + queries,
        "graded-simulator": b"\x09" + catalog + b"\x00" + queries,
    }


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    vectors = json.loads(read("proto", "vectors", "vectors.json"))
    catalog_lines = read("fuzz", "fixtures", "catalog.jsonl", mode="r").splitlines()
    catalog_ids = [json.loads(line)["id"] for line in catalog_lines]
    corpora = {
        "FuzzFrames": frames_seeds(vectors),
        "FuzzRankRequest": rank_request_seeds(vectors, catalog_ids),
        "FuzzAdmin": admin_seeds(),
        "FuzzModelFile": model_seeds(),
        "FuzzHeads": heads_seeds(catalog_lines),
    }
    for target, seeds in corpora.items():
        folder = os.path.join(out, target)
        os.makedirs(folder, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(folder, name), "wb") as f:
                f.write(data)
        print(f"{target}: {len(seeds)} seeds, {sum(map(len, seeds.values()))} bytes")


if __name__ == "__main__":
    main()
