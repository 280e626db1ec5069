"""JSON responses with the CORS headers upstream clients rely on."""
from __future__ import annotations

from aiohttp import web
from multidict import CIMultiDict

from aiges import errors, protocol
from aiges.errors import AigesError
from aiges.pool import NoInstance

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Authorization, X-Requested-With, "
                                    "X-Aiges-Resource-Token",
    "Access-Control-Max-Age": "86400",
}


# Built once: aiohttp copies a CIMultiDict faster than it converts a dict.
JSON_HEADERS = CIMultiDict(CORS)
JSON_HEADERS["Content-Type"] = "application/json"


# The admin routes' headers: no CORS, so a page of another origin can neither send them
# a JSON request (its preflight is refused) nor read their answers.
ADMIN_HEADERS = CIMultiDict({"Content-Type": "application/json"})
# Every response names the server as this, without versions.
SERVER = "aiges"


def json_body(body: bytes, status: int = 200, headers: dict | None = None,
              cors: bool = True) -> web.Response:
    merged = (JSON_HEADERS if cors else ADMIN_HEADERS).copy()
    if headers:
        merged.update(headers)
    return web.Response(body=body, status=status, headers=merged)


def error(exc: AigesError, sid: str = "", cors: bool = True) -> web.Response:
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, NoInstance) else None
    return json_body(protocol.failure(exc.code, exc.message, sid), exc.http_status, headers,
                     cors)


def answer_response(answer) -> web.Response:
    """A once request's ``aiges.server.once.Answer``."""
    headers = {"Retry-After": str(answer.retry_after)} if answer.retry_after else None
    if answer.headers:  # a wire format's own (aiges.oip: Content-Type, header length)
        headers = {**answer.headers, **(headers or {})}
    return json_body(answer.body, answer.status, headers)


async def read_body(request: web.Request) -> bytes:
    """The request body; 413 with the JSON error header when over the size limit."""
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise AigesError(errors.INVALID_INPUT, exc.text or "request body too large",
                         http_status=413) from None
