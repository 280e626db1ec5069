"""SIGTERM, SIGINT and SIGHUP for a serving process, heard by a thread of its own.

asyncio's signal handlers run on the event loop, so an engine call that never
returns on the loop's thread (a deadlock after a run of fast inline calls) would
make the process deaf to SIGTERM. Here Python's C-level handler writes the signal
number to a pipe (``signal.set_wakeup_fd``) that a thread reads: the first
SIGTERM/SIGINT asks the loop to stop and arms a deadline; a process still alive
at the deadline (drain time plus a grace) logs the engine calls that are stuck
and exits 1. SIGHUP is handed to the loop.
Knows nothing of HTTP.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from typing import Callable

log = logging.getLogger(__name__)

STOP = (signal.SIGTERM, signal.SIGINT)
# After the drain time: for sessions to close, wrapperFini and the exit itself.
GRACE_S = 4.0


class SignalThread:
    """Signals heard by a thread of its own: Python's C-level handler writes each one's
    number to a pipe (``signal.set_wakeup_fd``) that the thread reads and hands to
    ``_got``, whatever the main thread is doing."""

    def __init__(self) -> None:
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)
        self._previous_fd = -1

    def listen(self, signals: tuple[signal.Signals, ...]) -> None:
        """From the main thread: ``signals`` go to ``_got`` from now on."""
        self.handle(signals)
        self._previous_fd = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        threading.Thread(target=self._listen, name="aiges-signals", daemon=True).start()

    @staticmethod
    def handle(signals: tuple[signal.Signals, ...]) -> None:
        """(Again) a Python-level handler for ``signals``, so that the C handler writes
        them to the wakeup fd (another library may have taken them meanwhile)."""
        for sig in signals:
            signal.signal(sig, _noted)

    def _listen(self) -> None:
        while True:
            try:
                data = os.read(self._read_fd, 64)
            except OSError:
                return
            for number in data:
                self._got(number)

    def _got(self, number: int) -> None:
        raise NotImplementedError


class StopSignals(SignalThread):
    def __init__(self, loop: asyncio.AbstractEventLoop, on_stop: Callable[[], None],
                 on_hup: Callable[[], None], drain_s: float,
                 stuck: Callable[[], list[dict]]):
        super().__init__()
        self.loop = loop
        self.on_stop = on_stop
        self.on_hup = on_hup
        self.deadline_s = drain_s + GRACE_S
        self.stuck = stuck  # the engine calls running now, for the last log line
        self._stopping = threading.Event()

    def install(self) -> None:
        """From the main thread, with the loop running (after it set up its own fd)."""
        self.listen((*STOP, signal.SIGHUP))

    def uninstall(self) -> None:
        """Stopped cleanly: a late signal must not turn exit 0 into death by signal."""
        for sig in (*STOP, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        signal.set_wakeup_fd(self._previous_fd)

    def _got(self, number: int) -> None:
        if number == signal.SIGHUP:
            self._to_loop(self.on_hup)
        elif number in STOP:
            if self._stopping.is_set():
                log.info("already stopping: signal ignored (the deadline still holds)",
                         extra={"signal": number, "deadline_s": self.deadline_s})
                return
            self._stopping.set()
            self._to_loop(self.on_stop)
            threading.Thread(target=self._deadline, name="aiges-deadline",
                             daemon=True).start()

    def _to_loop(self, fn: Callable[[], None]) -> None:
        try:
            self.loop.call_soon_threadsafe(fn)
        except RuntimeError:
            pass  # the loop is closed: the process is on its way out

    def _deadline(self) -> None:
        threading.Event().wait(self.deadline_s)
        log.error("shutdown did not finish in time: exiting with engine calls still running",
                  extra={"seconds": self.deadline_s, "calls": self.stuck()})
        self.exit_now(1)

    @staticmethod
    def exit_now(code: int) -> None:
        """Exit without waiting for threads stuck in the engine (a normal exit joins
        them, and they never return)."""
        logging.shutdown()
        os._exit(code)


def _noted(signum, frame) -> None:
    """Python-level handler: nothing to do, the thread reading the wakeup fd acts."""
