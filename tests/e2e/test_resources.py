"""Personalization resources (SPEC 5) against the real aiges-load: POST/GET/DELETE
/v1/{service}/resources with the hotwords engine, C and Python."""
from __future__ import annotations

import asyncio
import base64
import json

import pytest

from tests.helpers import read_counters

pytestmark = pytest.mark.e2e

BASE = "/v1/svcName"
TOKEN_HEADER = "X-Aiges-Resource-Token"
ADMIN_HEADER = "X-Aiges-Admin-Token"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def request(text: str, res_id=None) -> dict:
    header = {"appid": "test"} if res_id is None else {"appid": "test", "res_id": res_id}
    return {"header": header, "payload": {"input": {"encoding": "utf8", "status": 3,
                                                    "text": b64(text)}}}


def resource(words: str, res_id=None) -> dict:
    doc = request(words, res_id)
    doc["payload"] = {"words": {"encoding": "utf8", "text": b64(words)}}
    return doc


async def call(http, service, method: str, path: str, doc=None, headers=None):
    data = doc if doc is None or isinstance(doc, (bytes, str)) else json.dumps(doc)
    async with http.request(method, service.url + path, data=data, headers=headers) as resp:
        return resp.status, await resp.json()


async def mark(http, service, text: str, res_id=None):
    """The engine's answer for text: (HTTP status, result text or the error header)."""
    status, doc = await call(http, service, "POST", BASE, request(text, res_id))
    if status == 200:
        return status, doc["payload"]["result"]["text"]
    return status, doc["header"]


async def load(http, service, words: str, res_id=None):
    return await call(http, service, "POST", BASE + "/resources", resource(words, res_id))


async def unload(http, service, res_id, token=None, admin=None):
    """DELETE with the load's res_token (X-Aiges-Resource-Token) and/or the operator's
    admin token (X-Aiges-Admin-Token); None sends no such header."""
    headers = {}
    if token is not None:
        headers[TOKEN_HEADER] = token
    if admin is not None:
        headers[ADMIN_HEADER] = admin
    return await call(http, service, "DELETE", f"{BASE}/resources/{res_id}", headers=headers)


async def loaded(http, service) -> list[int]:
    status, doc = await call(http, service, "GET", BASE + "/resources")
    assert status == 200 and doc["header"]["code"] == 0
    return doc["res_ids"]


@pytest.fixture(params=["c", "py"])
def hotwords_engine(request, native_dir, py_examples) -> str:
    if request.param == "c":
        return str(native_dir / "libhotwords.so")
    return str(py_examples / "hotwords" / "wrapper.py")


@pytest.fixture
def hotwords(start, hotwords_engine, tmp_path, counters_file):
    config = tmp_path / "aiges.toml"
    config.write_text(f'[wrapper]\ncounters_file = "{counters_file}"\n')
    return start(hotwords_engine, "-c", str(config))


def res_counts(counters_file) -> tuple[int, int]:
    counts = read_counters(counters_file)
    return counts["loadres"], counts["unloadres"]


async def test_a_loaded_list_marks_the_requests_that_name_it(http, hotwords, counters_file):
    assert await mark(http, hotwords, "turn on the lamp") == (200, "turn on the lamp")

    status, doc = await load(http, hotwords, "lamp\nKitchen, light")
    assert status == 200
    assert doc["header"]["code"] == 0 and doc["header"]["message"] == "success"
    assert doc["header"]["sid"] and doc["res_id"] == 1
    token = doc["res_token"]
    assert await loaded(http, hotwords) == [1]

    assert await mark(http, hotwords, "Turn on the LAMP in the kitchen.", 1) == \
        (200, "Turn on the [LAMP] in the [kitchen].")
    assert await mark(http, hotwords, "turn on the lamp", "1") == (200, "turn on the [lamp]")
    assert await mark(http, hotwords, "turn on the lamp") == (200, "turn on the lamp")

    status, doc = await unload(http, hotwords, 1, token)
    assert status == 200
    assert doc["header"]["code"] == 0 and doc["header"]["sid"] and doc["res_id"] == 1
    # The loader passes res_id through (engines may hold resources of their own):
    # the engine itself refuses an id it does not hold.
    status, header = await mark(http, hotwords, "turn on the lamp", 1)
    assert (status, header["code"]) == (500, 10909)
    assert header["message"] == "hotwords: resource 1 is not loaded;code=40003"
    assert await loaded(http, hotwords) == []
    assert await mark(http, hotwords, "turn on the lamp") == (200, "turn on the lamp")
    assert res_counts(counters_file) == (1, 1)
    assert hotwords.terminate() == 0
    assert read_counters(counters_file)["fini"] == 1 and res_counts(counters_file) == (1, 1)


async def test_chosen_ids_conflicts_and_unknown_ids(http, hotwords, counters_file):
    tokens = {}
    for words, wanted in (("lamp", 42), ("fan", "43")):
        doc = (await load(http, hotwords, words, wanted))[1]
        tokens[doc["res_id"]] = doc["res_token"]
    assert sorted(tokens) == [42, 43]
    status, doc = await load(http, hotwords, "other", 42)
    assert (status, doc["header"]["code"]) == (409, 10107)
    assert doc["header"]["message"] == "resource 42 is already loaded"
    assert await mark(http, hotwords, "lamp fan other", 42) == (200, "[lamp] fan other")
    assert await mark(http, hotwords, "lamp fan other", 43) == (200, "lamp [fan] other")
    # Assigned ids start at 1, skip ids in use, and are not handed out again soon.
    doc = (await load(http, hotwords, "x"))[1]
    assert doc["res_id"] == 1
    assert (await unload(http, hotwords, 1, doc["res_token"]))[0] == 200
    doc = (await load(http, hotwords, "x"))[1]
    assert doc["res_id"] == 2
    tokens[2] = doc["res_token"]
    assert await loaded(http, hotwords) == [2, 42, 43]

    # An id not loaded is 404 with or without a token: the ids are no secret (GET
    # lists them), only the tokens are.
    for token in (None, "guess", tokens[42]):
        status, doc = await unload(http, hotwords, 7, token)
        assert (status, doc["header"]["code"]) == (404, 10107)
        assert doc["header"]["message"] == "resource 7 is not loaded"
    for res_id in (2, 42, 43):
        assert (await unload(http, hotwords, res_id, tokens[res_id]))[0] == 200
    assert (await unload(http, hotwords, 42, tokens[42]))[0] == 404
    assert await mark(http, hotwords, "turn on the lamp") == (200, "turn on the lamp")
    assert res_counts(counters_file) == (4, 4)


async def test_bad_ids_are_refused(http, hotwords):
    for res_id in ("abc", 0, -1, 2**32, "1,2", True, 1.5, 5.0, [1]):
        status, doc = await load(http, hotwords, "lamp", res_id)
        assert (status, doc["header"]["code"]) == (400, 10107), res_id
        assert "res_id must be one number from 1 to 4294967295" in doc["header"]["message"]
    for path in ("abc", "0", "-3", str(2**32)):
        status, doc = await unload(http, hotwords, path)
        assert (status, doc["header"]["code"]) == (400, 10107), path
    assert await loaded(http, hotwords) == []
    assert (await load(http, hotwords, "lamp", " 5 "))[1]["res_id"] == 5


@pytest.mark.parametrize("doc, status, code", [
    (b"{not json", 400, 10000),
    ({"payload": {"words": {"text": "%%%"}}}, 400, 10001),
    ({"payload": {}}, 400, 10009),
    ({"payload": {"words": {"encoding": "utf8"}}}, 400, 10009),
    ({"header": "x", "payload": {"words": {"text": b64("lamp")}}}, 400, 10009),
    # The engine's own refusal: a list without a single word.
    ({"payload": {"words": {"text": b64(" ,\n,")}}}, 500, 10903),
])
async def test_bad_bodies_load_nothing(http, hotwords, counters_file, doc, status, code):
    got, out = await call(http, hotwords, "POST", BASE + "/resources", doc)
    assert (got, out["header"]["code"]) == (status, code)
    assert out["header"]["message"] and out["header"]["sid"]
    if code == 10903:
        assert out["header"]["message"].startswith("hotwords: resource 1 holds no words")
    assert await loaded(http, hotwords) == []
    status, out = await load(http, hotwords, "lamp")
    assert status == 200
    assert await mark(http, hotwords, "a lamp", out["res_id"]) == (200, "a [lamp]")


async def test_every_node_of_the_resource_counts(http, hotwords):
    doc = {"payload": {"a": {"text": b64("lamp")}, "b": {"text": b64("fan, Heater")}}}
    status, out = await call(http, hotwords, "POST", BASE + "/resources", doc)
    assert status == 200
    assert await mark(http, hotwords, "lamp fan heater", out["res_id"]) == \
        (200, "[lamp] [fan] [heater]")


async def test_several_ids_in_one_request(http, hotwords, hotwords_engine):
    await load(http, hotwords, "lamp", 1)
    await load(http, hotwords, "fan", 2)
    got = await mark(http, hotwords, "lamp and fan", "1,2")
    if hotwords_engine.endswith(".so"):
        assert got == (200, "[lamp] and [fan]")   # C engines get every id as psrIds
    else:
        assert got == (200, "[lamp] and fan")     # a wrapper.py gets the first as persId


async def test_concurrent_loads_get_distinct_ids(http, hotwords, counters_file):
    answers = await asyncio.gather(*(load(http, hotwords, f"w{i}") for i in range(20)))
    tokens = {doc["res_id"]: doc["res_token"] for status, doc in answers if status == 200}
    ids = sorted(tokens)
    assert ids == list(range(1, 21))
    assert len(set(tokens.values())) == 20
    answers = await asyncio.gather(*(unload(http, hotwords, i, tokens[i]) for i in ids))
    assert [status for status, _ in answers] == [200] * 20
    assert await loaded(http, hotwords) == []
    assert res_counts(counters_file) == (20, 20)


async def test_only_the_loads_token_unloads(http, hotwords, counters_file):
    status, doc = await load(http, hotwords, "lamp")
    assert status == 200 and doc["res_id"] == 1
    token = doc["res_token"]
    assert isinstance(token, str) and len(token) >= 20
    other = (await load(http, hotwords, "fan"))[1]
    assert other["res_id"] == 2 and other["res_token"] != token
    status, listing = await call(http, hotwords, "GET", BASE + "/resources")
    assert listing == {"header": {"code": 0, "message": "success"}, "res_ids": [1, 2]}

    # No token, a wrong one, another resource's, the admin header with no adminToken set.
    for given, admin in ((None, None), ("", None), ("wrong", None), (token + "x", None),
                         (other["res_token"], None), (None, ""), (None, token)):
        status, doc = await unload(http, hotwords, 1, given, admin)
        assert (status, doc["header"]["code"]) == (403, 10120), (given, admin)
        assert "X-Aiges-Resource-Token" in doc["header"]["message"]
        assert "res_token" in doc["header"]["message"] and doc["header"]["sid"]
        assert token not in doc["header"]["message"]
    assert await loaded(http, hotwords) == [1, 2]
    assert await mark(http, hotwords, "a lamp", 1) == (200, "a [lamp]")
    assert res_counts(counters_file) == (2, 0)

    status, doc = await unload(http, hotwords, 1, token)
    assert (status, doc["header"]["code"], doc["res_id"]) == (200, 0, 1)
    assert "res_token" not in doc
    assert await loaded(http, hotwords) == [2]
    assert (await unload(http, hotwords, 1, token))[0] == 404
    assert res_counts(counters_file) == (2, 1)


@pytest.fixture
def hotwords_admin(start, hotwords_engine, tmp_path, counters_file):
    config = tmp_path / "aiges.toml"
    config.write_text(f'[aiges]\nadminToken = "op-secret"\nadminReload = true\n'
                      f'[wrapper]\ncounters_file = "{counters_file}"\n')
    return start(hotwords_engine, "-c", str(config))


async def test_the_admin_token_unloads_any_resource(http, hotwords_admin, counters_file):
    token = (await load(http, hotwords_admin, "lamp"))[1]["res_token"]
    await load(http, hotwords_admin, "fan")
    for admin in ("", "op-secre", "op-secretx", "OP-SECRET", token):
        status, doc = await unload(http, hotwords_admin, 2, admin=admin)
        assert (status, doc["header"]["code"]) == (403, 10120), admin
        assert "X-Aiges-Admin-Token" in doc["header"]["message"]
    assert await loaded(http, hotwords_admin) == [1, 2]

    status, doc = await unload(http, hotwords_admin, 2, admin="op-secret")
    assert (status, doc["header"]["code"], doc["res_id"]) == (200, 0, 2)
    # A wrong resource token does not spoil a right admin token, nor the other way round.
    assert (await unload(http, hotwords_admin, 1, "wrong", "op-secret"))[0] == 200
    await load(http, hotwords_admin, "heater", 5)
    token = (await load(http, hotwords_admin, "x", 6))[1]["res_token"]
    assert (await unload(http, hotwords_admin, 6, token, "wrong"))[0] == 200
    assert (await unload(http, hotwords_admin, 7, admin="op-secret"))[0] == 404
    assert await loaded(http, hotwords_admin) == [5]
    assert res_counts(counters_file) == (4, 3)


@pytest.fixture(params=["libupper.so", "echo/wrapper.py"])
def no_loadres(request, start, native_dir, py_examples):
    if request.param.endswith(".so"):
        return start(str(native_dir / request.param))
    return start(str(py_examples / request.param))


async def test_engine_without_loadres_is_a_clear_501(http, no_loadres):
    status, doc = await load(http, no_loadres, "lamp")
    assert (status, doc["header"]["code"]) == (501, 10003)
    assert doc["header"]["message"] == \
        "the engine does not implement wrapperLoadRes: it cannot load personalization resources"
    assert await loaded(http, no_loadres) == []
    assert (await unload(http, no_loadres, 1))[0] == 404
    status, doc = await call(http, no_loadres, "POST", BASE, request("still serving"))
    assert status == 200


def raw_request(service, lines: list[bytes]) -> bytes:
    """One request written byte for byte (headers an HTTP client would refuse to send)."""
    import socket
    with socket.create_connection(("127.0.0.1", service.port), timeout=5) as sock:
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n")
        return sock.recv(65536)


async def test_secrets_that_are_not_utf8_are_wrong_not_a_crash(http, hotwords_admin):
    await load(http, hotwords_admin, "lamp")
    for header in (TOKEN_HEADER, ADMIN_HEADER):
        answer = raw_request(hotwords_admin, [
            b"DELETE " + BASE.encode() + b"/resources/1 HTTP/1.1", b"Host: x",
            header.encode() + b": \xff\xfe op-secret", b"Connection: close"])
        assert answer.startswith(b"HTTP/1.1 403"), answer
    answer = raw_request(hotwords_admin, [
        b"POST /admin/reload HTTP/1.1", b"Host: x", b"Content-Type: application/json",
        ADMIN_HEADER.encode() + b": \xff op-secret", b"Content-Length: 2", b"Connection: close",
        b"", b"{}"])
    assert answer.startswith(b"HTTP/1.1 403"), answer
    assert await loaded(http, hotwords_admin) == [1]
