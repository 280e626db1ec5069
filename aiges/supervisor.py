"""`aiges-load --workers N`: a supervisor that runs N worker processes on one port.

The supervisor never loads the engine. Each worker is ``python -m aiges.cli <the same
arguments> --worker-of <supervisor pid>``: it loads the engine and listens with
SO_REUSEPORT, so the kernel spreads new connections over the workers. A worker that
dies on its own (a segfault in the engine, an abort, the OOM killer) is logged and
restarted with back-off while the others keep serving. One SIGTERM/SIGINT drains them
all; a SIGKILLed supervisor takes its workers with it (PR_SET_PDEATHSIG).

SIGHUP (hot reload) is forwarded to every worker that is up. A worker writes "ready" on
its pipe (AIGES_READY_FD) once serving, then one "reload {json}" line per reload, so the
supervisor can log one line when every worker has reloaded, or which failed.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass
from time import monotonic

from aiges.board import Board, FD_ENV as BOARD_FD_ENV
from aiges.config import Config
from aiges.supervised import READY_FD_ENV

log = logging.getLogger(__name__)

BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 30.0
STABLE_S = 60.0       # a worker up this long has its back-off reset
FREE_RESTARTS = 2     # deaths in a row restarted at once before back-off begins
WATCH_S = 0.25        # how often the boards are read (beats, calls)
KILL_MARGIN_S = 5.0   # after the drain time, before stragglers get SIGKILL


class StartupFailed(Exception):
    pass


@dataclass
class Slot:
    """One worker place: its index, its device and the process filling it now."""
    index: int
    gpu: str | None
    proc: asyncio.subprocess.Process | None = None
    ready: bool = False  # its engine is up (and SIGHUP handled): reloads may be asked
    reports: asyncio.Task | None = None  # reads the worker's reload results
    board: Board | None = None  # shared with the worker now filling it (aiges.board)
    beats: int = 0          # the board's beat count when last seen moving,
    beat_at: float = 0.0    # and when (monotonic)
    stalled: bool = False   # killed by the supervisor: its event loop had stopped
    strikes: int = 0        # quick deaths in a row on its own (back-off grows with them)


def gpu_for(gpus: list[str], index: int) -> str | None:
    return gpus[index % len(gpus)] if gpus else None


def exit_text(returncode: int) -> str:
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


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
        self.round: ReloadRound | None = None  # the reload asked by the last SIGHUP
        self.replaced = {"died": 0, "stalled": 0}  # workers replaced, by why

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload)
        log.info("supervisor started", extra={"pid": os.getpid(), "workers": len(self.slots)})
        if self.config.gpus:
            log.info("gpu mapping", extra={"CUDA_VISIBLE_DEVICES": {
                f"worker {s.index}": s.gpu for s in self.slots}})
        try:
            await self._start_all()
            if not self.stop.is_set():
                keepers = [asyncio.create_task(self._keep(slot)) for slot in self.slots]
                watcher = asyncio.create_task(self._watch())
                await self.stop.wait()
                log.info("shutting down: draining the workers")
                await self._stop_all()
                await asyncio.gather(*keepers, watcher)
        finally:
            await self._stop_all()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
                signal.signal(sig, signal.SIG_IGN)
            for slot in self.slots:
                if slot.reports is not None:
                    slot.reports.cancel()
                if slot.board is not None:
                    slot.board.close()
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
        grpc = f"; gRPC (Open Inference Protocol) on port {c.grpc_port}" if c.grpc_port else ""
        log.info(f"ready on http://{host}:{c.port}/v1/{c.service} (API docs: /docs){grpc}",
                 extra={"supervisor_pid": os.getpid(),
                        "worker_pids": [s.proc.pid for s in self.slots]})

    async def _spawn(self, slot: Slot) -> bool:
        """Start the slot's worker; True once it is ready, False if it exits first."""
        read_fd, write_fd = os.pipe()
        if slot.board is not None:
            slot.board.close()  # the previous worker's, read when it died
        slot.board, board_fd = Board.create()
        slot.board.set_counts(self.replaced["died"], self.replaced["stalled"])
        slot.ready = slot.stalled = False
        env = {**os.environ, READY_FD_ENV: str(write_fd), BOARD_FD_ENV: str(board_fd)}
        if slot.gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = slot.gpu
        try:
            slot.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "aiges.cli", *self.argv, "--worker-of", str(os.getpid()),
                env=env, pass_fds=(write_fd, board_fd), stdin=asyncio.subprocess.DEVNULL)
        finally:
            os.close(write_fd)
            os.close(board_fd)
        if self.stop.is_set():  # stopping began while it was being started
            _signal(slot.proc, signal.SIGTERM)
        log.debug("worker started", extra={"worker": slot.index, "pid": slot.proc.pid,
                                           "gpu": slot.gpu})
        reader, transport = await _pipe_reader(read_fd)
        ready = (await reader.readline()).startswith(b"ready")
        if not ready:
            transport.close()
            return False
        log.debug("worker ready", extra={"worker": slot.index, "pid": slot.proc.pid,
                                         "gpu": slot.gpu})
        slot.ready = True
        slot.beats, slot.beat_at = slot.board.beats(), monotonic()
        slot.reports = asyncio.create_task(self._read_reports(slot.proc.pid, reader, transport))
        return True

    async def _read_reports(self, pid: int, reader: asyncio.StreamReader, transport) -> None:
        """A worker's reload results, one line each, until it exits (end of the pipe)."""
        try:
            while line := await reader.readline():
                if line.startswith(b"reload "):
                    try:
                        self._reloaded(pid, json.loads(line[7:]))
                    except ValueError:
                        log.warning("unreadable report from a worker", extra={"pid": pid})
        finally:
            transport.close()
        self._reloaded(pid, None)  # gone: a reload it was asked for will not come

    def _reload(self) -> None:
        """SIGHUP: every worker that is up reloads its engine; one line once all have."""
        pids = [s.proc.pid for s in self.slots
                if s.ready and s.proc is not None and s.proc.returncode is None]
        if self.round is not None and not self.round.done:
            log.warning("the previous reload has not finished on every worker",
                        extra={"waiting_for": self.round.waiting})
        if not pids:
            log.warning("SIGHUP ignored: no worker is up to reload")
            return
        self.round = ReloadRound(pids)
        log.info("reloading the engine of every worker (SIGHUP)", extra={"worker_pids": pids})
        for slot in self.slots:
            if slot.proc is not None and slot.proc.pid in pids:
                _signal(slot.proc, signal.SIGHUP)

    def _reloaded(self, pid: int, result: dict | None) -> None:
        if self.round is not None and self.round.add(pid, result):
            self.round.log()
            self.round = None
        elif result is not None and result.get("trigger") == "admin":
            # POST /admin/reload reloads the one worker that answered it.
            level = logging.INFO if result.get("ok") else logging.ERROR
            log.log(level, "worker reloaded its engine" if result.get("ok") else
                    "worker engine reload failed", extra={"pid": pid, **result})

    async def _keep(self, slot: Slot) -> None:
        """Restart the slot's worker whenever it dies on its own or is killed stalled."""
        started = monotonic()
        while True:
            returncode = await slot.proc.wait()
            if self.stop.is_set():
                return
            delay = self._died(slot, returncode, monotonic() - started)
            if delay:
                await self._back_off(slot, delay)
            if self.stop.is_set():
                return
            started = monotonic()
            if await self._spawn(slot):
                log.info("worker restarted", extra={"worker": slot.index, "pid": slot.proc.pid,
                                                    "gpu": slot.gpu})

    def _died(self, slot: Slot, returncode: int, up: float) -> float:
        """Log a death with the calls the worker was running; the back-off before its
        restart. A worker that was serving and died in an engine call (or was stalled)
        was killed by a request: restarted at once, however often, since requests set
        that pace. One that dies on its own, or before it is ready, is restarted at
        once FREE_RESTARTS times in a row, then with a growing back-off."""
        calls = slot.board.calls() if slot.board is not None else []
        reason = "stalled" if slot.stalled else "died"
        self.replaced[reason] += 1
        for other in self.slots:
            if other.board is not None:
                other.board.set_counts(self.replaced["died"], self.replaced["stalled"])
        by_request = slot.ready and (slot.stalled or bool(calls))
        if by_request or (slot.ready and up >= STABLE_S):
            slot.strikes = 0
        else:
            slot.strikes += 1
        extra = slot.strikes - FREE_RESTARTS
        delay = 0.0 if extra <= 0 else min(BACKOFF_MIN_S * 2 ** (extra - 1), BACKOFF_MAX_S)
        fields = {"worker": slot.index, "pid": slot.proc.pid, "exit": exit_text(returncode),
                  "up_s": round(up, 1), "restart_in_s": delay}
        if slot.stalled:
            fields["reason"] = "stalled"
        if calls:
            fields["running"] = calls  # the request(s) it died on
        elif not slot.ready:
            fields["reason"] = "died before it was ready"
        log.error("worker died", extra=fields)
        return delay

    async def _back_off(self, slot: Slot, delay: float) -> None:
        """Wait ``delay`` seconds before a restart, or less: never while no worker
        serves the port, if this one could (it had started before it died)."""
        deadline = monotonic() + delay
        while (left := deadline - monotonic()) > 0:
            if slot.ready and not any(s.ready and s.proc.returncode is None
                                      for s in self.slots):
                log.warning("no worker is serving: restarting one now, back-off or not",
                            extra={"worker": slot.index})
                return
            try:
                await asyncio.wait_for(self.stop.wait(), min(left, WATCH_S))
                return
            except TimeoutError:
                pass

    async def _watch(self) -> None:
        """Kill a worker whose event loop has stopped beating for workerStallS (an
        engine call hung on it): it still holds its share of the port (SO_REUSEPORT),
        so new connections would wait on it for good. _keep restarts it."""
        stall_s = self.config.worker_stall_s
        if stall_s <= 0:
            return
        while True:
            try:
                await asyncio.wait_for(self.stop.wait(), WATCH_S)
                return
            except TimeoutError:
                pass
            now = monotonic()
            for slot in self.slots:
                if not slot.ready or slot.stalled or slot.proc.returncode is not None:
                    continue
                beats = slot.board.beats()
                if beats != slot.beats:
                    slot.beats, slot.beat_at = beats, now
                elif now - slot.beat_at >= stall_s:
                    slot.stalled = True
                    log.error("worker stalled", extra={
                        "worker": slot.index, "pid": slot.proc.pid,
                        "silent_s": round(now - slot.beat_at, 1), "running": slot.board.calls(),
                        "action": "killed (SIGKILL), to be replaced"})
                    _signal(slot.proc, signal.SIGKILL)

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


async def _pipe_reader(fd: int):
    """(reader, transport) of the read end of a worker's pipe; closing the transport
    closes fd. The worker writes "ready", then one "reload {json}" line per reload."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb"))
    return reader, transport


class ReloadRound:
    """One SIGHUP's reload across the workers that were up: done once each has reported
    (or exited), then summed up in one log line."""

    def __init__(self, pids: list[int]):
        self.results: dict[int, dict | None] = {pid: None for pid in pids}
        self._pending = set(pids)

    @property
    def waiting(self) -> list[int]:
        return sorted(self._pending)

    @property
    def done(self) -> bool:
        return not self._pending

    def add(self, pid: int, result: dict | None) -> bool:
        """A worker's first report since the SIGHUP (None: it exited); True when the
        round is complete."""
        if pid not in self._pending:
            return False
        self._pending.discard(pid)
        self.results[pid] = result if result is not None else {
            "ok": False, "error": "the worker exited before it reloaded"}
        return self.done

    def failed(self) -> dict[str, str]:
        """pid -> why (text keys: log lines are JSON objects)."""
        return {str(pid): r["error"] for pid, r in self.results.items() if r and not r["ok"]}

    def reloaded(self) -> dict[str, str]:
        """pid -> the version now serving."""
        return {str(pid): r["version"] for pid, r in self.results.items() if r and r["ok"]}

    def log(self) -> None:
        failed = self.failed()
        if not failed:
            log.info("engine reloaded on every worker", extra={"versions": self.reloaded()})
        else:
            log.error("engine reload failed on some workers",
                      extra={"failed": failed, "reloaded": self.reloaded()})
