"""Logging set-up, used only by the CLI: library code logs through ``logging`` with
``extra=`` fields, written as JSON lines, or as readable lines (structlog's console
renderer) on a terminal."""
from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import orjson
import structlog

# Attributes every LogRecord has: what is left on a record came from ``extra=``.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record with the keys structlog's JSON renderer wrote (event,
    level, logger, the extra fields, timestamp, exception), built directly: a third of
    the cost per line, which counts with one access line per request."""

    def __init__(self):
        super().__init__()
        self._second = (-1, "")  # (whole second, its ISO text): one tuple, swapped whole

    def format(self, record: logging.LogRecord) -> str:
        doc = {"event": record.getMessage(), "level": record.levelname.lower(),
               "logger": record.name}
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS:
                doc[key] = value
        doc["timestamp"] = self._timestamp(record.created)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(doc, default=str).decode()

    def _timestamp(self, created: float) -> str:
        second = int(created)
        cached = self._second
        if cached[0] != second:
            cached = self._second = (second, time.strftime("%Y-%m-%dT%H:%M:%S",
                                                           time.gmtime(second)))
        return f"{cached[1]}.{int((created - second) * 1e6):06d}Z"


def configure(level: str = "info", file: str = "", stream=None) -> None:
    stream = stream or sys.stderr
    shared = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    console = logging.StreamHandler(stream)
    if stream.isatty():
        _handler(console, structlog.dev.ConsoleRenderer(), shared)
    else:
        console.setFormatter(JsonFormatter())
    handlers = [console]
    if file:
        # Upstream's configs name "./log/aiges.log" in a folder that may not exist yet.
        Path(file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(file))
        handlers[-1].setFormatter(JsonFormatter())
    # No caller, process or thread lookups per record: no renderer here shows them
    # (the logging HOWTO's optimisation switches).
    logging._srcfile = None
    logging.logProcesses = logging.logMultiprocessing = logging.logThreads = False
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
