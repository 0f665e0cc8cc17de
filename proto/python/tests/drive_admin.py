#!/usr/bin/env python3
"""Drives a running pool's admin socket with the Python admin client (the second-language check of the admin
protocol). The pool serves two versions (VERSION_A, VERSION_B) on two workers and has no registry.

Usage: drive_admin.py ADMIN_ENDPOINT VERSION_A VERSION_B — exits non-zero on the first failed check.
"""
import sys

from zrank_client.admin import AdminClient, AdminRefused


def check(condition, what):
    if not condition:
        print(f"python admin client: FAILED: {what}")
        sys.exit(1)
    print(f"python admin client: ok: {what}")


def refused(call, code):
    try:
        call()
    except AdminRefused as e:
        return e.code == code
    return False


def main():
    endpoint, a, b = sys.argv[1:4]
    with AdminClient(endpoint, timeout_ms=5000) as c:
        status = c.status()
        check({w["version"] for w in status["workers"] if w["state"] == "ready"} == {a, b}, "status: both versions ready")
        check(status["rollout"]["state"] == "idle", "status: no rollout")
        check(c.pin(b)["traffic"] == {b: 1}, f"pin {b}")
        check(c.status()["traffic"] == {b: 1}, "status shows the pin")
        check(refused(lambda: c.pin("no-such"), "not_found"), "pin to a version nobody serves: not_found")
        check(c.unpin()["ok"] is True, "unpin")
        first = c.window_reset()["epoch"]
        check(c.window_reset()["epoch"] == first + 1 and c.status()["window_epoch"] == first + 1, "window epochs count up")
        name = status["workers"][0]["name"]
        check(c.drain(name)["ok"] is True, f"drain {name} by its announced name")
        check(next(w for w in c.status()["workers"] if w["name"] == name)["state"] == "draining", "status shows it draining")
        check(c.drain(name, on=False)["ok"] is True, "undrain")
        check(refused(lambda: c.drain("nobody"), "not_found"), "drain of an unknown worker: not_found")
        check(refused(lambda: c.rollout(b), "unavailable"), "rollout without a registry: unavailable")
        check(refused(lambda: c.pause(), "conflict"), "pause with no rollout: conflict")
        check("zrank_requests_total" in c.metrics() or "zrank_queue_depth" in c.metrics(), "metrics text")


if __name__ == "__main__":
    main()
