"""The HTTP session API (SPEC 4) for clients without WebSocket: curl and scripts.

POST   /v1/{service}/sessions               create (optional first frame) -> sid, results so far
POST   /v1/{service}/sessions/{sid}         write a frame -> results available
GET    /v1/{service}/sessions/{sid}?wait_ms long-poll for results
DELETE /v1/{service}/sessions/{sid}         end the session now
Every answer carries ``results``: server frames exactly as WebSocket sends them.
A sid belongs to the transport that created it: a WebSocket session's sid is
unknown here (10008, 404). Opening, writing and ending a session are the core's
(aiges.service.sessions); this module only moves requests and answers.
"""
from __future__ import annotations

import orjson
from aiohttp import web

from aiges import errors, protocol
from aiges.errors import AigesError
from aiges.server.responses import error, json_body, read_body
from aiges.server.state import STATE
from aiges.service import sessions
from aiges.sessions import Session

MAX_WAIT_MS = 60000
SETTLE_S = 1.0
MODE = "session_http"  # label of these sessions in metrics and the access log


async def create(request: web.Request) -> web.Response:
    state = request.app[STATE]
    sid = protocol.new_sid()
    try:
        try:
            body = await read_body(request)
            doc = protocol.loads(body) if body.strip() else {}
        except AigesError as exc:
            sessions.refuse(state, sid, MODE, exc)
            raise
        session = await sessions.open_session(state, doc, MODE, sid, carrier=request.headers)
        return await _answer(request, session)
    except AigesError as exc:
        return error(exc, sid)


async def write(request: web.Request) -> web.Response:
    state = request.app[STATE]
    sid = request.match_info["sid"]
    try:
        session = sessions.find(state, sid, MODE)
        await sessions.write(state, session, protocol.loads(await read_body(request)))
        return await _answer(request, session)
    except AigesError as exc:
        return error(exc, sid)


async def poll(request: web.Request) -> web.Response:
    sid = request.match_info["sid"]
    try:
        return await _answer(request, sessions.find(request.app[STATE], sid, MODE))
    except AigesError as exc:
        return error(exc, sid)


async def delete(request: web.Request) -> web.Response:
    state = request.app[STATE]
    sid = request.match_info["sid"]
    try:
        session = sessions.find(state, sid, MODE)
    except AigesError as exc:
        return error(exc, sid)
    await sessions.end(session, "deleted")
    return json_body(orjson.dumps({"header": {"code": 0, "message": "success", "sid": sid}}))


def _wait_s(request: web.Request) -> float:
    raw = request.query.get("wait_ms", "0")
    try:
        wait_ms = int(raw)
    except ValueError:
        raise AigesError(errors.INVALID_PARAM, f"wait_ms must be a number, got {raw!r}") from None
    return max(0, min(wait_ms, MAX_WAIT_MS)) / 1000


async def _answer(request: web.Request, session: Session) -> web.Response:
    """Results available now (or within wait_ms); the session's error once they are out."""
    taken = await session.results(_wait_s(request))
    # A session that just ended: its last answer says so (ended: true) once the engine
    # has let go, which takes a moment, instead of needing one more request.
    await session.settle(SETTLE_S)
    taken += await session.results()
    if not taken and session.error is not None:
        await sessions.end(session, f"error {session.error.code}")
        return error(session.error, session.sid)
    if session.drained and session.error is None:
        await sessions.end(session, "finished")
    frames = [protocol.session_doc(session.sid, items, session.outputs, seqs)
              for seqs, items in taken]
    header = {"code": 0, "message": "success", "sid": session.sid,
              "ended": session.drained and session.error is None}
    if frames:
        header["status"] = frames[-1]["header"]["status"]
    return json_body(protocol.dumps({"header": header, "results": frames}))
