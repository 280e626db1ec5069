"""The OpenAPI operations, one per route of the route table (aiges.service.routes),
keyed by the route's name (its operationId).

The builders get the route's own parameter names, so the document always uses the
names the router matches. A route of the table without a builder here is described
from its summary and tag.
"""
from __future__ import annotations

import copy

from aiges.engine import Modes
from aiges.oip import openapi as oip
from aiges.schema import EngineSchema
from aiges.service.routes import Route
from aiges.server import openapi_schemas as s
from aiges.server.openapi_schemas import errors_of, ref
from aiges.server.reload import ADMIN_TOKEN_HEADER
from aiges.server.resources import TOKEN_HEADER

JSON = "application/json"
FRAMES = """\
Streaming session over WebSocket: send `GET /v1/{service}` with `Upgrade: websocket`
(OpenAPI cannot describe the frames, so here they are):

* Every client **text frame** is a request document (schema `Request`, as for the
  one-shot POST). The first frame creates the session (its `header`/`parameter` give
  the params and `res_id`); each frame's payload `status` drives it: 0 begin,
  1 continue, 2 end (3 once = a single frame).
* The server sends a **text frame** per result (schema `SessionFrame`:
  `{"header":{"code":0,"message":"success","sid":S,"status":N},"payload":{...}}`,
  each output's `seq` counting its results from 1), also for results produced after
  the client's last frame, and closes normally (1000) after the final one (status 2
  or 3). A first frame that gives no result at once is acknowledged by a frame
  without payload (status 0), as upstream does.
* An error is sent as one frame (schema `ErrorResponse`), then the socket closes.
  A client that disconnects ends the session at once; at shutdown open sockets
  close with 1001.
"""

TAGS = [
    {"name": "once", "description": "One-shot requests (wrapperExec / wrapperExecAsync)."},
    {"name": "sessions", "description": "Streaming sessions: WebSocket, or the HTTP session "
                                        "API for clients without WebSocket."},
    {"name": "resources", "description": "Personalization resources "
                                         "(wrapperLoadRes / wrapperUnloadRes)."},
    {"name": "operations", "description": "Health, readiness, metrics and these docs."},
    oip.TAG,
]


def _json(schema: dict, description: str, example=None) -> dict:
    media: dict = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {"description": description, "content": {JSON: media}}


def _header_param(name: str, description: str) -> dict:
    return {"name": name, "in": "header", "required": False, "description": description,
            "schema": {"type": "string"}}


def _path_param(name: str, description: str) -> dict:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string"}}


class Parts:
    def __init__(self, service: str, declared: EngineSchema | None, modes: Modes):
        self.service = service
        self.declared = declared
        self.modes = modes
        self.example = s.example_request(service, declared)
        self._builders = {
            "once": self._once,
            "websocket": self._websocket,
            "createSession": self._session_create,
            "writeSession": self._session_write,
            "pollSession": self._session_poll,
            "deleteSession": self._session_delete,
            "loadResource": self._resource_load,
            "listResources": self._resource_list,
            "unloadResource": self._resource_unload,
            "health": self._health,
            "ping": self._ping,
            "reloadEngine": self._admin_reload,
            "ready": self._ready,
            "metrics": self._metrics,
            "openapi": self._openapi,
            "docs": self._docs,
            "docsAsset": self._docs_static,
            **oip.OPERATIONS,  # /v2/... (aiges.oip.openapi)
        }

    def operation(self, route: Route, names: list[str]) -> dict:
        build = self._builders.get(route.name)
        if build is not None:
            return build(*names)
        operation = {"tags": [route.tag], "operationId": route.name,
                     "summary": route.summary or f"{route.method} {route.path}",
                     "responses": {"default": {"description": "see the route's handler"}}}
        if names:
            operation["parameters"] = [_path_param(name, "") for name in names]
        return operation

    def undescribed(self, method: str, path: str, names: list[str]) -> dict:
        operation = {"tags": ["operations"], "summary": f"{method} {path}",
                     "description": "This route has no description yet.",
                     "responses": {"default": {"description": "see the route's handler"}}}
        if names:
            operation["parameters"] = [_path_param(name, "") for name in names]
        return operation

    def tags(self) -> list[dict]:
        return copy.deepcopy(TAGS)

    def components(self) -> dict:
        return {"schemas": {**s.schemas(self.service, self.declared), **oip.SCHEMAS},
                "responses": s.error_responses()}

    def _note(self, available: bool, what: str) -> str:
        return "" if available else f"\n\n**This engine has no {what} mode:** the answer is an error."

    def _request_body(self, description: str, required: bool = True) -> dict:
        return {"required": required, "description": description,
                "content": {JSON: {"schema": ref("Request"), "example": self.example}}}

    # -- once and WebSocket ----------------------------------------------------------------------
    def _once(self) -> dict:
        once = self.modes.once_sync or self.modes.once_async
        return {
            "tags": ["once"], "operationId": "once", "summary": "One-shot request",
            "description": "Runs the engine once on the payload (wrapperExec, or "
                           "wrapperExecAsync with asyncMode). The example is a request the "
                           "engine can answer: **Try it out**, then **Execute**."
                           + self._note(once, "one-shot"),
            "requestBody": self._request_body("The request document: header, "
                                              f"parameter.{self.service}, payload."),
            "responses": {"200": _json(ref("Response"), "The engine's outputs."),
                          **errors_of("BadRequest", "TooLarge", "Busy", "EngineFailure",
                                      "NotReady", "Timeout")}}

    def _websocket(self) -> dict:
        return {
            "tags": ["sessions"], "operationId": "websocket",
            "summary": "Streaming session (WebSocket upgrade)",
            "description": FRAMES.replace("{service}", self.service)
            + self._note(self.modes.session, "session"),
            "responses": {
                "101": {"description": "Switching Protocols: the WebSocket session starts; "
                                       "frames as described above."},
                "400": {"description": "Not a WebSocket upgrade request.",
                        "content": {"text/plain": {"schema": {"type": "string"}}}}}}

    # -- the HTTP session API --------------------------------------------------------------------
    def _session_create(self) -> dict:
        return {
            "tags": ["sessions"], "operationId": "createSession",
            "summary": "Create a session (HTTP session API)",
            "description": "Opens a session (wrapperCreate); the body, optional, is the first "
                           "frame. Answers the sid (header.sid) and the results so far."
                           + self._note(self.modes.session, "session"),
            "requestBody": self._request_body("The first frame (optional).", required=False),
            "responses": {"200": _json(ref("SessionAnswer"), "The session and its results."),
                          **errors_of("BadRequest", "TooLarge", "Busy", "EngineFailure",
                                      "NotReady")}}

    def _sid(self, name: str) -> dict:
        return _path_param(name, "the session id (header.sid of the create answer)")

    def _session_write(self, sid: str = "sid") -> dict:
        return {
            "tags": ["sessions"], "operationId": "writeSession", "summary": "Write a frame",
            "description": "Sends one frame to the session (payload status 1 continue, 2 end) "
                           "and answers the results available.",
            "parameters": [self._sid(sid)],
            "requestBody": self._request_body("A frame: a request document."),
            "responses": {"200": _json(ref("SessionAnswer"), "The results available now."),
                          **errors_of("BadRequest", "NotFound", "SessionTimeout", "TooLarge",
                                      "EngineFailure")}}

    def _session_poll(self, sid: str = "sid") -> dict:
        return {
            "tags": ["sessions"], "operationId": "pollSession", "summary": "Poll for results",
            "description": "Answers the results available, waiting up to wait_ms for one.",
            "parameters": [self._sid(sid), {
                "name": "wait_ms", "in": "query", "required": False,
                "description": "long-poll: how long to wait for a result, in ms",
                "schema": {"type": "integer", "minimum": 0, "maximum": 60000, "default": 0}}],
            "responses": {"200": _json(ref("SessionAnswer"), "The results available."),
                          **errors_of("BadRequest", "NotFound", "SessionTimeout",
                                      "EngineFailure")}}

    def _session_delete(self, sid: str = "sid") -> dict:
        return {
            "tags": ["sessions"], "operationId": "deleteSession", "summary": "End a session",
            "description": "Ends the session now (wrapperDestroy).",
            "parameters": [self._sid(sid)],
            "responses": {"200": _json(ref("Done"), "The session is gone."),
                          **errors_of("NotFound")}}

    # -- resources -------------------------------------------------------------------------------
    def _resource_load(self) -> dict:
        return {
            "tags": ["resources"], "operationId": "loadResource",
            "summary": "Load a personalization resource",
            "description": "Loads the payload items as one resource (wrapperLoadRes): each "
                           "item is one node, typed by its text/audio/image/video field. "
                           "header.res_id picks the id, else the service assigns one. Pass "
                           "the id in header.res_id of later requests. The answer's "
                           "res_token is the resource's secret: keep it, the unload needs "
                           "it (it is shown only here).",
            "requestBody": {"required": True, "description": "A request document whose "
                            "payload items are the resource data.",
                            "content": {JSON: {"schema": ref("Request")}}},
            "responses": {"200": _json(ref("ResourceLoaded"), "Loaded under res_id."),
                          **errors_of("BadRequest", "Conflict", "TooLarge", "EngineFailure",
                                      "Unsupported", "NotReady")}}

    def _resource_list(self) -> dict:
        return {
            "tags": ["resources"], "operationId": "listResources",
            "summary": "Resources loaded through this service",
            "description": "The ids only: never their res_tokens.",
            "responses": {"200": _json(ref("ResourceList"), "The loaded ids.")}}

    def _resource_unload(self, res_id: str = "res_id") -> dict:
        return {
            "tags": ["resources"], "operationId": "unloadResource",
            "summary": "Unload a personalization resource",
            "description": "Unloads the resource (wrapperUnloadRes). Only its owner may: "
                           f"the {TOKEN_HEADER} header must hold the res_token its load "
                           f"answered, or {ADMIN_TOKEN_HEADER} the operator's [aiges] "
                           "adminToken (when one is set). Else 403 (10120) and the resource "
                           "stays loaded. An id not loaded is 404 whatever the headers.",
            "parameters": [{"name": res_id, "in": "path", "required": True,
                            "description": "the res_id the load answered",
                            "schema": {"type": "integer", "minimum": 1,
                                       "maximum": 4294967295}},
                           _header_param(TOKEN_HEADER, "the res_token the load answered "
                                         "(required unless the admin token is given)"),
                           _header_param(ADMIN_TOKEN_HEADER, "the operator's [aiges] "
                                         "adminToken: unloads any resource")],
            "responses": {"200": _json(ref("ResourceAnswer"), "Unloaded."),
                          **errors_of("BadRequest", "NotOwner", "NotFound", "Conflict",
                                      "EngineFailure", "Unsupported")}}

    # -- operations ------------------------------------------------------------------------------
    def _health(self) -> dict:
        return {"tags": ["operations"], "operationId": "health", "summary": "Liveness",
                "description": "200 while the process serves; readiness is /ready. Also "
                               "names the engine serving: its path, wrapperVersion, "
                               "generation (1 at start-up, +1 per hot reload) and the "
                               "number of reloads.",
                "responses": {"200": _json(ref("Status"), "Alive.", {
                    "status": "ok", "engine": "build/native_examples/libecho.so",
                    "version": "echo/1.0.0", "generation": 1, "reloads": 0})}}

    def _ping(self) -> dict:
        return {"tags": ["operations"], "operationId": "ping",
                "summary": "WebSocket echo (upstream's /ping)",
                "description": "A WebSocket that sends back every message it gets, the "
                               "text \"ping\" as \"pong\": checks that WebSockets get "
                               "through the proxies in between.",
                "responses": {"101": {"description": "Switching Protocols: the echo starts."},
                              "400": {"description": "Not a WebSocket upgrade request.",
                                      "content": {"text/plain": {"schema": {
                                          "type": "string"}}}}}}

    def _admin_reload(self) -> dict:
        problem = ref("ErrorResponse")
        return {
            "tags": ["operations"], "operationId": "reloadEngine",
            "summary": "Hot reload: replace the engine",
            "description": "Loads the engine again (or the one named in the body) from a "
                           "private copy, initialises it, and sends every new request and "
                           "session to it; the old engine finishes its work within "
                           "[aiges] drainTimeout, then wrapperFini. Off unless [aiges] "
                           "adminReload = true (it can load any library on the machine). "
                           "With several workers only the one answering reloads; SIGHUP "
                           "to the supervisor reloads them all.",
            "requestBody": {"required": False, "description": "Optional: another engine.",
                            "content": {JSON: {"schema": {
                                "type": "object", "properties": {"engine": {
                                    "type": "string", "description": "path of a .so or a "
                                    "wrapper.py on the server (default: the current one)"}}},
                                "example": {}}}},
            "responses": {
                "200": _json({"type": "object", "properties": {
                    "header": {"type": "object", "properties": {
                        "code": {"type": "integer"}, "message": {"type": "string"}}},
                    "engine": {"type": "string"},
                    "version": {"type": "string"}, "generation": {"type": "integer"},
                    "reloads": {"type": "integer"}, "previous": {"type": "object"},
                    "resources_dropped": {"type": "array", "items": {"type": "integer"}}}},
                    "Reloaded: the new engine serves."),
                "400": _json(problem, "The body is not JSON (10000) or engine is not a "
                                      "path (10107)."),
                "403": _json(problem, "Reload by request is off, or the admin token is missing (10120)."),
                "409": _json(problem, "A reload is already running (10003)."),
                "422": _json(problem, "The new engine cannot be loaded (10901, with the "
                                      "reason); the old one serves on."),
                "500": _json(problem, "The new engine's wrapperInit failed (10901, with "
                                      "its text); the old one serves on."),
                "503": _json(problem, "Starting or draining (10003).")}}

    def _ready(self) -> dict:
        return {"tags": ["operations"], "operationId": "ready", "summary": "Readiness",
                "description": "200 once wrapperInit succeeded; 503 before, from the "
                               "moment shutdown begins, while every instance is stuck, and "
                               "while the engine's own health check (wrapperHealth) fails, "
                               "with its reason in detail.",
                "responses": {"200": _json(ref("Status"), "Ready to serve.",
                                           {"status": "ready"}),
                              "503": _json(ref("Status"), "Starting, draining, stuck or "
                                           "unhealthy.", {"status": "starting"})}}

    def _metrics(self) -> dict:
        return {"tags": ["operations"], "operationId": "metrics",
                "summary": "Prometheus metrics",
                "responses": {"200": {"description": "Prometheus text exposition format.",
                                      "content": {"text/plain": {"schema": {"type": "string"}}}}}}

    def _openapi(self) -> dict:
        return {"tags": ["operations"], "operationId": "openapi",
                "summary": "This OpenAPI document",
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3.0 document.")}}

    def _docs(self) -> dict:
        return {"tags": ["operations"], "operationId": "docs", "summary": "Swagger UI",
                "description": "Served from local files: works offline.",
                "responses": {"200": {"description": "The Swagger UI page.",
                                      "content": {"text/html": {"schema": {"type": "string"}}}}}}

    def _docs_static(self, name: str = "name") -> dict:
        return {"tags": ["operations"], "operationId": "docsAsset",
                "summary": "Swagger UI assets (JavaScript, CSS, icons)",
                "parameters": [_path_param(name, "file name")],
                "responses": {"200": {"description": "The file.", "content": {
                    "*/*": {"schema": {"type": "string", "format": "binary"}}}},
                    "404": {"description": "No such asset."}}}
