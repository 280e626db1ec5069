"""The aiohttp service: routes, WebSocket, session API, ops endpoints. Never sees cdata."""
from aiges.server.app import create_app

__all__ = ["create_app"]
