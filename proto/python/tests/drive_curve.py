#!/usr/bin/env python3
"""Drives a CURVE pool behind two routers with the Python client (run from the Swift CurveFailoverTests).

Usage: drive_curve.py E1,E2 SERVER.pub CLIENT.key ROGUE.key — exits non-zero on the first failed check.
"""
import sys

from zrank_client import Client, ZrankError


def check(condition, what):
    if not condition:
        print(f"python curve client: FAILED: {what}")
        sys.exit(1)
    print(f"python curve client: ok: {what}")


def main():
    endpoints, server, key, rogue = sys.argv[1:5]
    with Client(endpoints, curve_server=server, curve_key=key, try_timeout_ms=300) as c:
        info = c.info()
        check(info.catalog_size > 0, f"info over CURVE through {endpoints}")
        for i in range(6):  # taking the routers in turn
            answer = c.rank("modern accent chair", top_k=3)
            check(len(answer.items) == 3, f"rank {i + 1} over CURVE")
    for label, kwargs in (("no keys", {}), ("a key not in --curve-clients", {"curve_server": server, "curve_key": rogue})):
        with Client(endpoints.split(",")[-1], **kwargs) as c:
            try:
                c.rank("chair", timeout_ms=1500)
                check(False, f"{label}: no answer")
            except ZrankError as e:
                check(e.code == "CLIENT_TIMEOUT", f"{label}: no answer ({e.code})")
    print("python curve client: all checks passed")


if __name__ == "__main__":
    main()
