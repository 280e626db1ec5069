"""Answers of many connections written together, at the loop's next turn.

uvloop sends a small write at once: one send per answer, as each is made. On a
busy server that wakes the client for every answer (its reader has caught up with
the last one and sleeps), and waking a sleeping thread on another CPU is the
costliest part of a loopback send: measured under ``wrk -c64``, one context switch
of the client per request, and 40% of the server's CPU in the kernel. Queued
here, the answers of one turn of the loop (every connection that was readable)
go out back to back at the start of the next: the client, woken by the first,
finds the others there. Under the same load that is one wake-up per turn, and
about 1.6 times the requests per second (docs/PERFORMANCE.md); with a single
client it delays an answer by one turn of the loop, about a microsecond.

What closes or hands over a transport flushes first (``flush``): an answer still
queued would be lost with it, or overtaken by the next owner's.
"""
from __future__ import annotations

import asyncio


class Outbox:
    __slots__ = ("_loop", "_queued")

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._queued: list[tuple[asyncio.Transport, bytes]] = []

    def write(self, transport: asyncio.Transport, data: bytes) -> None:
        queued = self._queued
        if not queued:
            self._loop.call_soon(self.flush)
        queued.append((transport, data))

    def flush(self) -> None:
        """Everything queued, written now, in the order it was queued."""
        queued = self._queued
        if not queued:
            return
        self._queued = []
        for transport, data in queued:
            if not transport.is_closing():  # the client left: the answer was counted
                transport.write(data)
