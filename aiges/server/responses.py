"""JSON responses with the CORS headers upstream clients rely on."""
from __future__ import annotations

from aiohttp import web
from multidict import CIMultiDict

from aiges import errors
from aiges.errors import AigesError
from aiges.service.once import Answer, error_answer
from aiges.service.routes import CORS

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
    answer = error_answer(exc, sid)
    return json_body(answer.body, answer.status, answer.headers, cors)


def answer_response(answer: Answer) -> web.Response:
    """A once request's answer (aiges.service.once)."""
    return json_body(answer.body, answer.status, answer.headers)


async def read_body(request: web.Request) -> bytes:
    """The request body; 413 with the JSON error header when over the size limit."""
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise AigesError(errors.INVALID_INPUT, exc.text or "request body too large",
                         http_status=413) from None
