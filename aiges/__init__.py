"""aiges: serve AIGES wrapper engines over HTTP and WebSocket."""

__version__ = "0.1.0"
