"""What the request handlers share, kept in the app under one AppKey."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from aiges import protocol
from aiges.board import Board
from aiges.config import Config
from aiges.engine import Engine
from aiges.generation import Generation, Generations
from aiges.metrics import Metrics
from aiges.resources import ResourceIds
from aiges.runner import Runner
from aiges.sessions import SessionRegistry

if TYPE_CHECKING:
    from aiges.tracing.spans import Tracing


@dataclass
class State:
    config: Config
    first_engine: Engine      # generation 1's; a reload brings another (state.engine)
    generations: Generations = field(default_factory=Generations)
    ready: bool = False       # wrapperInit has succeeded (and fini not begun)
    draining: bool = False    # shutdown has begun: /ready is 503
    drained: bool = False     # sessions had their drain time and sockets are closed
    websockets: set[web.WebSocketResponse] = field(default_factory=set)
    metrics: Metrics = field(default_factory=Metrics)  # one registry per app, made by create_app
    reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one reload at a time
    health: bytes = b'{"status":"ok"}'  # the /health answer, rebuilt when the engine changes
    # A supervisor's worker reports every reload's result through this (aiges.supervisor).
    on_reload: Callable[[dict], None] | None = None
    tasks: set[asyncio.Task] = field(default_factory=set)  # background work (retirements)
    # Headers every response carries besides CORS (a worker's X-Aiges-Worker).
    extra_headers: dict[str, str] = field(default_factory=dict)
    enums: dict[str, frozenset[str]] = field(default_factory=dict)  # param -> allowed values
    # Where the service also answers: the engine's declared routes (aiges.server.app).
    aliases: list[str] = field(default_factory=list)
    board: Board | None = None  # a worker's, shared with its supervisor (aiges.board)
    stop_deadline: float | None = None  # loop time when the drain time of a shutdown ends
    clean: bool = True        # False when shutdown left an engine call running
    tracing: Tracing | None = None  # OpenTelemetry spans, when the OTEL_* environment asks

    def parse(self, doc: dict, sid: str | None, need_payload: bool = True) -> protocol.Request:
        """A request document as this service reads it: its parameter section, headerPass
        and the enums its schema declares."""
        config = self.config
        return protocol.parse(doc, config.service, config.header_pass, sid, need_payload,
                              self.enums)

    def drain_left(self) -> float:
        """Seconds left of the shutdown's drain time (all of it before shutdown)."""
        drain_s = self.config.drain_timeout_ms / 1000
        if self.stop_deadline is None:
            return drain_s
        return max(self.stop_deadline - asyncio.get_running_loop().time(), 0.0)

    def stuck_calls(self) -> list[dict]:
        """Engine calls running now in every generation (any thread may ask)."""
        return [call for gen in self.generations.all() for call in gen.runner.stuck_calls()]

    # What handlers serve new work with: read them per request, never keep them, so that
    # a reload takes effect at once. Work already started stays on its own generation
    # (a session keeps its registry: session.registry).
    @property
    def generation(self) -> Generation | None:
        return self.generations.current

    @property
    def engine(self) -> Engine:
        gen = self.generations.current
        return gen.engine if gen is not None else self.first_engine

    @property
    def runner(self) -> Runner | None:
        gen = self.generations.current
        return gen.runner if gen is not None else None

    @property
    def sessions(self) -> SessionRegistry | None:
        gen = self.generations.current
        return gen.sessions if gen is not None else None

    @property
    def resources(self) -> ResourceIds:
        """Ids loaded through the resources API into the current engine."""
        gen = self.generations.current
        return gen.resources if gen is not None else ResourceIds()


STATE = web.AppKey("state", State)
