"""What the request handlers share, kept in the app under one AppKey."""
from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from aiges.config import Config
from aiges.engine import Engine
from aiges.runner import Runner
from aiges.sessions import SessionRegistry


@dataclass
class State:
    config: Config
    engine: Engine
    runner: Runner | None = None
    sessions: SessionRegistry | None = None
    ready: bool = False
    websockets: set[web.WebSocketResponse] = field(default_factory=set)


STATE = web.AppKey("state", State)
