#!/usr/bin/env python3
"""Drives a running zrank pool with the Python client (the second-language interop check).

Usage: drive_pool.py ENDPOINT ITEM_ID ITEM_ID ITEM_ID  — exits non-zero on the first failed check.
"""
import sys

from zrank_client import Client, Header, MessageType, ZrankError, zrank_pb2


def check(condition, what):
    if not condition:
        print(f"python client: FAILED: {what}")
        sys.exit(1)
    print(f"python client: ok: {what}")


def main():
    endpoint, ids = sys.argv[1], sys.argv[2:]
    with Client(endpoint) as c:
        info = c.info()
        check(info.catalog_size > 0 and len(info.sample_item_ids) == min(info.catalog_size, 10000),
              f"info: version {info.model_version}, {info.catalog_size} items")
        answer = c.rank("modern accent chair", candidates=ids + ["missing-id"], top_k=2, explain=True)
        check(len(answer.items) == 2, "rank returns top_k items")
        check(answer.items[0].score >= answer.items[1].score, "items best first")
        check(list(answer.not_found) == ["missing-id"], "not_found reported")
        check(answer.model_version == info.model_version, "model version reported")
        check(abs(answer.items[0].components.cosine - answer.items[0].score) < 1e-6, "explain components present")
        check(answer.timings.total_us > 0, "server timings present")
        whole = c.rank("rug", top_k=5)
        check(len(whole.items) == 5, "whole-catalog ranking")
        try:
            c.rank("chair", candidates=["a", "a"])
            check(False, "duplicated ids rejected")
        except ZrankError as e:
            check(e.code == "INVALID_REQUEST", f"duplicated ids rejected: {e.message}")
        try:
            c.rank("chair", pin="no-such-version")
            check(False, "unknown pin rejected")
        except ZrankError as e:
            check(e.code == "UNKNOWN_MODEL_VERSION", "unknown pin rejected")
        bad = Header(MessageType.RANK_REQUEST, 4242, major=9).pack()
        c.send_frames([bad, b""])
        frames = c.receive_frames(5000)
        check(frames is not None and Header.unpack(frames[0]).type == MessageType.ERROR, "unknown major version answered")
        check(zrank_pb2.Error.FromString(frames[-1]).code == zrank_pb2.Error.INVALID_REQUEST, "...with INVALID_REQUEST")
    print("python client: all checks passed")


if __name__ == "__main__":
    main()
