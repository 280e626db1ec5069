"""Property tests: protocol.loads/parse fail only with a 4xx AigesError, whatever the
input; valid payloads survive parsing; rendering never fails (SPEC 3)."""
from __future__ import annotations

import base64

import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from aiges import protocol
from aiges.engine import Data, DataType
from aiges.errors import AigesError

FAST = settings(max_examples=80, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
SERVICE = "svcName"

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**64 - 1),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12))
json_docs = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.sampled_from(["header", "parameter", "payload", SERVICE, "text", "audio",
                                     "status", "res_id", "sid", "uid", "x"]) | st.text(max_size=5),
                    inner, max_size=5)), max_leaves=20)
# Documents shaped like requests, with any value in any slot: reaches deeper than json_docs.
shaped = st.fixed_dictionaries({}, optional={
    "header": st.dictionaries(st.sampled_from(["res_id", "uid", "status"]), json_docs, max_size=3)
    | json_docs,
    "parameter": st.fixed_dictionaries({SERVICE: st.dictionaries(st.text(max_size=6), json_docs,
                                                                 max_size=3)}) | json_docs,
    "payload": st.dictionaries(st.text(max_size=6), st.dictionaries(
        st.sampled_from(["text", "audio", "image", "video", "status", "encoding"]),
        json_docs | st.text(alphabet="AQIDBA=+/%", max_size=12), max_size=4), max_size=3)
    | json_docs})


def _parse_or_4xx(doc) -> None:
    try:
        req = protocol.parse(doc, SERVICE, ["uid", "appid"], need_payload=True)
    except AigesError as exc:
        assert 400 <= exc.http_status < 500 and exc.code >= 10000 and exc.message
        return
    assert req.data and all(d.status in (0, 1, 2, 3) for d in req.data)
    assert all(isinstance(v, str) for v in req.params.values())
    assert all(0 <= i <= 0xFFFFFFFF for i in req.psr_ids)


@FAST
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_loads_of_any_bytes_is_a_dict_or_a_bad_json_error(body):
    try:
        doc = protocol.loads(body)
    except AigesError as exc:
        assert (exc.code, exc.http_status) == (10000, 400)
        return
    assert isinstance(doc, dict)
    _parse_or_4xx(doc)


@FAST
@given(json_docs | shaped)
def test_parse_of_any_json_fails_only_with_a_4xx_aiges_error(doc):
    body = orjson.dumps(doc)
    try:
        parsed = protocol.loads(body)
    except AigesError as exc:
        assert exc.code == 10000 and not isinstance(doc, dict)
        return
    _parse_or_4xx(parsed)


inputs = st.dictionaries(
    st.text(min_size=1, max_size=8),
    st.tuples(st.sampled_from(["text", "audio", "image", "video"]), st.binary(max_size=64),
              st.sampled_from([0, 1, 2, 3]),
              st.dictionaries(st.sampled_from(["encoding", "sample_rate", "seq", "x"]),
                              st.text(max_size=6) | st.integers(0, 10**6), max_size=3)),
    min_size=1, max_size=4)


@FAST
@given(inputs, st.dictionaries(st.text(min_size=1, max_size=6).filter(lambda k: k != "sid"),
                               st.text(max_size=8) | st.integers(-2**63, 2**63) | st.booleans(),
                               max_size=4))
def test_valid_payloads_survive_parsing(items, params):
    payload = {key: {name: base64.b64encode(raw).decode(), "status": status, **desc}
               for key, (name, raw, status, desc) in items.items()}
    doc = {"header": {"appid": "a"}, "parameter": {SERVICE: params}, "payload": payload}
    req = protocol.parse(protocol.loads(orjson.dumps(doc)), SERVICE, [])
    assert [d.key for d in req.data] == list(items)
    for data in req.data:
        name, raw, status, desc = items[data.key]
        assert data.data == raw and int(data.status) == status
        assert data.type == protocol.DATA_FIELDS[name]
        assert data.desc == {k: protocol.text_value(v) for k, v in desc.items()}
    assert req.params == {"sid": req.sid, **{k: protocol.text_value(v) for k, v in params.items()}}


outputs = st.lists(st.builds(
    Data, st.text(max_size=8), st.binary(max_size=64),
    st.sampled_from(list(DataType)) | st.integers(-5, 99),
    st.integers(-2**31, 2**31 - 1),
    st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=3)), max_size=4)


@FAST
@given(outputs, st.dictionaries(st.text(max_size=6), st.dictionaries(
    st.text(max_size=4), st.text(max_size=4), max_size=2), max_size=2),
       st.integers(0, 2**31), st.text(max_size=8) | st.none())
def test_rendering_never_fails_and_is_json(items, declared, seq, message):
    body = (protocol.success("sid", items, declared) if message is None else
            protocol.session_frame("sid", items, declared, {i.key: seq for i in items}))
    doc = orjson.loads(body)
    assert doc["header"]["code"] == 0
    for item in items:
        entry = doc["payload"][item.key]
        assert isinstance(entry["status"], str)
    failure = orjson.loads(protocol.failure(10009, "bad \udcff input"
                                            if message is None else message, "s"))
    assert failure["header"]["code"] == 10009


def test_text_orjson_refuses_is_made_valid_utf8():
    """Regression: a Python engine's desc with a lone surrogate or a non-str key used to
    make rendering raise TypeError (a 500 with no JSON body)."""
    items = [Data("out\udcff", b"x", DataType.TEXT, 3, {"k": "v\ud800", 7: "seven"})]
    doc = orjson.loads(protocol.success("sid", items, {}))
    assert doc["payload"]["out?"] == {"k": "v?", "7": "seven", "seq": "0",
                                           "status": "3", "text": "x"}
    assert orjson.loads(protocol.failure(10909, "engine said \udcff"))["header"]["message"] \
        == "engine said ?"


def _outcome(read, doc):
    try:
        return "data", read(doc)
    except AigesError as exc:
        return "error", (exc.code, exc.http_status, exc.message)


@FAST
@given(json_docs | shaped, st.sampled_from([None, {"uid": frozenset({"a", "1"})}]))
@example({"parameter": {SERVICE: []}, "payload": {"a": {"text": ""}}}, None)
@example({"parameter": {"x": 0, SERVICE: {}}, "payload": {"a": {"text": ""}}}, None)
@example({"parameter": [], "payload": {"a": {"text": ""}}}, None)
@example({"header": {"res_id": "x"}, "payload": {"a": {"text": ""}}}, None)
@example({"header": [], "payload": {"a": {"text": ""}}}, None)
@example({"parameter": {SERVICE: {"uid": "b"}}, "payload": {"a": {"text": ""}}},
         {"uid": frozenset({"a"})})
@example({"parameter": {SERVICE: {}}, "payload": {}}, None)
def test_a_later_session_frame_is_checked_as_parse_checks_a_frame(doc, enums):
    """frame_inputs (a session frame after the first, read for its inputs only) accepts
    and refuses exactly what parse does, with the same error, and reads the same data."""
    if not isinstance(doc, dict):
        return
    expected = _outcome(lambda d: protocol.parse(d, SERVICE, [], "-", True, enums).data, doc)
    assert _outcome(lambda d: protocol.frame_inputs(d, SERVICE, enums), doc) == expected
