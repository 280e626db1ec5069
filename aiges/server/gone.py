"""A client that leaves while its engine call runs: the transports' side of
cancellation (aiges.cancel, wrapperCancel).

Only for an engine with a cancel entry (``Runner.can_cancel``); with any other engine
nothing here changes what happens: the request runs to its end, as before.

- Fast path (aiges/server/fast.py): the connection's lost, or its client shuts its side
  while a request waits for the engine: the task awaiting it is cancelled.
- aiohttp (once requests, WebSocket sessions): aiohttp does not cancel handlers when the
  client goes (off by default since 3.9), and every connection it serves has our Relay
  in front (aiges/server/relay.py): ``on_lost`` hooks its connection_lost.

TCP cannot tell a client that shut only its sending side (``nc -N``) from one that
closed the socket: for a request waiting on a cancellable engine both count as leaving,
as with Go's net/http and nginx. Engines without the entry keep answering such clients.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from aiges.cancel import CLIENT_LEFT, SHUTDOWN
from aiges.server.relay import Relay
from aiges.service import Answer, Pending
from aiges.service import Service as State
from aiges.sessions import Session


def leaves(state: State) -> bool:
    """A request of this service whose client goes is given up (the engine can cancel)."""
    runner = state.runner
    return runner is not None and runner.can_cancel


def give_up(task: asyncio.Task | None, state: State, closing: bool) -> None:
    """The fast path lost the client of the request awaited by ``task``."""
    if task is not None and not task.done() and leaves(state):
        task.cancel(SHUTDOWN if closing else CLIENT_LEFT)


def on_lost(request: web.Request, callback: Callable[[], None]) -> Callable[[], None]:
    """``callback`` when the connection of ``request`` is lost (or its client shuts its
    side); returns what stops watching. One watcher per connection: aiohttp serves its
    requests one at a time."""
    transport = request.transport
    if transport is None:
        asyncio.get_running_loop().call_soon(callback)
        return lambda: None
    relay = transport.get_protocol()
    if not isinstance(relay, Relay):
        return lambda: None  # not a connection of our listener (a test client): unwatched
    relay.on_lost = callback

    def stop() -> None:
        if relay.on_lost is callback:
            relay.on_lost = None

    return stop


async def finish(request: web.Request, state: State, pending: Pending) -> Answer:
    """``pending.finish()``, given up when the client leaves ("client_left") or when
    aiohttp cancels the handler at the end of the drain time ("shutdown")."""
    if not leaves(state):
        return await pending.finish()
    task = asyncio.get_running_loop().create_task(pending.finish())
    stop = on_lost(request, lambda: task.done() or task.cancel(CLIENT_LEFT))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if not task.done():  # the handler itself was cancelled: aiohttp is stopping
            task.cancel(SHUTDOWN)
            raise
        if asyncio.current_task().cancelling():
            raise
        # The client left: accounted by finish(); the answer has nobody to go to.
        return Answer(499, b"")
    finally:
        stop()


class SessionWatch:
    """A WebSocket session's call running in the engine is asked to stop
    (Session.cancel) when the connection is lost; the session itself ends as before."""

    def __init__(self, request: web.Request, state: State):
        self.session: Session | None = None
        self._stop = on_lost(request, self._lost) if leaves(state) else (lambda: None)

    def watch(self, session: Session) -> None:
        """The session opened: watched from its first write on."""
        self.session = session

    def _lost(self) -> None:
        if self.session is not None:
            self.session.cancel(CLIENT_LEFT)

    def close(self) -> None:
        self._stop()
