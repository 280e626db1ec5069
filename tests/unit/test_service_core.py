"""The service core (aiges.service): transport-free, the one route table every
transport derives its routes from, the lifecycle's phases and readiness."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aiges.config import Config
from aiges.errors import AigesError
from aiges.python import load as load_python
from aiges.server import create_app, openapi
from aiges.server.fast import FastHTTP
from aiges.service import NATIVE, Answer, Phase, Service, once, readiness, routes
from aiges.service.routes import Route

ECHO_PY = Path(__file__).resolve().parents[2] / "python_examples" / "echo" / "wrapper.py"
TRANSPORTS = ("aiohttp", "grpc", "starlette", "fastapi", "ray")


def _imported_after(code: str) -> list[str]:
    """The modules of sys.modules once ``code`` ran in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code) + textwrap.dedent("""
        import sys
        print("\\n".join(sorted(sys.modules)))
        """)], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_the_core_imports_no_transport():
    modules = _imported_after("""
        import pkgutil, importlib, aiges.service
        for info in pkgutil.walk_packages(aiges.service.__path__, "aiges.service."):
            importlib.import_module(info.name)
        """)
    assert "aiges.service.once" in modules and "aiges.service.routes" in modules
    leaked = [m for m in modules if m.split(".")[0] in TRANSPORTS]
    assert not leaked, leaked
    assert not [m for m in modules if m.startswith(("aiges.server", "aiges.cli"))]


def test_the_ray_replica_imports_neither_the_server_nor_the_cli():
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install '.[ray]'")
    modules = _imported_after("import aiges.ray.replica, aiges.ray.run")
    assert not [m for m in modules if m.startswith(("aiges.server", "aiges.cli"))]


def test_every_router_is_derived_from_the_table():
    config = Config()
    app = create_app(config, load_python(ECHO_PY))
    table = routes.table(config.service, ["/echo/1.0.0/private/echo"])  # the wrapper's
    assert openapi.routes_of(app) == [(r.method, r.path) for r in table]
    once_route = routes.named(table, "once")
    assert (once_route.method, once_route.path) == ("POST", "/v1/svcName")


async def test_the_fast_path_serves_the_tables_once_route():
    config = Config(service="asr")
    server = FastHTTP(Service.create(config, load_python(ECHO_PY)), lambda: None)
    try:
        assert server.line == b"POST /v1/asr HTTP/1.1\r\n"
    finally:
        server._sweep.cancel()


def test_a_route_template_matches_one_segment_per_parameter():
    route = Route("GET", "/v1/svc/sessions/{sid}", "pollSession")
    assert route.matches("/v1/svc/sessions/ab12")
    assert not route.matches("/v1/svc/sessions/ab/12") and not route.matches("/v1/svc")


def test_engine_routes_that_take_ours_are_not_aliases():
    served, refused = routes.aliases("svc", ["/v1/private/s1", "health", "/v1/svc/x",
                                             "/docs/y", "/a b", "/v1/private/s1"])
    assert served == ["/v1/private/s1"]
    assert refused == ["health", "/v1/svc/x", "/docs/y", "/a b", "/v1/private/s1"]


async def test_the_lifecycle_goes_from_starting_to_stopped():
    service = Service.create(Config(instances=1), load_python(ECHO_PY))
    assert service.lifecycle.phase is Phase.STARTING and not service.lifecycle.accepting
    assert readiness(service) == (503, b'{"status":"starting"}')
    refused = once.begin(service, NATIVE, b"{}", "/v1/svcName", 0.0)
    assert type(refused) is Answer and refused.status == 503
    await service.lifecycle.start()
    assert service.lifecycle.accepting and readiness(service) == (200, b'{"status":"ready"}')
    service.lifecycle.begin_drain()
    assert service.lifecycle.phase is Phase.DRAINING and not service.lifecycle.accepting
    assert readiness(service) == (503, b'{"status":"draining"}')
    assert await service.lifecycle.drain(0.5) and not await service.lifecycle.drain(0.5)
    await service.lifecycle.close()
    assert service.lifecycle.phase is Phase.STOPPED and service.clean
    assert once.begin(service, NATIVE, b"{}", "/v1/svcName", 0.0).status == 503


async def test_no_instance_carries_retry_after_and_transport_params_reach_the_engine():
    from aiges.pool import NoInstance

    answer = once.error_answer(NoInstance("busy", retry_after=3), "sid")
    assert (answer.status, answer.headers) == (429, {"Retry-After": "3"})
    assert once.error_answer(AigesError(10000, "x", 400)).headers == {}
    service = Service.create(Config(instances=1), load_python(ECHO_PY))
    await service.lifecycle.start()
    try:
        body = b'{"payload":{"input":{"status":3,"text":"aGk="}}}'
        seen = {}
        spec = type("Spy", (), {
            "content_type": "application/json",
            "parse": lambda self, svc, raw, sid: seen.setdefault("req", NATIVE.parse(svc, raw,
                                                                                    sid)),
            "success": NATIVE.success, "failure": NATIVE.failure, "headers": None})()
        answer = once.begin(service, spec, body, "/x", 0.0, params={"model": "m1"})
        if not isinstance(answer, Answer):
            answer = await answer.finish()
        assert answer.status == 200 and seen["req"].params["model"] == "m1"
    finally:
        await service.lifecycle.close()

