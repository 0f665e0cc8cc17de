"""zrank pool client for Python: pyzmq DEALER socket + protobuf bodies behind the fixed 24-byte header.

See proto/PROTOCOL.md for the byte layout. Example::

    from zrank_client import Client
    with Client("tcp://127.0.0.1:5555") as c:
        answer = c.rank("salon chair", candidates=["SKU-000001", "SKU-000002"], top_k=5)
        for item in answer.items:
            print(item.id, item.score)
"""
import itertools
import struct

import zmq

from . import zrank_pb2

__all__ = ["Client", "ZrankError", "Header", "MessageType", "zrank_pb2"]

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


class DealerConnection:
    """One DEALER socket to an endpoint and a request id counter; a context manager (closes the socket)."""

    def __init__(self, endpoint, context=None):
        self.endpoint = endpoint
        self._context = context or zmq.Context.instance()
        self._socket = self._context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.connect(endpoint)
        self._ids = itertools.count(1)

    def close(self):
        self._socket.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Client(DealerConnection):
    """One DEALER socket; requests are matched to answers by request id."""

    def send_frames(self, frames):
        """Sends raw frames (for protocol tests)."""
        self._socket.send_multipart(frames)

    def receive_frames(self, timeout_ms):
        """Receives one raw answer, or None on timeout."""
        if not self._socket.poll(timeout_ms):
            return None
        return self._socket.recv_multipart()

    def _call(self, type_, body, pin=None, deadline_ms=0, timeout_ms=5000):
        request_id = next(self._ids)
        header = Header(type_, request_id, deadline_ms, PIN_FLAG if pin else 0)
        frames = [header.pack()] + ([pin.encode("utf-8")] if pin else []) + [body]
        self._socket.send_multipart(frames)
        while True:
            frames = self.receive_frames(timeout_ms)
            if frames is None:
                raise ZrankError("CLIENT_TIMEOUT", f"no answer within {timeout_ms} ms")
            answer = Header.unpack(frames[0])
            if answer.request_id != request_id:
                continue  # a late answer to an earlier, timed-out request
            if answer.type == MessageType.ERROR:
                error = zrank_pb2.Error.FromString(frames[-1])
                raise ZrankError(zrank_pb2.Error.Code.Name(error.code), error.message)
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
