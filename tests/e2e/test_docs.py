"""/openapi.json and the Swagger UI of the real aiges-load (SPEC 5): the document is valid,
names exactly the routes the app has, and its example request is one the engine answers."""
from __future__ import annotations

import base64
import json
import re

import pytest
from openapi_spec_validator import validate

from aiges import config
from aiges.engine import Modes
from aiges.server import create_app, openapi

pytestmark = pytest.mark.e2e

SCHEMA = """
[schema]
description = "The echo engine: every input comes back."
[schema.inputs.input]
type = "text"
encoding = "utf8"
description = "text to echo"
example = "hello from the docs"
[schema.params.lang]
type = "string"
enum = ["en", "zh"]
default = "en"
[schema.outputs.input]
type = "text"
encoding = "utf8"
format = "plain"
[schema.outputs.params]
type = "text"
description = "the params the engine received, as JSON"
"""


class _Stub:
    path = "stub"
    modes = Modes(once_sync=True, once_async=False, session=True)
    routes: list[str] = []

    def version(self):
        return ""


@pytest.fixture
def docs_config(tmp_path):
    path = tmp_path / "aiges.toml"
    path.write_text(SCHEMA)
    return path


@pytest.fixture
def echo_docs(start, echo_so, docs_config):
    return start(echo_so, "-c", str(docs_config))


async def get(http, url):
    async with http.get(url) as resp:
        return resp.status, resp.headers, await resp.read()


async def test_served_document_is_valid_and_lists_the_apps_routes(http, echo_docs, docs_config):
    status, headers, body = await get(http, echo_docs.url + "/openapi.json")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    doc = json.loads(body)
    validate(doc)
    served = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    app = create_app(config.load(docs_config), _Stub())
    assert served == set(openapi.routes_of(app))
    assert {("POST", "/v1/svcName"), ("GET", "/v1/svcName"), ("GET", "/health"),
            ("GET", "/openapi.json"), ("GET", "/docs")} <= served
    lang = doc["components"]["schemas"]["Parameters"]["properties"]["lang"]
    assert lang["enum"] == ["en", "zh"]
    assert "libecho.so" in doc["info"]["description"]


async def test_every_documented_route_is_answered_by_its_own_handler(http, echo_docs):
    """No documented path falls through to the catch-all 'no route' answer."""
    async with http.get(echo_docs.url + "/openapi.json") as resp:
        doc = await resp.json()
    for path, item in doc["paths"].items():
        url = echo_docs.url + re.sub(r"\{[^}]*\}", "123", path)
        for method in item:
            async with http.request(method.upper(), url, data=b"{}") as resp:
                text = await resp.text()
            assert "no route" not in text, (method, path, resp.status, text)


async def test_the_example_request_gets_an_echo(http, echo_docs):
    async with http.get(echo_docs.url + "/openapi.json") as resp:
        doc = await resp.json()
    media = doc["paths"]["/v1/svcName"]["post"]["requestBody"]["content"]["application/json"]
    example = media["example"]
    assert base64.b64decode(example["payload"]["input"]["text"]) == b"hello from the docs"
    async with http.post(echo_docs.url + "/v1/svcName", json=example) as resp:
        assert resp.status == 200
        out = await resp.json()
    assert out["payload"]["input"]["text"] == "hello from the docs"
    assert out["payload"]["input"]["format"] == "plain"
    assert json.loads(out["payload"]["params"]["text"])["lang"] == "en"


async def test_a_value_outside_a_declared_enum_is_refused(http, echo_docs):
    doc = {"parameter": {"svcName": {"lang": "fr"}},
           "payload": {"input": {"text": base64.b64encode(b"hi").decode()}}}
    for path in ("/v1/svcName", "/v1/svcName/sessions"):
        async with http.post(echo_docs.url + path, json=doc) as resp:
            answer = await resp.json()
            assert (resp.status, answer["header"]["code"]) == (400, 10107), path
            assert "one of en, zh" in answer["header"]["message"]
    async with http.ws_connect(echo_docs.url + "/v1/svcName") as ws:
        await ws.send_json(doc)
        assert (await ws.receive_json())["header"]["code"] == 10107


async def test_an_unknown_route_points_at_the_docs(http, echo_docs):
    async with http.get(echo_docs.url + "/") as resp:
        assert resp.status == 404
        assert "described at /docs" in (await resp.json())["header"]["message"]


async def test_swagger_ui_page_and_assets(http, echo_docs):
    status, headers, body = await get(http, echo_docs.url + "/docs")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    page = body.decode()
    assert 'url: "/openapi.json"' in page and "validatorUrl: null" in page
    assets = re.findall(r'(?:src|href)="(/docs/static/[^"]+)"', page)
    assert {"/docs/static/swagger-ui-bundle.js", "/docs/static/swagger-ui.css"} <= set(assets)
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page)  # nothing from elsewhere
    types = {".js": "application/javascript", ".css": "text/css", ".png": "image/png"}
    for asset in assets:
        status, headers, body = await get(http, echo_docs.url + asset)
        assert status == 200 and len(body) > 100, asset
        assert headers["Content-Type"].split(";")[0] == types[asset[asset.rindex("."):]], asset
    status, _, _ = await get(http, echo_docs.url + "/docs/static/index.html")
    assert status == 404
    status, _, _ = await get(http, echo_docs.url + "/docs/static/..%2Fswagger-ui.js")
    assert status == 404


async def test_python_wrapper_document_is_valid(http, start, py_examples):
    service = start(str(py_examples / "echo" / "wrapper.py"), "-s", "echo")
    async with http.get(service.url + "/openapi.json") as resp:
        doc = await resp.json()
    validate(doc)
    example = doc["paths"]["/v1/echo"]["post"]["requestBody"]["content"]["application/json"][
        "example"]
    async with http.post(service.url + "/v1/echo", json=example) as resp:
        assert resp.status == 200
        out = await resp.json()
    assert out["payload"]["input"]["text"] == "hello from the python echo"


async def test_bad_schema_stops_start_up(start, echo_so, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[schema.params.lang]\ntype = 'text'\n")
    service = start(echo_so, "-c", str(path), ready=False)
    assert service.wait_exit() == 2
    assert "[schema.params.lang] type must be one of string" in service.log
