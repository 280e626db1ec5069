"""`aiges-load --workers N`: a supervisor that runs N worker processes on one port.

The supervisor never loads the engine. Each worker is ``python -m aiges.cli <the same
arguments> --worker-of <supervisor pid>``: it loads the engine and listens with
SO_REUSEPORT, so the kernel spreads new connections over the workers. A worker that
dies on its own (a segfault in the engine, an abort, the OOM killer) is logged and
restarted with back-off while the others keep serving. One SIGTERM/SIGINT drains them
all; a SIGKILLed supervisor takes its workers with it (PR_SET_PDEATHSIG).
"""
from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass
from time import monotonic

from aiohttp import web

from aiges.config import Config

log = logging.getLogger(__name__)

BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 30.0
STABLE_S = 60.0       # a worker up this long has its back-off reset
KILL_MARGIN_S = 5.0   # after the drain time, before stragglers get SIGKILL
WORKER_HEADER = "X-Aiges-Worker"
READY_FD_ENV = "AIGES_READY_FD"
PR_SET_PDEATHSIG = 1


class StartupFailed(Exception):
    pass


@dataclass
class Slot:
    """One worker place: its index, its device and the process filling it now."""
    index: int
    gpu: str | None
    proc: asyncio.subprocess.Process | None = None


def gpu_for(gpus: list[str], index: int) -> str | None:
    return gpus[index % len(gpus)] if gpus else None


def exit_text(returncode: int) -> str:
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


# --- worker side -------------------------------------------------------------------


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


def report_ready() -> None:
    """In a worker: tell the supervisor the engine is initialised and the port open."""
    fd = os.environ.pop(READY_FD_ENV, None)
    if fd is None:
        return
    try:
        os.write(int(fd), b"ready\n")
        os.close(int(fd))
    except OSError:
        pass  # the supervisor is gone; PDEATHSIG ends us


# --- supervisor side ---------------------------------------------------------------


def check_port(config: Config) -> None:
    """Fail fast (OSError) when the port is taken: SO_REUSEPORT workers could share it
    with a stranger's SO_REUSEPORT socket instead of failing."""
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    with socket.create_server((config.host, config.port), family=family):
        pass


def run(config: Config, argv: list[str]) -> int:
    """Supervise ``config.workers`` workers started with ``argv``; the exit status."""
    try:
        check_port(config)
    except OSError as exc:
        log.error("cannot listen", extra={"host": config.host, "port": config.port,
                                          "error": str(exc)})
        return 1
    try:
        asyncio.run(Supervisor(config, argv).run())
    except StartupFailed as exc:
        log.error(str(exc))
        return 1
    return 0


class Supervisor:
    def __init__(self, config: Config, argv: list[str]):
        self.config = config
        self.argv = argv
        self.slots = [Slot(i, gpu_for(config.gpus, i)) for i in range(config.workers)]
        self.stop = asyncio.Event()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        log.info("supervisor started", extra={"pid": os.getpid(), "workers": len(self.slots)})
        if self.config.gpus:
            log.info("gpu mapping", extra={"CUDA_VISIBLE_DEVICES": {
                f"worker {s.index}": s.gpu for s in self.slots}})
        try:
            await self._start_all()
            if not self.stop.is_set():
                keepers = [asyncio.create_task(self._keep(slot)) for slot in self.slots]
                await self.stop.wait()
                log.info("shutting down: draining the workers")
                await self._stop_all()
                await asyncio.gather(*keepers)
        finally:
            await self._stop_all()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
                signal.signal(sig, signal.SIG_IGN)
        log.info("stopped")

    async def _start_all(self) -> None:
        starts = asyncio.gather(*(self._spawn(slot) for slot in self.slots))
        stopped = asyncio.create_task(self.stop.wait())
        await asyncio.wait([starts, stopped], return_when=asyncio.FIRST_COMPLETED)
        if self.stop.is_set():  # stopped while starting: the workers still starting end too
            await self._stop_all()
            await starts
            return
        stopped.cancel()
        if not all(starts.result()):
            raise StartupFailed("a worker exited during start-up; stopping")
        c = self.config
        host = "127.0.0.1" if c.host in ("0.0.0.0", "") else c.host
        log.info(f"ready on http://{host}:{c.port}/v1/{c.service}",
                 extra={"supervisor_pid": os.getpid(),
                        "worker_pids": [s.proc.pid for s in self.slots]})

    async def _spawn(self, slot: Slot) -> bool:
        """Start the slot's worker; True once it is ready, False if it exits first."""
        read_fd, write_fd = os.pipe()
        env = {**os.environ, READY_FD_ENV: str(write_fd)}
        if slot.gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = slot.gpu
        try:
            slot.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "aiges.cli", *self.argv, "--worker-of", str(os.getpid()),
                env=env, pass_fds=(write_fd,), stdin=asyncio.subprocess.DEVNULL)
        finally:
            os.close(write_fd)
        if self.stop.is_set():  # stopping began while it was being started
            _signal(slot.proc, signal.SIGTERM)
        log.debug("worker started", extra={"worker": slot.index, "pid": slot.proc.pid,
                                           "gpu": slot.gpu})
        ready = await _ready_line(read_fd)
        if ready:
            log.debug("worker ready", extra={"worker": slot.index, "pid": slot.proc.pid,
                                             "gpu": slot.gpu})
        return ready

    async def _keep(self, slot: Slot) -> None:
        """Restart the slot's worker whenever it dies on its own, with back-off."""
        delay = BACKOFF_MIN_S
        started = monotonic()
        while True:
            returncode = await slot.proc.wait()
            if self.stop.is_set():
                return
            up = monotonic() - started
            if up >= STABLE_S:
                delay = BACKOFF_MIN_S
            log.error("worker died", extra={"worker": slot.index, "pid": slot.proc.pid,
                                            "exit": exit_text(returncode),
                                            "up_s": round(up, 1), "restart_in_s": delay})
            try:
                await asyncio.wait_for(self.stop.wait(), delay)
                return
            except TimeoutError:
                pass
            delay = min(delay * 2, BACKOFF_MAX_S)
            started = monotonic()
            if await self._spawn(slot):
                log.info("worker restarted", extra={"worker": slot.index, "pid": slot.proc.pid,
                                                    "gpu": slot.gpu})

    async def _stop_all(self) -> None:
        """SIGTERM every live worker, wait for the drain, SIGKILL what is left."""
        live = [s.proc for s in self.slots if s.proc and s.proc.returncode is None]
        for proc in live:
            _signal(proc, signal.SIGTERM)
        if not live:
            return
        limit = self.config.drain_timeout_ms / 1000 * 2 + KILL_MARGIN_S
        _, pending = await asyncio.wait([asyncio.create_task(p.wait()) for p in live],
                                           timeout=limit)
        for proc in live:
            if proc.returncode is None:
                log.error("worker did not stop in time; killed", extra={"pid": proc.pid})
                _signal(proc, signal.SIGKILL)
        if pending:
            await asyncio.wait(pending)


def _signal(proc: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    try:
        proc.send_signal(sig)
    except ProcessLookupError:
        pass


async def _ready_line(fd: int) -> bool:
    """True once the worker writes its ready line, False if it closes the pipe (exits)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb"))
    try:
        return (await reader.readline()).startswith(b"ready")
    finally:
        transport.close()  # closes fd
