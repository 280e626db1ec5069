"""Upstream's routes and parameters: a wrapper is also served at the route it declares
(upstream SDK: ``/{version}/private/{serviceId}``), and every section under
``parameter`` is read (clients name theirs after the serviceId)."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.e2e.test_once import body

pytestmark = pytest.mark.e2e

WRAPPER = '''\
from aiges.core.types import DataOnce, DataText
from aiges.dto import Response, ResponseData
from aiges.sdk import WrapperBase


class Wrapper(WrapperBase):
    serviceId = "mnist"
    version = "v1"

    def wrapperInit(self, config) -> int:
        return 0

    def wrapperFini(self) -> int:
        return 0

    def wrapperError(self, ret: int) -> str:
        return "failed"

    def wrapperOnceExec(self, params, reqData, usrTag="", persId=0) -> Response:
        out = ResponseData(key="params", type=DataText, status=DataOnce)
        out.setData(repr(sorted((k, v) for k, v in params.items() if k != "sid")).encode())
        return Response(list=[out])
'''


def post(service, path: str, doc: dict) -> tuple[int, dict]:
    req = urllib.request.Request(service.url + path, data=json.dumps(doc).encode())
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


@pytest.fixture
def mnist(start, tmp_path):
    path = tmp_path / "wrapper.py"
    path.write_text(WRAPPER)
    return start(str(path))


def text(doc: dict) -> str:
    return doc["payload"]["params"]["text"]


def test_the_wrappers_own_route_serves_with_its_own_parameter_section(mnist):
    doc = body()
    doc["parameter"] = {"mnist": {"lang": "en", "beam": 4}}
    for path in ("/v1/private/mnist", "/v1/svcName"):
        status, answer = post(mnist, path, doc)
        assert (status, text(answer)) == (200, "[('beam', '4'), ('lang', 'en')]"), path
    spec = json.load(urllib.request.urlopen(mnist.url + "/openapi.json", timeout=5))
    assert "/v1/private/mnist" in spec["info"]["description"]
    assert not [p for p in spec["paths"] if p.startswith("/v1/private")]


def test_a_parameter_section_that_is_not_an_object_is_a_400(mnist):
    doc = body()
    doc["parameter"] = {"lang": "en"}
    status, answer = post(mnist, "/v1/private/mnist", doc)
    assert (status, answer["header"]["code"]) == (400, 10107)
    assert "parameter.lang must be an object" in answer["header"]["message"]
