"""The golden vectors decode in Python exactly as in Swift (same file, proto/vectors/vectors.json)."""
import json
import os

from zrank_client import Header, zrank_pb2

VECTORS = os.path.join(os.path.dirname(__file__), "..", "..", "vectors", "vectors.json")


def load():
    with open(VECTORS, encoding="utf-8") as f:
        return json.load(f)


def test_every_vector_decodes_to_its_expected_fields():
    vectors = load()
    assert len(vectors) == 5
    for v in vectors:
        frames = [bytes.fromhex(x) for x in v["frames"]]
        h = Header.unpack(frames[0])
        assert h.type == v["header"]["type"]
        assert h.request_id == v["header"]["request_id"]
        assert h.pack() == frames[0]
        e = v["expect"]
        body = frames[-1]
        if v["name"] == "rank_request":
            r = zrank_pb2.RankRequest.FromString(body)
            assert r.query == e["query"] and list(r.candidate_ids) == e["candidate_ids"] and r.top_k == e["top_k"]
            assert r.user.user_id == e["user_id"] and list(r.user.recent_item_ids) == e["recent_item_ids"]
            assert [[c.id, c.text] for c in r.inline_candidates] == e["inline"]
        elif v["name"] == "rank_request_pinned":
            assert frames[1].decode() == e["pin"]
            assert zrank_pb2.RankRequest.FromString(body).query == e["query"]
        elif v["name"] == "rank_response":
            r = zrank_pb2.RankResponse.FromString(body)
            assert [[i.id, i.score] for i in r.items] == e["items"]
            assert list(r.not_found) == e["not_found"]
        elif v["name"] == "error_overloaded":
            r = zrank_pb2.Error.FromString(body)
            assert r.code == e["code"] and r.message == e["message"]
        elif v["name"] == "info_response":
            r = zrank_pb2.InfoResponse.FromString(body)
            assert list(r.sample_item_ids) == e["sample_item_ids"]


def test_malformed_header_is_refused():
    good = Header(1, 5).pack()
    for bad in (good[:23], b"XX" + good[2:]):
        try:
            Header.unpack(bad)
            assert False
        except ValueError:
            pass
