"""Logging set-up, used only by the CLI: library code logs through ``logging`` with
``extra=`` fields; structlog renders them as JSON lines, or readable lines on a terminal."""
from __future__ import annotations

import logging
import sys

import structlog


def configure(level: str = "info", file: str = "", stream=None) -> None:
    stream = stream or sys.stderr
    shared = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if stream.isatty():
        console = structlog.dev.ConsoleRenderer()
    else:
        console = structlog.processors.JSONRenderer()
    handlers = [_handler(logging.StreamHandler(stream), console, shared)]
    if file:
        handlers.append(_handler(logging.FileHandler(file), structlog.processors.JSONRenderer(),
                                 shared))
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(level.upper())
    # aiohttp's own access log is replaced by ours (issue: per-request log switch).
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def _handler(handler: logging.Handler, renderer, shared) -> logging.Handler:
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer]))
    return handler
