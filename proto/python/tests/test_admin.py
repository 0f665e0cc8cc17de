"""The admin protocol from Python: the golden vectors (proto/vectors/admin.json, also checked by the Swift tests) are
built by zrank_client.admin exactly and validate against the schema the package ships."""
import json
import os

import jsonschema
import pytest

from zrank_client import admin

VECTORS = os.path.join(os.path.dirname(__file__), "..", "..", "vectors", "admin.json")


def load():
    with open(VECTORS, encoding="utf-8") as f:
        return json.load(f)


def test_every_op_has_a_vector_and_is_built_exactly():
    requests = load()["requests"]
    assert {v["json"]["op"] for v in requests} == set(admin.SCHEMA["$defs"]["request"]["properties"]["op"]["enum"])
    for v in requests:
        call = dict(v["call"])
        built = admin.request(call.pop("op"), **call)
        assert built == v["json"], v["name"]


def test_invalid_requests_fail_the_schema():
    for v in load()["invalid"]:
        with pytest.raises(jsonschema.ValidationError):
            admin.validate(v["json"], "request")


def test_answers_validate_against_their_definitions():
    for v in load()["answers"]:
        admin.validate(v["json"], v["kind"])


def test_a_renamed_or_mistyped_answer_field_is_caught():
    status = next(v["json"] for v in load()["answers"] if v["name"] == "status_coordinator")
    broken = dict(status)
    broken["queueDepth"] = broken.pop("queue_depth")
    with pytest.raises(jsonschema.ValidationError):
        admin.validate(broken, "status")
    worker = dict(status["workers"][0], state="sleeping")
    with pytest.raises(jsonschema.ValidationError):
        admin.validate(dict(status, workers=[worker]), "status")


def test_builder_refuses_unknown_ops_and_fields():
    with pytest.raises(ValueError):
        admin.request("explode")
    with pytest.raises(ValueError):
        admin.request("pin", version="v1", worker="w1")
    with pytest.raises(jsonschema.ValidationError):
        admin.request("pin", version="../v9")
