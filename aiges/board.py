"""A worker's board: a page of shared memory between one worker and its supervisor.

The worker writes, with plain stores (no syscall, no pipe through the event loop):
- ``beats``: its event loop adds one every BEAT_S. A count that stops moving for
  ``[aiges] workerStallS`` is a loop held by something (an engine call that hangs
  inline): the supervisor kills and replaces the worker.
- one slot per engine call in flight (op, sid, start), written before the call and
  cleared after it. A worker that dies or stalls leaves them behind, so the
  supervisor can say which request it died on, even one that crashed at once.
The supervisor writes its counts of replaced workers; every worker shows them in
/metrics (the supervisor has no HTTP port of its own).

Both sides read ``time.monotonic()``: one system-wide clock on Linux.
"""
from __future__ import annotations

import mmap
import os
import struct
import tempfile
from time import monotonic

BEAT_S = 0.1
SLOTS = 256    # calls in flight at once that are told apart (more share slots)
HEADER = struct.Struct("<QQQ")    # beats; workers replaced: died, stalled
SLOT = struct.Struct("<d16s64s")  # started (0: free), op, sid (cut to fit)
SIZE = HEADER.size + SLOTS * SLOT.size
FREE = struct.Struct("<d")
FD_ENV = "AIGES_BOARD_FD"


class Board:
    def __init__(self, memory: mmap.mmap):
        self.memory = memory
        self._beats = 0
        self._ops: dict[str, bytes] = {}

    @classmethod
    def create(cls) -> tuple[Board, int]:
        """The supervisor's side: a new zeroed board and the fd a worker inherits."""
        if hasattr(os, "memfd_create"):
            fd = os.memfd_create("aiges-board", 0)
        else:
            fd, path = tempfile.mkstemp(prefix="aiges-board-")
            os.unlink(path)
        os.ftruncate(fd, SIZE)
        return cls(mmap.mmap(fd, SIZE)), fd

    @classmethod
    def attach(cls, fd: int) -> Board:
        """The worker's side: the board behind the inherited ``fd`` (closed here; the
        mapping stays, and the engine's own children do not inherit it)."""
        try:
            return cls(mmap.mmap(fd, SIZE))
        finally:
            os.close(fd)

    def close(self) -> None:
        self.memory.close()

    # --- the worker writes -------------------------------------------------------

    def beat(self) -> None:
        self._beats += 1
        struct.pack_into("<Q", self.memory, 0, self._beats)

    def enter(self, token: int, op: str, sid: str) -> None:
        name = self._ops.get(op)
        if name is None:
            name = self._ops[op] = op.encode()[:16]
        SLOT.pack_into(self.memory, _offset(token), monotonic(), name,
                       sid.encode(errors="replace")[:64])

    def leave(self, token: int) -> None:
        FREE.pack_into(self.memory, _offset(token), 0.0)

    # --- the supervisor reads (and writes its counts) -----------------------------

    def beats(self) -> int:
        return HEADER.unpack_from(self.memory)[0]

    def calls(self) -> list[dict]:
        """The engine calls written on the board and not cleared, longest first."""
        now = monotonic()
        calls = []
        for offset in range(HEADER.size, SIZE, SLOT.size):
            started, op, sid = SLOT.unpack_from(self.memory, offset)
            if started:
                calls.append({"op": _text(op), "sid": _text(sid),
                              "seconds": round(max(now - started, 0.0), 3)})
        return sorted(calls, key=lambda call: -call["seconds"])

    def counts(self) -> tuple[int, int]:
        """(died, stalled): the workers the supervisor has replaced."""
        return HEADER.unpack_from(self.memory)[1:]

    def set_counts(self, died: int, stalled: int) -> None:
        struct.pack_into("<QQ", self.memory, 8, died, stalled)


def _offset(token: int) -> int:
    return HEADER.size + (token % SLOTS) * SLOT.size


def _text(raw: bytes) -> str:
    return raw.rstrip(b"\0").decode(errors="replace")
