"""The service: what every transport serves from, and nothing of any transport.

One Service per process (per Ray replica): its config, its engine generations (the
current one serves new work, replaced ones retire), metrics, the engine's health
check and its lifecycle (aiges.service.lifecycle). Transports read what they serve
with from it per request and never keep it, so that a reload takes effect at once.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiges import protocol
from aiges import schema as engine_schema
from aiges.board import Board
from aiges.config import Config
from aiges.engine import Engine
from aiges.generation import Generation, Generations
from aiges.metrics import Metrics
from aiges.resources import ResourceIds
from aiges.runner import Runner
from aiges.service.health import EngineHealth
from aiges.service.lifecycle import Lifecycle
from aiges.session_registry import SessionRegistry

if TYPE_CHECKING:
    from aiges.tracing.spans import Tracing


@dataclass
class Service:
    config: Config
    first_engine: Engine      # generation 1's; a reload brings another (service.engine)
    generations: Generations = field(default_factory=Generations)
    metrics: Metrics = field(default_factory=Metrics)  # one registry per service
    reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one reload at a time
    health: bytes = b'{"status":"ok"}'  # the /health answer, rebuilt when the engine changes
    # A supervisor's worker reports every reload's result through this (aiges.supervisor).
    on_reload: Callable[[dict], None] | None = None
    tasks: set[asyncio.Task] = field(default_factory=set)  # background work (retirements)
    # Headers every response carries besides CORS (a worker's X-Aiges-Worker).
    extra_headers: dict[str, str] = field(default_factory=dict)
    enums: dict[str, frozenset[str]] = field(default_factory=dict)  # param -> allowed values
    # Where the service also answers: the engine's declared routes (aiges.service.routes).
    aliases: list[str] = field(default_factory=list)
    board: Board | None = None  # a worker's, shared with its supervisor (aiges.board)
    clean: bool = True        # False when shutdown left an engine call running
    tracing: Tracing | None = None  # OpenTelemetry spans, when the OTEL_* environment asks
    lifecycle: Lifecycle = field(init=False)
    engine_health: EngineHealth = field(init=False)  # wrapperHealth, polled (readiness)

    def __post_init__(self) -> None:
        self.lifecycle = Lifecycle(self)
        self.engine_health = EngineHealth(self)

    @classmethod
    def create(cls, config: Config, engine: Engine, **kw) -> Service:
        """A service for ``engine``. Enums of [schema] only: upstream never checked a
        wrapper's declared ones, and its clients may send other values."""
        return cls(config, engine, enums=engine_schema.enums(config.schema), **kw)

    def parse(self, doc: dict, sid: str | None, need_payload: bool = True) -> protocol.Request:
        """A request document as this service reads it: its parameter section, headerPass
        and the enums its schema declares."""
        config = self.config
        return protocol.parse(doc, config.service, config.header_pass, sid, need_payload,
                              self.enums)

    def inputs(self, doc: dict) -> list:
        """The inputs of a session frame after the first (its parameters are the first
        frame's), checked as ``parse`` checks a frame."""
        return protocol.frame_inputs(doc, self.config.service, self.enums)

    def stuck_calls(self) -> list[dict]:
        """Engine calls running now in every generation (any thread may ask)."""
        return [call for gen in self.generations.all() for call in gen.runner.stuck_calls()]

    # What transports serve new work with: read them per request, never keep them, so
    # that a reload takes effect at once. Work already started stays on its own
    # generation (a session keeps its registry: session.registry).
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
