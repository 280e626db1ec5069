import base64

import orjson
import pytest

from aiges import errors, protocol
from aiges.engine import Data, DataStatus, DataType
from aiges.errors import AigesError


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def request(**payload):
    return {
        "header": {"appid": "a1", "uid": "u1", "status": 3, "res_id": "3,7", "trace": "t-9"},
        "parameter": {"svc": {"rate": 16000, "ratio": 0.5, "flag": True, "name": "x",
                              "whole": 16000.0,
                              "result": {"encoding": "utf8", "format": "plain"}}},
        "payload": payload or {"input": {"encoding": "utf8", "status": 3, "text": b64(b"hi")}},
    }


def test_parse_full_request():
    req = protocol.parse(request(), "svc", ["trace", "missing"], sid="s1")
    assert req.sid == "s1"
    assert req.params == {"sid": "s1", "trace": "t-9", "rate": "16000", "ratio": "0.5",
                          "flag": "true", "name": "x", "whole": "16000"}
    assert req.outputs == {"result": {"encoding": "utf8", "format": "plain"}}
    assert req.psr_ids == [3, 7]
    assert req.data == [Data("input", b"hi", DataType.TEXT, DataStatus.ONCE,
                             {"encoding": "utf8"})]


def test_sid_is_always_the_loaders():
    doc = request()
    doc["parameter"]["svc"]["sid"] = "forged"
    req = protocol.parse(doc, "svc", [])
    assert req.params["sid"] == req.sid != "forged"


def test_every_section_under_parameter_is_read_the_services_own_last():
    """Upstream reads every object under ``parameter``: clients name their section after
    the wrapper's serviceId, which need not be the service name here."""
    doc = request()
    doc["parameter"] = {"svc": {"lang": "en", "rate": 8000},
                        "mnist": {"lang": "fr", "beam": 4, "out": {"encoding": "utf8"}}}
    req = protocol.parse(doc, "svc", [], sid="s1")
    assert req.params == {"sid": "s1", "lang": "en", "rate": "8000", "beam": "4"}
    assert req.outputs == {"out": {"encoding": "utf8"}}
    doc["parameter"] = {"mnist": {"lang": "fr"}}
    assert protocol.parse(doc, "svc", []).params["lang"] == "fr"


@pytest.mark.parametrize("section", [1, "en", [1], True])
def test_a_parameter_section_that_is_not_an_object_is_10107(section):
    doc = request()
    doc["parameter"]["lang"] = section
    with pytest.raises(AigesError) as info:
        protocol.parse(doc, "svc", [])
    assert info.value.code == errors.INVALID_PARAM
    assert "parameter.lang must be an object" in info.value.message


@pytest.mark.parametrize("field, kind", [("audio", DataType.AUDIO), ("image", DataType.IMAGE),
                                         ("video", DataType.VIDEO)])
def test_data_type_follows_the_field(field, kind):
    req = protocol.parse(request(x={field: b64(b"\x00\xff"), "sample_rate": 16000,
                                    "status": "2"}), "svc", [])
    assert req.data == [Data("x", b"\x00\xff", kind, DataStatus.END, {"sample_rate": "16000"})]


def test_json_value_is_sent_as_its_json_text():
    req = protocol.parse(request(x={"text": {"a": [1, 2]}}), "svc", [])
    assert orjson.loads(req.data[0].data) == {"a": [1, 2]}


@pytest.mark.parametrize("body, code", [
    (b"{not json", errors.BAD_JSON),
    (b"[1, 2]", errors.BAD_JSON),
    (b"", errors.BAD_JSON),
])
def test_loads_rejects_non_objects(body, code):
    with pytest.raises(AigesError) as info:
        protocol.loads(body)
    assert (info.value.code, info.value.http_status) == (code, 400)


@pytest.mark.parametrize("payload, code", [
    ({}, errors.INVALID_INPUT),
    ({"x": {"text": "***"}}, errors.BAD_PAYLOAD),
    ({"x": {"text": "aGk"}}, errors.BAD_PAYLOAD),  # missing padding
    ({"x": {"encoding": "utf8"}}, errors.INVALID_INPUT),
    ({"x": {"text": "aGk=", "audio": "aGk="}}, errors.INVALID_INPUT),
    ({"x": {"text": "aGk=", "status": 9}}, errors.INVALID_INPUT),
    ({"x": {"text": 12}}, errors.INVALID_INPUT),
    ({"x": "aGk="}, errors.INVALID_INPUT),
])
def test_bad_payloads(payload, code):
    doc = request()
    doc["payload"] = payload
    with pytest.raises(AigesError) as info:
        protocol.parse(doc, "svc", [])
    assert info.value.code == code and info.value.http_status == 400


@pytest.mark.parametrize("res_id", ["a,b", "-1", [1, "x"]])
def test_bad_res_id(res_id):
    doc = request()
    doc["header"]["res_id"] = res_id
    with pytest.raises(AigesError) as info:
        protocol.parse(doc, "svc", [])
    assert info.value.code == errors.INVALID_PARAM


def test_render_success():
    items = [Data("result", "héllo".encode(), DataType.TEXT, DataStatus.ONCE, {"lang": "fr"}),
             Data("pcm", b"\x01\x02", DataType.AUDIO, DataStatus.END, {})]
    body = orjson.loads(protocol.success("s1", items, {"result": {"encoding": "utf8"}}))
    assert body == {
        "header": {"code": 0, "sid": "s1", "status": 2},
        "payload": {
            "result": {"encoding": "utf8", "lang": "fr", "seq": "0", "status": "3",
                       "text": "héllo"},
            "pcm": {"seq": "0", "status": "2", "audio": b64(b"\x01\x02")},
        },
    }


def test_text_output_that_is_not_utf8_comes_back_as_base64():
    body = orjson.loads(protocol.success("s", [Data("r", b"\xff\xfe")], {}))
    assert body["payload"]["r"]["encoding"] == "base64"
    assert base64.b64decode(body["payload"]["r"]["text"]) == b"\xff\xfe"


def test_render_failure():
    assert orjson.loads(protocol.failure(10001, "bad", "s")) == {
        "header": {"code": 10001, "message": "bad", "sid": "s"}}


def test_enums_declared_by_the_schema_are_enforced():
    doc = request()
    doc["parameter"]["svc"]["lang"] = "fr"
    enums = {"lang": frozenset({"en", "zh"}), "rate": frozenset({"16000", "8000"})}
    with pytest.raises(AigesError) as info:
        protocol.parse(doc, "svc", [], enums=enums)
    assert (info.value.code, info.value.http_status) == (errors.INVALID_PARAM, 400)
    assert info.value.message == "parameter lang = 'fr' is not allowed: one of en, zh"
    doc["parameter"]["svc"]["lang"] = "zh"
    assert protocol.parse(doc, "svc", [], enums=enums).params["rate"] == "16000"
    del doc["parameter"]["svc"]["lang"]  # absent: the engine's default
    protocol.parse(doc, "svc", [], enums=enums)


def test_sids_are_uuid4_unique_and_fresh_in_a_forked_child():
    import os
    import uuid

    from aiges.protocol import new_sid

    sids = [new_sid() for _ in range(1000)]  # several batches
    assert len(set(sids)) == len(sids)
    for sid in sids:
        value = uuid.UUID(sid)
        assert value.hex == sid and value.version == 4 and value.variant == uuid.RFC_4122
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the batch it inherited is not reused
        os.write(write, new_sid().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    assert child != new_sid() and uuid.UUID(child).version == 4
