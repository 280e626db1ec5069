"""A supervisor's worker (aiges.supervisor): what runs in the worker process. It gets
SIGTERM when the supervisor dies, names itself in every response, says "ready" and each
reload's result on its pipe (AIGES_READY_FD), and beats on the board it shares with the
supervisor (aiges.board, AIGES_BOARD_FD), whose engine calls the runner writes there.
"""
from __future__ import annotations

import asyncio
import ctypes
import json
import os
import signal
import sys
from collections.abc import Callable

from aiohttp import web

from aiges.board import BEAT_S, Board, FD_ENV as BOARD_FD_ENV
from aiges.server.state import STATE

WORKER_HEADER = "X-Aiges-Worker"
READY_FD_ENV = "AIGES_READY_FD"
PR_SET_PDEATHSIG = 1


def attach_to_supervisor(supervisor_pid: int) -> bool:
    """In a worker: get SIGTERM when the supervisor dies. False if it already has."""
    fd = os.environ.get(READY_FD_ENV)
    if fd is not None:
        os.set_inheritable(int(fd), False)  # not held open by the engine's own children
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    return os.getppid() == supervisor_pid  # died before prctl: we were re-parented


def mark_responses(app: web.Application) -> None:
    """Every response of a worker names it (its pid): which worker served is observable."""
    pid = str(os.getpid())

    async def _mark(request: web.Request, response: web.StreamResponse) -> None:
        response.headers[WORKER_HEADER] = pid

    app.on_response_prepare.append(_mark)
    app[STATE].extra_headers[WORKER_HEADER] = pid  # the fast path's responses


def attach_board() -> Board | None:
    """In a worker: the board shared with the supervisor (aiges.board), if it gave one."""
    fd = os.environ.pop(BOARD_FD_ENV, None)
    return Board.attach(int(fd)) if fd is not None else None


def keep_beating(board: Board) -> None:
    """In a worker: its event loop beats on the board every BEAT_S, as long as it runs."""
    loop = asyncio.get_running_loop()

    def beat() -> None:
        board.beat()
        loop.call_later(BEAT_S, beat)

    beat()


def report_ready() -> Callable[[dict], None]:
    """In a worker: tell the supervisor the engine is initialised and the port open.
    The pipe stays open: the function returned reports each reload's result on it."""
    fd = os.environ.pop(READY_FD_ENV, None)
    if fd is None:
        return lambda result: None
    fd = int(fd)
    _write_line(fd, b"ready\n")

    def report(result: dict) -> None:
        # One line, under PIPE_BUF so that it is written whole; the error text is cut.
        if len(str(result.get("error", ""))) > 1000:
            result = {**result, "error": result["error"][:1000] + "..."}
        _write_line(fd, b"reload " + json.dumps(result).encode() + b"\n")

    return report


def _write_line(fd: int, line: bytes) -> None:
    try:
        os.write(fd, line)
    except OSError:
        pass  # the supervisor is gone; PDEATHSIG ends us
