"""The one table of routes. aiohttp's router (aiges/server/app.py), the fast path's
request line (aiges/server/fast.py), the OpenAPI document (aiges/server/openapi.py)
and a Ray replica's dispatch (aiges/ray/replica.py) are all derived from it, so no
transport can serve, or document, a route the others do not know.

A Route's ``name`` is its operationId: transports map names to their handlers, the
OpenAPI table (aiges/server/openapi_ops.py) names to descriptions. A new protocol
adds a section: a function from the service's name to its routes, listed in
SECTIONS.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

# The CORS headers every HTTP answer carries (upstream clients rely on them), whichever
# HTTP transport sends it.
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Authorization, X-Requested-With, "
                                    "X-Aiges-Resource-Token",
    "Access-Control-Max-Age": "86400",
}
# What a route of the engine's own (an alias) may look like: a plain path.
PLAIN_PATH = re.compile(r"(/[A-Za-z0-9._-]+)+")


@dataclass(frozen=True)
class Route:
    method: str
    path: str        # a template: "/v1/svc/sessions/{sid}"
    name: str        # the operationId; what transports dispatch on
    tag: str = "operations"  # the OpenAPI tag
    summary: str = ""        # for OpenAPI when its table has no entry for ``name``
    alias: bool = False      # the same operation under an engine-declared route
    pattern: re.Pattern = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(self.path))
        object.__setattr__(self, "pattern", re.compile(regex))

    def matches(self, path: str) -> bool:
        return self.pattern.fullmatch(path) is not None


def service_base(service: str) -> str:
    return f"/v1/{service}"


def service_routes(base: str, alias: bool = False) -> list[Route]:
    """One-shot requests, WebSocket and HTTP sessions: served under ``base`` and under
    every alias the engine declares."""
    return [
        Route("POST", base, "once", "once", "One-shot request", alias),
        Route("GET", base, "websocket", "sessions", "Streaming session (WebSocket)", alias),
        Route("POST", f"{base}/sessions", "createSession", "sessions", "Create a session",
              alias),
        Route("POST", f"{base}/sessions/{{sid}}", "writeSession", "sessions", "Write a frame",
              alias),
        Route("GET", f"{base}/sessions/{{sid}}", "pollSession", "sessions",
              "Poll for results", alias),
        Route("DELETE", f"{base}/sessions/{{sid}}", "deleteSession", "sessions",
              "End a session", alias),
    ]


def resource_routes(base: str) -> list[Route]:
    return [
        Route("POST", f"{base}/resources", "loadResource", "resources", "Load a resource"),
        Route("GET", f"{base}/resources", "listResources", "resources", "Loaded resources"),
        Route("DELETE", f"{base}/resources/{{res_id}}", "unloadResource", "resources",
              "Unload a resource"),
    ]


def native_routes(service: str) -> list[Route]:
    """The native protocol's routes (SPEC 3-5) under /v1/{service}."""
    base = service_base(service)
    return service_routes(base) + resource_routes(base)


def operation_routes(service: str) -> list[Route]:
    """Health, readiness, metrics, admin and the docs (after every other route: the
    docs describe them)."""
    return [
        Route("GET", "/health", "health", summary="Liveness"),
        Route("GET", "/ping", "ping", summary="WebSocket echo"),
        Route("GET", "/ready", "ready", summary="Readiness"),
        Route("GET", "/metrics", "metrics", summary="Prometheus metrics"),
        Route("POST", "/admin/reload", "reloadEngine", summary="Hot reload"),
        Route("GET", "/openapi.json", "openapi", summary="This OpenAPI document"),
        Route("GET", "/docs", "docs", summary="Swagger UI"),
        Route("GET", "/docs/static/{name}", "docsAsset", summary="Swagger UI assets"),
    ]


def oip_routes(service: str) -> list[Route]:
    """The Open Inference Protocol (KServe v2; aiges/oip): server routes, then the model
    routes, also under /versions/{version}. The model is matched by the handler, which
    answers another model's name with the protocol's own 404."""
    found = [
        Route("GET", "/v2", "oipServerMetadata", "oip", "Server metadata"),
        Route("GET", "/v2/health/live", "oipLive", "oip", "Server liveness"),
        Route("GET", "/v2/health/ready", "oipServerReady", "oip", "Server readiness"),
    ]
    for base, suffix in (("/v2/models/{model}", ""),
                         ("/v2/models/{model}/versions/{version}", "Version")):
        found += [
            Route("GET", base, f"oipModelMetadata{suffix}", "oip", "Model metadata"),
            Route("GET", f"{base}/ready", f"oipModelReady{suffix}", "oip", "Model readiness"),
            Route("GET", f"{base}/config", f"oipModelConfig{suffix}", "oip",
                  "Model configuration (Triton's)"),
            Route("POST", f"{base}/infer", f"oipInfer{suffix}", "oip", "Inference"),
        ]
    return found


# Each: service name -> its routes, in the order routers register them. A protocol of
# its own (the Open Inference Protocol's /v2/...) is one more section.
SECTIONS: tuple[Callable[[str], list[Route]], ...] = (native_routes, oip_routes,
                                                      operation_routes)


def table(service: str, aliases: Iterable[str] = ()) -> list[Route]:
    """Every route of a service, in registration order: the sections, then the service
    routes again under each alias (after every fixed route: those win a clash)."""
    routes = [route for section in SECTIONS for route in section(service)]
    for alias in aliases:
        routes += service_routes(alias, alias=True)
    return routes


def named(routes: Iterable[Route], name: str) -> Route:
    """The first route called ``name`` (the base one, not an alias)."""
    return next(route for route in routes if route.name == name)


def path_of(service: str, name: str) -> str:
    return named(table(service), name).path


def aliases(service: str, declared: Iterable[str]) -> tuple[list[str], list[str]]:
    """The routes an engine declares for itself (a Python wrapper's, upstream's
    ``/{version}/private/{serviceId}``) that can serve besides /v1/{service}: plain
    paths that take no route of ours. Returns (served, refused)."""
    base = service_base(service)
    ours = {route.path for route in table(service)}
    served: list[str] = []
    refused: list[str] = []
    for route in declared:
        path = "/" + route.strip("/")
        if path in ours or path in served or path.startswith("/docs/") or \
                not PLAIN_PATH.fullmatch(path) or path.startswith(f"{base}/"):
            refused.append(route)
            continue
        served.append(path)
    return served, refused
