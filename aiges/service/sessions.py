"""Streaming sessions (SPEC 4) as transports see them: open one from its first frame,
write frames, find it again by sid, end it. A transport (WebSocket, the HTTP
session API, later a gRPC stream) decodes its frames into request documents and
sends results back; the session's own life (time limits, reads, destroy, the report
at its end) belongs to aiges.sessions, and its end is one method, ``Session.end``,
that runs each step once however often it is called.
"""
from __future__ import annotations

from collections.abc import Callable, Coroutine

from aiges.errors import AigesError
from aiges.protocol import Request
from aiges.service.core import Service
from aiges.sessions import Session


async def open_session(service: Service, doc: dict, mode: str, sid: str | None = None,
                       ack: bool = False, carrier=None,
                       opened: Callable[[Session], None] | None = None) -> Session:
    """A session of transport ``mode`` from its first frame ``doc`` (payload optional),
    that frame's data written. Refused (and accounted) when the frame is invalid, the
    engine has no session mode or the session limit is reached. ``ack``: an empty first
    result when the first write yields none (upstream's WebSocket sends one).
    ``carrier``: the opening request's headers or metadata (the caller's traceparent).
    ``opened``: called with the session before its first write (a transport watching
    its client for it)."""
    try:
        req = service.parse(doc, sid, need_payload=False)
    except AigesError as exc:
        service.sessions.reject(sid or "-", mode, exc)
        raise
    return await open_request(service, req, mode, ack, carrier, opened)


async def open_request(service: Service, req: Request, mode: str, ack: bool = False,
                       carrier=None, opened: Callable[[Session], None] | None = None
                       ) -> Session:
    """A session from a first frame a transport parsed itself (another wire format:
    aiges.oip's gRPC streams), that frame's data written."""
    session = await service.sessions.open(req.sid, req.params, req.psr_ids, req.outputs, mode,
                                          ack=ack, carrier=carrier)
    if opened is not None:
        opened(session)
    if req.data:
        await session.write(req.data)
    return session


def refuse(service: Service, sid: str | None, mode: str, exc: AigesError) -> None:
    """A first frame the transport could not even decode (too big, not JSON, unreadable
    body): no session, but it counts as a refused one."""
    service.sessions.reject(sid or "-", mode, exc)


async def write(service: Service, session: Session, doc: dict) -> None:
    """One more frame of ``session``: its payload statuses drive it."""
    later = write_soon(service, session, doc)
    if later is not None:
        await later


def write_soon(service: Service, session: Session, doc: dict) -> Coroutine | None:
    """``write``, done now when the engine's calls run inline (None), else the
    coroutine to await: a transport reading many frames at once pays no await for
    the frames of a fast engine (Session.write_soon)."""
    return session.write_soon(service.inputs(doc))


async def write_many(service: Service, session: Session, docs: list[dict]) -> None:
    """Frames a transport read together, written in order, those of a fast engine with
    one check and one await for them all (Session.write_many). A frame that is invalid
    or may not be written raises once the frames before it are written; frames after
    the session's end (its final result) are not written, as a transport that read
    them one by one would not have read them."""
    frames = []
    error = None
    for doc in docs:
        try:
            frames.append(service.inputs(doc))
        except AigesError as exc:
            error = exc
            break
    start = 0
    while start < len(frames) and not session.ended:
        later, start = session.write_many(frames, start)
        if later is not None:
            await later
    if error is not None and not session.ended:
        raise error


def write_now(service: Service, session: Session, docs: list[dict]) -> int:
    """Of frames a transport read together, those that can be written here and now (a
    fast engine, no call of the session running or waiting), in order, written: how
    many. The rest are the transport's to write with ``write_many`` (an invalid frame
    among them raises there)."""
    frames = []
    for doc in docs:
        try:
            frames.append(service.inputs(doc))
        except AigesError:
            break
    return session.write_now(frames) if frames else 0


def find(service: Service, sid: str, mode: str) -> Session:
    """The open session ``sid`` of transport ``mode`` in any generation (sessions finish
    where they started). Unknown or another transport's: 10008; ended: 10101."""
    return service.generations.session(sid, mode)


async def end(session: Session, reason: str, error: AigesError | None = None) -> None:
    """End ``session`` now (finished, client gone, deleted, error): forgotten, reported
    and destroyed, each once however often it is called."""
    await session.end(reason, error)
