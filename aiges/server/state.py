"""What the aiohttp handlers share, kept in the app under AppKeys: the service (the
transport-free core, aiges.service) and what only this transport has, its open
WebSockets (closed with 1001 at shutdown)."""
from __future__ import annotations

from aiohttp import web

from aiges.service.core import Service

STATE = web.AppKey("state", Service)
WEBSOCKETS = web.AppKey("websockets", set)
