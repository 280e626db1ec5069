"""GET /openapi.json: an OpenAPI 3.0 document of every route the app has.

Built once at start-up, once the engine is up, from the route table
(aiges.service.routes, which the router is built from too, so it never names a
route the app lacks) and the engine's schema ([schema] in aiges.toml, else a
Python wrapper's fields, else a generic one); served as cached bytes.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import orjson
from aiohttp import web

import aiges
from aiges import schema as engine_schema
from aiges.config import Config
from aiges.engine import Engine
from aiges.server.openapi_ops import Parts
from aiges.server.responses import json_body
from aiges.server.state import STATE
from aiges.service import routes as route_table

log = logging.getLogger(__name__)

VERSION = "3.0.3"
PATH = "/openapi.json"
# Not routes of their own: the CORS preflight and the 404 answer for everything else.
CATCH_ALL = ("/{tail}",)


@dataclass
class Cache:
    document: bytes = b""


CACHE = web.AppKey("openapi", Cache)


def setup(app: web.Application) -> None:
    """The document's cache, filled on start-up."""
    app[CACHE] = Cache()
    app.on_startup.append(_build_on_startup)


async def serve(request: web.Request) -> web.Response:
    return json_body(request.app[CACHE].document)


async def _build_on_startup(app: web.Application) -> None:
    service = app[STATE]
    routes = [(route.method, route.path)  # aliases: the same operations, documented once
              for route in route_table.table(service.config.service) if not route.alias]
    app[CACHE].document = orjson.dumps(document(service.config, service.engine, routes,
                                                tuple(service.aliases)))


def routes_of(app: web.Application) -> list[tuple[str, str]]:
    """(METHOD, path template) of every route, less HEAD twins and the catch-alls."""
    found = []
    for route in app.router.routes():
        canonical = route.resource.canonical if route.resource is not None else ""
        if route.method in ("HEAD", "*") or canonical in CATCH_ALL:
            continue
        if (route.method, canonical) not in found:
            found.append((route.method, canonical))
    return found


def engine_schema_of(config: Config, engine: Engine) -> engine_schema.EngineSchema | None:
    """[schema] from aiges.toml wins; else a Python wrapper's declarations; else None."""
    if config.schema is not None:
        return config.schema
    wrapper = getattr(engine, "wrapper", None)
    if wrapper is None:
        return None
    try:
        return engine_schema.from_wrapper(wrapper)
    except Exception:  # noqa: BLE001 (odd declarations in user code must not stop serving)
        log.warning("cannot read the wrapper's field declarations: generic schema",
                    exc_info=True)
        return None


def document(config: Config, engine: Engine, routes: list[tuple[str, str]],
             aliases: tuple[str, ...] = ()) -> dict:
    """The OpenAPI document for ``routes`` (pairs from ``routes_of``); ``aliases``: where
    the /v1/{service} routes are served too."""
    declared = engine_schema_of(config, engine)
    parts = Parts(config.service, declared, engine.modes)
    known = {(route.method, route.path): route for route in route_table.table(config.service)}
    paths: dict[str, dict] = {}
    for method, path in routes:
        route = known.get((method, path))
        operation = parts.operation(route, _names(path)) if route is not None else None
        if operation is None:
            log.warning("route missing from the OpenAPI document's table",
                        extra={"method": method, "path": path})
            operation = parts.undescribed(method, path, _names(path))
        paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": VERSION,
        "info": {"title": f"aiges: {config.service}", "version": aiges.__version__,
                 "description": _description(config, engine, declared) + "".join(
                     f"\n\nEvery /v1/{config.service} route is also served under {alias} "
                     "(the route the engine declares)." for alias in aliases)},
        "servers": [{"url": "/"}],
        "tags": parts.tags(),
        "paths": paths,
        "components": parts.components(),
    }


def _names(path: str) -> list[str]:
    return re.findall(r"\{([^}:]*)", path)


def _description(config: Config, engine: Engine, declared) -> str:
    modes = engine.modes
    kinds = [name for name, on in (("one-shot (sync)", modes.once_sync),
                                   ("one-shot (async)", modes.once_async),
                                   ("sessions", modes.session)) if on]
    try:
        version = engine.version()
    except Exception:  # noqa: BLE001 (a description must not stop start-up)
        version = ""
    source = {"config": "the [schema] section of aiges.toml",
              "wrapper": "the wrapper's requestCls/responseCls fields"}
    lines = [
        f"Engine `{engine.path}`" + (f", version `{version}`" if version else "") + ".",
        f"Modes: {', '.join(kinds) or 'none'}.",
        f"Inputs, params and outputs from {source[declared.source]}." if declared else
        "The engine declares no schema: any payload key is accepted (see [schema] in aiges.toml).",
        "Data values are standard base64 in requests; text outputs come back as plain strings.",
    ]
    if declared and declared.description:
        lines.insert(0, declared.description)
    return "\n\n".join(lines)
