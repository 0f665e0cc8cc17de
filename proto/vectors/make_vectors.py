#!/usr/bin/env python3
"""Writes proto/vectors/vectors.json: golden byte vectors (header + protobuf body frames, hex) with the field values
they encode. Both the Swift tests and the Python client tests decode every vector and compare with `expect`.

Run with the pinned client environment: `$(scripts/python-env.sh) proto/vectors/make_vectors.py`.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
from zrank_client import Header, MessageType, PIN_FLAG, zrank_pb2  # noqa: E402


def vector(name, header, body, expect, pin=None):
    frames = [header.pack().hex()] + ([pin.encode().hex()] if pin else []) + [body.SerializeToString().hex()]
    return {"name": name, "frames": frames, "header": {
        "type": header.type, "request_id": header.request_id, "deadline_ms": header.deadline_ms,
        "flags": header.flags}, "expect": expect}


def main():
    out = []
    req = zrank_pb2.RankRequest(query="smart coffee table", candidate_ids=["SKU-000001", "B07XJ8C8F5", "12345"],
                                top_k=2, explain=True)
    req.user.user_id = "u-42"
    req.user.recent_item_ids.extend(["SKU-000777"])
    req.inline_candidates.add(id="new-1", text="walnut lift-top coffee table")
    out.append(vector("rank_request", Header(MessageType.RANK_REQUEST, 0x0102030405060708, 250), req, {
        "query": "smart coffee table", "candidate_ids": ["SKU-000001", "B07XJ8C8F5", "12345"], "top_k": 2,
        "explain": True, "user_id": "u-42", "recent_item_ids": ["SKU-000777"],
        "inline": [["new-1", "walnut lift-top coffee table"]]}))
    pinned = zrank_pb2.RankRequest(query="salon chair")
    out.append(vector("rank_request_pinned", Header(MessageType.RANK_REQUEST, 7, 0, PIN_FLAG), pinned,
                      {"query": "salon chair", "pin": "v2"}, pin="v2"))
    resp = zrank_pb2.RankResponse(model_version="minilm-78586b31d55e", not_found=["12345"], user_context_used=False)
    resp.items.add(id="SKU-000001", score=0.5, components=zrank_pb2.ScoreComponents(cosine=0.5))
    resp.items.add(id="B07XJ8C8F5", score=-0.25)
    resp.timings.queue_us, resp.timings.encode_us, resp.timings.score_us, resp.timings.total_us = 12, 900, 40, 960
    out.append(vector("rank_response", Header(MessageType.RANK_RESPONSE, 0x0102030405060708), resp, {
        "model_version": "minilm-78586b31d55e", "items": [["SKU-000001", 0.5], ["B07XJ8C8F5", -0.25]],
        "not_found": ["12345"], "timings": [12, 900, 40, 960]}))
    err = zrank_pb2.Error(code=zrank_pb2.Error.OVERLOADED, message="queue full")
    out.append(vector("error_overloaded", Header(MessageType.ERROR, 99), err, {"code": 3, "message": "queue full"}))
    info = zrank_pb2.InfoResponse(model_version="v1", catalog_size=3, sample_item_ids=["a", "b", "c"],
                                  embedding_dimension=384, max_candidates=10000)
    out.append(vector("info_response", Header(MessageType.INFO_RESPONSE, 5), info, {
        "model_version": "v1", "catalog_size": 3, "sample_item_ids": ["a", "b", "c"]}))
    path = os.path.join(os.path.dirname(__file__), "vectors.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {path}: {len(out)} vectors")


if __name__ == "__main__":
    main()
