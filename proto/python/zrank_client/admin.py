"""Operator client for a zrank pool's admin socket (the coordinator; the router's control socket speaks the same).

Speaks proto/PROTOCOL.md's "Admin socket" section: a DEALER socket, ``[header (type CONTROL)][JSON]`` each way.
Requests are built and answers checked against ``admin.schema.json`` (shipped with this package) with jsonschema, so a
renamed or mistyped field fails loudly here instead of silently on the other side. Example::

    from zrank_client.admin import AdminClient
    with AdminClient("ipc:///run/user/1000/zrank-1000-42/admin.sock") as admin:
        print(admin.status()["rollout"]["state"])
        admin.rollout("v2", canary=0.1, step=0.25, interval_s=30, shadow_s=60)
"""
import json

import zmq
from importlib import resources

import jsonschema

from . import DealerConnection, Header

__all__ = ["AdminClient", "AdminRefused", "AdminTimeout", "request", "validate", "SCHEMA"]

CONTROL = 32

SCHEMA = json.loads(resources.files(__package__).joinpath("admin.schema.json").read_text(encoding="utf-8"))

# The fields each op carries besides "op" (for building requests from keyword arguments).
_FIELDS = {
    "status": (), "pause": (), "resume": (), "rollback": (), "unpin": (), "window_reset": (), "metrics": (),
    "rollout": ("version", "canary", "step", "interval_s", "max_error_rate", "max_p99_ms", "min_requests", "shadow_s"),
    "pin": ("version",),
    "split": ("weights",),
    "drain": ("worker", "on"),
    "load": ("worker", "version"),
    "shadow": ("version",),
}


def validate(message, kind):
    """Checks a message against the schema's definition ``kind`` (request, status, reply, load); raises
    jsonschema.ValidationError naming the field."""
    jsonschema.validate(message, {"$ref": f"#/$defs/{kind}", "$defs": SCHEMA["$defs"]})


def request(op, **fields):
    """Builds the JSON object of one admin request, e.g. ``request("pin", version="v1")``; fields left as None are
    omitted. Raises ValueError for an unknown op or field, jsonschema.ValidationError for a bad value."""
    if op not in _FIELDS:
        raise ValueError(f"unknown op {op!r}")
    unknown = set(fields) - set(_FIELDS[op])
    if unknown:
        raise ValueError(f"{op} takes no {sorted(unknown)}")
    message = {"op": op}
    message.update({k: v for k, v in fields.items() if v is not None})
    validate(message, "request")
    return message


class AdminRefused(Exception):
    """The pool refused the request: ``code`` is one of invalid_request, unknown_op, conflict, not_found,
    unavailable."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class AdminTimeout(Exception):
    """No answer within the timeout (wrong endpoint, or the pool is down)."""


class AdminClient(DealerConnection):
    """One DEALER socket to an admin endpoint; one call at a time, answers matched by request id."""

    def __init__(self, endpoint, timeout_ms=2000, context=None, curve_server=None, curve_key=None):
        super().__init__(endpoint, context, curve_server, curve_key)
        self.timeout_ms = timeout_ms
        # ZMQ_IMMEDIATE: a send waits for a connected peer, at most the timeout.
        self._socket.setsockopt(zmq.SNDTIMEO, timeout_ms)

    def call(self, message):
        """Sends a request object (see ``request``) and returns the answer object, validated: the status object for
        "status", else the reply. Raises AdminRefused for ``{"error", "code"}`` answers, AdminTimeout when nothing
        comes back."""
        validate(message, "request")
        request_id = next(self._ids)
        try:
            self._socket.send_multipart([Header(CONTROL, request_id).pack(), json.dumps(message).encode("utf-8")])
        except zmq.Again:
            raise AdminTimeout(f"no answer from {self.endpoint} within {self.timeout_ms} ms (not connected)")
        while True:
            if not self._socket.poll(self.timeout_ms):
                raise AdminTimeout(f"no answer from {self.endpoint} within {self.timeout_ms} ms")
            frames = self._socket.recv_multipart()
            if len(frames) < 2 or Header.unpack(frames[0]).request_id != request_id:
                continue  # an answer to an earlier, timed-out call
            answer = json.loads(frames[1])
            if "error" in answer:
                validate(answer, "reply")
                raise AdminRefused(answer["code"], answer["error"])
            validate(answer, "status" if message["op"] == "status" else "reply")
            return answer

    # One method per op.
    def status(self):
        return self.call(request("status"))

    def rollout(self, version, **plan):
        return self.call(request("rollout", version=version, **plan))

    def pause(self):
        return self.call(request("pause"))

    def resume(self):
        return self.call(request("resume"))

    def rollback(self):
        return self.call(request("rollback"))

    def pin(self, version):
        return self.call(request("pin", version=version))

    def unpin(self):
        return self.call(request("unpin"))

    def split(self, weights):
        return self.call(request("split", weights=weights))

    def drain(self, worker, on=True):
        return self.call(request("drain", worker=worker, on=on))

    def load(self, worker, version):
        """Router control socket only (the coordinator refuses it: its rollouts move workers)."""
        return self.call(request("load", worker=worker, version=version))

    def shadow(self, version):
        return self.call(request("shadow", version=version or ""))

    def window_reset(self):
        return self.call(request("window_reset"))

    def metrics(self):
        return self.call(request("metrics"))["text"]
