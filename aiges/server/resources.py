"""Personalization resources (SPEC 5): wrapperLoadRes / wrapperUnloadRes over HTTP.

POST   /v1/{service}/resources        load: the payload items become the DataList;
                                      answers the id and its res_token
GET    /v1/{service}/resources        the ids loaded through this service (never tokens)
DELETE /v1/{service}/resources/{id}   unload: X-Aiges-Resource-Token must hold the
                                      load's res_token, or X-Aiges-Admin-Token the
                                      operator's [aiges] adminToken (when set); else 403

POST takes a request document like a once request: every payload item is one node,
typed by its text/audio/image/video field as usual (text -> DataText; the loader
sends no DataPer), ``header.res_id`` (one number, 1..4294967295) picks the id, else
the loader assigns one. ``parameter`` is ignored: wrapperLoadRes takes no params.
The engine calls run on the engine threads and are shielded from client disconnects,
so the ids kept per engine generation always match what the engine was told. A hot
reload starts the new engine with none: ids are not carried over.

An id not loaded answers 404 whatever token comes with it: the ids are listed to
anyone, only the tokens are secret, so the 404 reveals nothing.
"""
from __future__ import annotations

import asyncio
import logging

import orjson
from aiohttp import web

from aiges import errors, protocol
from aiges.errors import AigesError
from aiges.resources import MAX_ID, ResourceIds, same_secret
from aiges.server.responses import error, json_body, read_body
from aiges.generation import Generation
from aiges.server.reload import ADMIN_TOKEN_HEADER
from aiges.server.state import STATE

TOKEN_HEADER = "X-Aiges-Resource-Token"
log = logging.getLogger(__name__)


async def load(request: web.Request) -> web.Response:
    state = request.app[STATE]
    sid = protocol.new_sid()
    try:
        if not state.lifecycle.accepting:  # draining: wrapperFini is next, a new one is lost
            raise AigesError(errors.INVALID_OPERATION, "service is not ready (starting or "
                                                       "draining): no resource loaded", 503)
        doc = protocol.loads(await read_body(request))
        header = doc.get("header")
        wanted = _res_id(header.get("res_id") if isinstance(header, dict) else None,
                         "header.res_id")
        req = state.parse(doc, sid)
        gen = state.generation  # the engine now serving: a reload meanwhile does not move it
        res_id = gen.resources.reserve(wanted)
        token = gen.resources.token(res_id)  # now: the id may be unloaded before we answer
        await _shielded(_load(gen, res_id, req))
    except AigesError as exc:
        return _failed(request, sid, exc)
    return _answer(sid, res_id, token)


async def _load(gen: Generation, res_id: int, req: protocol.Request) -> None:
    ok = False
    try:
        await gen.runner.call(gen.engine.load_res, res_id, req.data)
        ok = True
    finally:
        gen.resources.load_done(res_id, ok)
    log.info("resource loaded", extra={"sid": req.sid, "res_id": res_id, "items": len(req.data),
                                       "bytes": sum(len(d.data) for d in req.data)})


async def unload(request: web.Request) -> web.Response:
    state = request.app[STATE]
    sid = protocol.new_sid()
    try:
        res_id = _res_id(request.match_info["res_id"], "the resource id")
        gen = state.generation
        if gen is None:
            raise AigesError(errors.INVALID_OPERATION, "service is starting", 503)
        _authorise(request, gen.resources, res_id, state.config.admin_token)
        gen.resources.begin_unload(res_id)
        await _shielded(_unload(gen, res_id, sid))
    except AigesError as exc:
        return _failed(request, sid, exc)
    return _answer(sid, res_id)


async def _unload(gen: Generation, res_id: int, sid: str) -> None:
    ok = False
    try:
        await gen.runner.call(gen.engine.unload_res, res_id)
        ok = True
    finally:
        gen.resources.unload_done(res_id, ok)
    log.info("resource unloaded", extra={"sid": sid, "res_id": res_id})


async def listing(request: web.Request) -> web.Response:
    ids = request.app[STATE].resources.loaded()
    return json_body(orjson.dumps({"header": {"code": 0, "message": "success"}, "res_ids": ids}))


def _authorise(request: web.Request, ids: ResourceIds, res_id: int, admin_token: str) -> None:
    """The owner (the load's res_token) or the operator (the adminToken, when set) may
    unload; anyone else gets 10120, HTTP 403. An id not loaded is 404 (ids.owned)."""
    if admin_token and same_secret(request.headers.get(ADMIN_TOKEN_HEADER, ""), admin_token):
        return
    if ids.owned(res_id, request.headers.get(TOKEN_HEADER, "")):
        return
    operator = f" (or {ADMIN_TOKEN_HEADER} with [aiges] adminToken)" if admin_token else ""
    raise AigesError(errors.FORBIDDEN,
                     f"resource {res_id} is unloaded only with the {TOKEN_HEADER} header "
                     f"holding the res_token its load answered{operator}")


def _answer(sid: str, res_id: int, token: str | None = None) -> web.Response:
    doc = {"header": {"code": 0, "message": "success", "sid": sid}, "res_id": res_id}
    if token is not None:
        doc["res_token"] = token
    return json_body(orjson.dumps(doc))


def _res_id(value, name: str) -> int | None:
    """One id: a JSON integer or a decimal string; None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise AigesError(errors.INVALID_PARAM,
                         f"{name} must be one number from 1 to {MAX_ID}, got {value!r}")
    return value


async def _shielded(coro) -> None:
    """Runs coro to its end even if the client goes away; its outcome is always retrieved."""
    task = asyncio.ensure_future(coro)
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    await asyncio.shield(task)


def _failed(request: web.Request, sid: str, exc: AigesError) -> web.Response:
    level = logging.ERROR if exc.http_status >= 500 and exc.http_status != 501 else logging.INFO
    log.log(level, "resource request failed", extra={"sid": sid, "route": request.path,
                                                     "code": exc.code, "error": exc.message})
    return error(exc, sid)
