"""zrank pool client for Python: pyzmq DEALER socket + protobuf bodies behind the fixed 24-byte header.

See proto/PROTOCOL.md for the byte layout. Example::

    from zrank_client import Client
    with Client("tcp://127.0.0.1:5555") as c:
        answer = c.rank("salon chair", candidates=["SKU-000001", "SKU-000002"], top_k=5)
        for item in answer.items:
            print(item.id, item.score)

Several routers (active-active) and CURVE::

    Client("tcp://a:5555,tcp://b:5555", curve_server="router.pub", curve_key="client.key")

A request not answered within ``try_timeout_ms`` (or answered UNAVAILABLE by a draining router) is sent again, with
the same request id and what is left of its deadline, to the next router; the later duplicate answer is dropped.
"""
import itertools
import os
import struct
import time

import zmq

from . import zrank_pb2

__all__ = ["Client", "ZrankError", "Header", "MessageType", "zrank_pb2", "load_curve_keys"]

MAGIC = b"ZR"
MAJOR, MINOR = 1, 0
PIN_FLAG = 0x01
_HEADER = struct.Struct("<2sBBBBHQII")  # magic, major, minor, type, flags, error code, request id, deadline, queue us
assert _HEADER.size == 24


class MessageType:
    RANK_REQUEST = 1
    RANK_RESPONSE = 2
    INFO_REQUEST = 3
    INFO_RESPONSE = 4
    ERROR = 5
    WORKER_READY = 16
    HEARTBEAT = 17
    DISCONNECT = 18


class Header:
    """The fixed header frame."""

    def __init__(self, type_, request_id, deadline_ms=0, flags=0, major=MAJOR, minor=MINOR, queue_us=0, error_code=0):
        self.type = type_
        self.error_code = error_code  # ERROR only: the Error.Code of the body (0: not given)
        self.request_id = request_id
        self.deadline_ms = deadline_ms
        self.flags = flags
        self.major = major
        self.minor = minor
        self.queue_us = queue_us

    def pack(self):
        return _HEADER.pack(MAGIC, self.major, self.minor, self.type, self.flags, self.error_code, self.request_id,
                            self.deadline_ms, self.queue_us)

    @classmethod
    def unpack(cls, frame):
        if len(frame) != _HEADER.size:
            raise ValueError(f"header frame of {len(frame)} bytes, expected {_HEADER.size}")
        magic, major, minor, type_, flags, error_code, request_id, deadline, queue_us = _HEADER.unpack(frame)
        if magic != MAGIC:
            raise ValueError("bad magic")
        return cls(type_, request_id, deadline, flags, major, minor, queue_us, error_code)


class ZrankError(Exception):
    """An explicit error answer from the pool (code is the closed enum's name), or a client-side timeout."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _read_key(path):
    """The first line of a key file (as ``zrank keygen`` writes it) that is not blank or a comment."""
    with open(path, "r", encoding="ascii") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                if len(line) != 40:
                    raise ValueError(f"{path} does not hold a CURVE key (40 Z85 characters)")
                return line.encode("ascii")
    raise ValueError(f"{path} does not hold a CURVE key")


def load_curve_keys(curve_server, curve_key):
    """(server public, own public, own secret) as Z85 bytes from ``zrank keygen`` files (FILE.pub, FILE.key)."""
    if not zmq.has("curve"):
        raise RuntimeError("this pyzmq's libzmq has no CURVE support")
    server = _read_key(curve_server)
    secret = _read_key(curve_key)
    mode = os.stat(curve_key).st_mode & 0o777
    if mode & 0o026:
        raise PermissionError(f"the secret key {curve_key} has mode {mode:o}: others may read or change it (chmod 600)")
    return server, zmq.curve_public(secret), secret


class DealerConnection:
    """One DEALER socket per endpoint (``endpoint`` may list several, comma-separated) and a request id counter;
    a context manager (closes the sockets). Sockets set ZMQ_IMMEDIATE: nothing is queued for a router that is not
    connected."""

    def __init__(self, endpoint, context=None, curve_server=None, curve_key=None):
        if (curve_server is None) != (curve_key is None):
            raise ValueError("curve_server and curve_key go together")
        self.endpoint = endpoint
        self.endpoints = [e for e in endpoint.split(",") if e]
        if not self.endpoints:
            raise ValueError("no endpoint")
        self._context = context or zmq.Context.instance()
        keys = load_curve_keys(curve_server, curve_key) if curve_server else None
        self._sockets = []
        for e in self.endpoints:
            s = self._context.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.IMMEDIATE, 1)
            if keys and e.startswith("tcp://"):
                s.curve_serverkey, s.curve_publickey, s.curve_secretkey = keys
            s.connect(e)
            self._sockets.append(s)
        self._socket = self._sockets[0]
        self._ids = itertools.count(1)

    def close(self):
        for s in self._sockets:
            s.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Client(DealerConnection):
    """Requests matched to answers by request id; with several endpoints, failover between routers."""

    def __init__(self, endpoint, context=None, curve_server=None, curve_key=None, try_timeout_ms=500):
        super().__init__(endpoint, context, curve_server, curve_key)
        self.try_timeout_ms = try_timeout_ms
        self._turn = 0
        self.resends = 0

    def send_frames(self, frames):
        """Sends raw frames (for protocol tests)."""
        self._socket.send_multipart(frames)

    def receive_frames(self, timeout_ms):
        """Receives one raw answer, or None on timeout."""
        if not self._socket.poll(timeout_ms):
            return None
        return self._socket.recv_multipart()

    def _try_send(self, type_, request_id, body, pin, deadline_ms, started, avoid=None):
        """Sends to the next router that takes it (not ``avoid`` unless no other will); the socket's index or None."""
        left = deadline_ms
        if deadline_ms:
            left = max(1, deadline_ms - int((time.monotonic() - started) * 1000))
        header = Header(type_, request_id, left, PIN_FLAG if pin else 0)
        frames = [header.pack()] + ([pin.encode("utf-8")] if pin else []) + [body]
        n = len(self._sockets)
        order = [(self._turn + k) % n for k in range(n)]
        # Never the router to avoid: resending to the same (slow) router only adds to its queue.
        order = [i for i in order if i != avoid]
        for i in order:
            try:
                self._sockets[i].send_multipart(frames, flags=zmq.NOBLOCK)
            except zmq.Again:
                continue  # not connected (ZMQ_IMMEDIATE)
            self._turn = (i + 1) % n
            return i
        return None

    def _call(self, type_, body, pin=None, deadline_ms=0, timeout_ms=5000):
        request_id = next(self._ids)
        started = time.monotonic()
        end = started + timeout_ms / 1000
        at = self._try_send(type_, request_id, body, pin, deadline_ms, started)
        tried_at = time.monotonic()
        poller = zmq.Poller()
        for s in self._sockets:
            poller.register(s, zmq.POLLIN)
        while True:
            now = time.monotonic()
            if now >= end:
                raise ZrankError("CLIENT_TIMEOUT", f"no answer within {timeout_ms} ms from {self.endpoint}")
            if at is None or (len(self._sockets) > 1 and now - tried_at >= self.try_timeout_ms / 1000):
                # Unsent (no router connected yet) or unanswered in time: another router, if one takes it.
                other = self._try_send(type_, request_id, body, pin, deadline_ms, started, avoid=at)
                if other is not None:
                    self.resends += at is not None
                    at = other
                tried_at = now
            wait = min(end - now, 0.005 if at is None else max(0.001, self.try_timeout_ms / 1000 - (now - tried_at)))
            for s, _ in poller.poll(max(1, int(wait * 1000))):
                frames = s.recv_multipart()
                answer = Header.unpack(frames[0])
                if answer.request_id != request_id:
                    continue  # a late (or duplicate) answer to an earlier request
                if answer.type == MessageType.ERROR:
                    error = zrank_pb2.Error.FromString(frames[-1])
                    code = zrank_pb2.Error.Code.Name(error.code)
                    if code == "UNAVAILABLE" and len(self._sockets) > 1 and time.monotonic() < end:
                        other = self._try_send(type_, request_id, body, pin, deadline_ms, started,
                                               avoid=self._sockets.index(s))
                        if other is not None:
                            at, tried_at = other, time.monotonic()
                            self.resends += 1
                            break
                    raise ZrankError(code, error.message)
                return answer, frames[-1]

    def rank(self, query, candidates=(), top_k=0, explain=False, user_id=None, recent=(), inline=(), pin=None,
             deadline_ms=0, timeout_ms=5000, alpha=None, beta=None):
        """Ranks candidate ids (empty = the whole catalog). Returns a zrank_pb2.RankResponse.

        explain: each item's components (cosine, ctr, engagement, per-feature contributions) when the pool has heads.
        pin: a model version to be answered by (UNKNOWN_MODEL_VERSION when no worker serves it).
        alpha, beta: override score = alpha * P(click) + beta * E[engagement] for this request.
        """
        request = zrank_pb2.RankRequest(query=query, candidate_ids=list(candidates), top_k=top_k, explain=explain)
        if alpha is not None:
            request.alpha = alpha
        if beta is not None:
            request.beta = beta
        if user_id is not None or recent:
            request.user.user_id = user_id or ""
            request.user.recent_item_ids.extend(recent)
        for item_id, text in inline:
            request.inline_candidates.add(id=item_id, text=text)
        _, body = self._call(MessageType.RANK_REQUEST, request.SerializeToString(), pin, deadline_ms, timeout_ms)
        return zrank_pb2.RankResponse.FromString(body)

    def info(self, timeout_ms=5000):
        """The pool's model version, catalog size and a sample of item ids."""
        _, body = self._call(MessageType.INFO_REQUEST, zrank_pb2.InfoRequest().SerializeToString(),
                             timeout_ms=timeout_ms)
        return zrank_pb2.InfoResponse.FromString(body)
