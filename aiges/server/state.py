"""What the request handlers share, kept in the app under one AppKey."""
from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from aiges.config import Config
from aiges.engine import Engine
from aiges.metrics import Metrics
from aiges.resources import ResourceIds
from aiges.runner import Runner
from aiges.sessions import SessionRegistry


@dataclass
class State:
    config: Config
    engine: Engine
    runner: Runner | None = None
    sessions: SessionRegistry | None = None
    ready: bool = False       # wrapperInit has succeeded (and fini not begun)
    draining: bool = False    # shutdown has begun: /ready is 503
    drained: bool = False     # sessions had their drain time and sockets are closed
    websockets: set[web.WebSocketResponse] = field(default_factory=set)
    metrics: Metrics = field(default_factory=Metrics)  # one registry per app, made by create_app
    resources: ResourceIds = field(default_factory=ResourceIds)  # ids loaded via the resources API


STATE = web.AppKey("state", State)
