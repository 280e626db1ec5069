"""SIGTERM and SIGINT for ``aiges-load --ray``, heard by a thread of its own.

Ray's calls block inside C++ (ray.init retries an address where nothing answers for
about 40 s), where a Python-level handler would only run once they return. Here, as
in aiges/shutdown.py, Python's C-level handler writes the signal number to a pipe
(``signal.set_wakeup_fd``) that a thread reads, whatever the main thread is doing:

- until the process is connected to Ray nothing of it is on the cluster: a signal
  exits at once (a local Ray it was starting goes with it: Ray ties those processes
  to their parent);
- afterwards the first signal sets ``stopping``, which every wait of the main thread
  sees (deploying, serving), and arms a deadline: deleting the application and
  leaving Ray must end within it, else the process says what may be left on the
  cluster and exits 1. Later signals change nothing.
"""
from __future__ import annotations

import logging
import os
import signal
import threading

from aiges.shutdown import SignalThread

log = logging.getLogger("aiges")

STOP = (signal.SIGTERM, signal.SIGINT)


class StopSignals(SignalThread):
    def __init__(self, deadline_s: float, app: str):
        super().__init__()
        self.deadline_s = deadline_s  # from the first signal to the exit
        self.app = app
        self.stopping = threading.Event()
        self.signum = 0
        self._connected = False

    @property
    def exit_code(self) -> int:
        """For a stop before the application served: the shell's 128 + signal."""
        return 128 + self.signum

    def install(self) -> None:
        """From the main thread, before anything of Ray is imported."""
        self.listen(STOP)

    def connected(self) -> None:
        """Connected to Ray: from now a signal asks the main thread to stop. Takes
        SIGTERM back from ray.init, whose own handler would raise SystemExit."""
        self.handle(STOP)
        self._connected = True

    def uninstall(self) -> None:
        """Stopped cleanly: a late signal must not turn the exit status into death by
        signal."""
        for sig in STOP:
            signal.signal(sig, signal.SIG_IGN)

    def _got(self, number: int) -> None:
        if number not in STOP:
            return  # another handler's signal (Ray installs some)
        if not self._connected:
            self.signum = number
            log.info("stopped while connecting to Ray", extra={"signal": number})
            exit_now(self.exit_code)
        if self.stopping.is_set():
            log.info("already stopping: signal ignored (the deadline still holds)",
                     extra={"signal": number, "deadline_s": self.deadline_s})
            return
        self.signum = number
        self.stopping.set()
        threading.Thread(target=self._deadline, name="aiges-deadline", daemon=True).start()

    def _deadline(self) -> None:
        threading.Event().wait(self.deadline_s)
        log.error(f"stopping took longer than {self.deadline_s:g} s: exiting; the Serve "
                  f"application {self.app!r} may still be on the cluster (`serve status`; "
                  f"remove it with serve.delete({self.app!r}) or `serve shutdown`)")
        exit_now(1)


def exit_now(code: int) -> None:
    """Exit without waiting for the main thread, blocked in a call of Ray's."""
    logging.shutdown()
    os._exit(code)

