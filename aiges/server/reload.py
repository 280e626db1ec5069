"""POST /admin/reload over aiohttp: the hot reload of aiges.service.reload, asked for
by request. Off unless [aiges] adminReload; JSON only and, when set, the admin token.
"""
from __future__ import annotations

import asyncio

import orjson
from aiohttp import web

from aiges import errors
from aiges.errors import AigesError
from aiges.resources import same_secret
from aiges.server.responses import error, json_body, read_body
from aiges.server.state import STATE
from aiges.service.reload import reload

ADMIN_TOKEN_HEADER = "X-Aiges-Admin-Token"


async def admin_reload(request: web.Request) -> web.Response:
    """POST /admin/reload, body optional: {"engine": "/path/to/lib.so"}."""
    service = request.app[STATE]
    try:
        if not service.config.admin_reload:
            raise AigesError(errors.FORBIDDEN, "reload by request is off: set [aiges] "
                             "adminReload = true (or --admin-reload)")
        check_admin(request, service.config.admin_token)
        path = _engine_path(await read_body(request))
        # A client that goes away does not cut a reload short: it always completes.
        task = asyncio.ensure_future(reload(service, path, "admin"))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        result = await asyncio.shield(task)
    except AigesError as exc:
        return error(exc, cors=False)
    return json_body(orjson.dumps({"header": {"code": 0, "message": "success"}, **result}),
                     cors=False)


def check_admin(request: web.Request, token: str) -> None:
    """What an admin request needs: JSON (a cross-origin page cannot send it without a
    preflight, which is refused) and, when set, the shared secret."""
    if request.content_type != "application/json":
        raise AigesError(errors.INVALID_OPERATION, "admin requests must be "
                         "Content-Type: application/json", 415)
    given = request.headers.get(ADMIN_TOKEN_HEADER, "")
    if token and not same_secret(given, token):
        raise AigesError(errors.FORBIDDEN, f"admin requests need the {ADMIN_TOKEN_HEADER} "
                         "header ([aiges] adminToken)")


def _engine_path(body: bytes) -> str | None:
    if not body.strip():
        return None
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise AigesError(errors.BAD_JSON, "the body is not JSON") from None
    engine = doc.get("engine") if isinstance(doc, dict) else None
    if engine is None:
        if isinstance(doc, dict):
            return None
        raise AigesError(errors.INVALID_PARAM, 'the body must be a JSON object: '
                         '{"engine": "/path/to/libengine.so"} or {}')
    if not isinstance(engine, str) or not engine.strip():
        raise AigesError(errors.INVALID_PARAM, "engine must be a path (a non-empty string)")
    return engine
