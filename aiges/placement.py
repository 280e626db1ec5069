"""Where an engine call runs: on the event loop's own thread, or on an engine thread.

Handing a call to a thread and its result back costs two context switches and a
wake-up of the loop: 50-200 microseconds on a busy core, more than a fast engine
spends on its work. So every hot op (exec, write, read, ...) is measured, and an
op that looks fast runs inline on the loop until two inline calls in a row take
longer than the limit; that sends it back to the threads, where a slow call stalls
nobody, and doubles the streak it needs to come back (up to MAX_NEED), so an
engine that is only sometimes fast settles on the threads. Calls with big inputs
always go to a thread: their cost follows their size, not the op's history.

On a thread a call's wall time also counts its wait for the GIL, held by the
busy loop (up to a switch interval, GIL_WAIT_S), so it cannot tell a 20 us call
from a 2 ms one; it only shows that the call did not wait on anything else. Such
calls, ``need`` in a row, promote the op; the inline calls then measure it for
real, in wall time, except a call during which the loop's thread was only
descheduled (``preempted``: no voluntary context switch, little CPU time), which on
a busy machine would otherwise send any engine back. An engine that waits longer
than GIL_WAIT_S (I/O, a GPU, a sleep) never leaves the threads; one that takes
0.1 ms to GIL_WAIT_S costs the loop two calls per promotion, ever rarer as
``need`` doubles.

An engine that is slow from the start never blocks the loop. One that hangs after
a fast streak does: ``Watchdog`` says so in the log, and /health stops answering,
which is what a liveness probe is for. ``[aiges] inlineMaxUs = 0`` keeps every
call on the threads.

Counters are plain ints written from the loop and the engine threads: a lost
update under a race only delays a switch by a call. Knows nothing of HTTP or cffi.
"""
from __future__ import annotations

import logging
import sys
import threading
from resource import RUSAGE_THREAD, getrusage
from time import perf_counter

log = logging.getLogger(__name__)

# Engine ops a request or a session frame waits on; init, fini and resources stay
# on threads (rare, and often slow).
HOT = frozenset({"exec", "execAsync", "create", "write", "read", "destroy", "debugInfo"})
PROMOTE = 32
MAX_NEED = 4096
# The longest a thread returning from C may wait for the loop to hand back the GIL.
GIL_WAIT_S = 2 * sys.getswitchinterval()
# Inputs above this size: on a thread whatever the op's record.
MAX_INLINE_BYTES = 64 * 1024


class Placement:
    def __init__(self, limit_us: int, promote: int = PROMOTE):
        self.limit_s = limit_us / 1e6
        self._streak: dict[str, int] = {}  # op -> fast calls in a row
        self._need: dict[str, int] = {}    # op -> streak that makes it inline
        self._inline: set[str] = set()
        self._promote = promote
        # A slow inline call was seen: sample the loop thread's usage around inline
        # calls (``usage``) until one is fast again. Not per call: a syscall per request.
        self.wary = False

    def inline(self, op: str, size: int = 0) -> bool:
        return op in self._inline and size <= MAX_INLINE_BYTES

    def usage(self):
        """What an inline call starts with: the loop thread's resource usage, sampled
        (a getrusage syscall) only while ``wary``; else UNSAMPLED."""
        return getrusage(RUSAGE_THREAD) if self.wary else UNSAMPLED

    def preempted(self, seconds: float, before) -> bool:
        """An inline call over the limit that neither waited (no voluntary context
        switch of the loop's thread) nor used the CPU time it took: the thread was
        descheduled mid-call, on a busy machine. Says nothing about the engine.
        An unsampled call over the limit counts as slow and makes the placement wary:
        the calls after it are sampled until one is fast, so that the second slow call
        in a row, the one that sends the op back, is judged on its usage."""
        if seconds <= self.limit_s:
            return False
        if before is UNSAMPLED:
            self.wary = True
            return False
        after = getrusage(RUSAGE_THREAD)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        return after.ru_nvcsw == before.ru_nvcsw and cpu <= self.limit_s

    def fast_inline(self, op: str, calls: int = 1) -> None:
        """``record`` of ``calls`` inline calls within the limit, the hot case (an op
        only runs inline once it is promoted), spelled out."""
        self.wary = False
        streak = self._streak[op] = self._streak.get(op, 0) + calls
        if streak >= MAX_NEED and self._need.get(op, self._promote) > self._promote:
            self._forgive(op)

    def _forgive(self, op: str) -> None:
        """A long good run halves the streak an op needs to come back inline."""
        self._need[op], self._streak[op] = self._need[op] // 2, 0

    def record(self, op: str, seconds: float, inline: bool) -> None:
        """A call of ``op`` took ``seconds`` (wall time), ``inline`` on the loop or not."""
        if op not in HOT or self.limit_s <= 0:
            return
        fast = seconds <= self.limit_s + (0.0 if inline else GIL_WAIT_S)
        need = self._need.get(op, self._promote)
        if fast:
            if inline:
                self.wary = False
            streak = self._streak.get(op, 0) + 1
            self._streak[op] = streak
            if op not in self._inline:
                if streak >= need:
                    self._inline.add(op)
                    log.debug("engine op looks fast: runs on the event loop",
                              extra={"op": op, "limit_us": round(self.limit_s * 1e6)})
            elif streak >= MAX_NEED and need > self._promote:
                self._forgive(op)
            return
        streak, self._streak[op] = self._streak.get(op, 0), 0
        if inline and op in self._inline and streak == 0:
            # The second slow call in a row: a lone one is often the first inline call
            # after the threads, on cold caches, or the loop's thread being preempted.
            self._inline.discard(op)
            self._need[op] = min(need * 2, MAX_NEED)
            log.info("engine op slow on the event loop: back on the engine threads",
                     extra={"op": op, "ms": round(seconds * 1000, 3)})


# An inline call whose start was not sampled (Placement.usage).
UNSAMPLED = object()


class Watchdog:
    """Logs an inline call that holds the event loop longer than ``limit_s``: nothing
    else can (the loop is the one stuck), and a C call cannot be interrupted."""

    def __init__(self, limit_s: float):
        self.limit_s = limit_s
        self.op: str | None = None  # the inline call running now; None: none
        self.since = 0.0            # when it began (written before ``op``)
        # Its sid, when the watchdog is the only record of the call (Runner.now's
        # spelled-out path); None when the runner's in-flight table has it too.
        self.sid: str | None = None
        self.running = False        # the watching thread has started
        self._wake = threading.Event()

    def enter(self, op: str) -> None:
        self.since = perf_counter()
        self.sid = None
        self.op = op
        if not self.running:
            self.running = True
            threading.Thread(target=self._watch, name="aiges-watchdog", daemon=True).start()

    def leave(self) -> None:
        self.op = None

    def close(self) -> None:
        self._wake.set()

    def _watch(self) -> None:
        reported = None
        while not self._wake.wait(min(self.limit_s, 1.0)):
            op, started = self.op, self.since
            if op is None or started == reported:
                continue
            held = perf_counter() - started
            if held > self.limit_s:
                reported = started
                log.error("an engine call running on the event loop has blocked it: no "
                          "request is served until it returns",
                          extra={"op": op, "seconds": round(held, 3)})
