"""The compiled engine calls (marshal.c), when they were built.

``Exec(fn_exec, fn_free).call(...)`` runs what CEngine.exec does in Python (build the
lists, wrapperExec, copy the outputs, wrapperExecFree) in one crossing into C, about
three times cheaper for a small request; ``session_calls`` does the same for a
session's wrapperWrite and wrapperRead, and ``outputs`` copies what an engine pushes through its
result callback (on the engine's thread). aiges.native._marshal is built at install
time (setup.py, cffi_modules) and may be missing: no compiler, or a source tree used
without installing; then ``compiled()`` is None and CEngine keeps its Python path.
``AIGES_MARSHAL=abi`` in the environment turns the compiled path off (to compare).
"""
from __future__ import annotations

import logging
import os

from aiges.engine import Data
from aiges.native.cdef import ffi

log = logging.getLogger(__name__)

try:
    from aiges.native._marshal import lib as _lib
except ImportError:  # not built: no compiler at install time
    _lib = None

UINTPTR = ffi.typeof("uintptr_t")
DATA_TYPE = id(Data)  # the class marshal.c makes the outputs with (held by aiges.engine)


def compiled() -> bool:
    return _lib is not None and os.environ.get("AIGES_MARSHAL", "") != "abi"


class Fallback(Exception):
    """marshal.c did not take these inputs (nothing reached the engine): run the Python
    path."""


class Exec:
    """wrapperExec + wrapperExecFree of one library, called from C."""

    __slots__ = ("_exec", "_free")

    def __init__(self, fn_exec, fn_free):
        self._exec = int(ffi.cast(UINTPTR, fn_exec))
        self._free = int(ffi.cast(UINTPTR, fn_free))

    def call(self, tag_addr: int, params: dict[str, str], data: list[Data],
             psr_ids: list[int], meter_slot: int = -1
             ) -> tuple[int, list[Data], list[tuple[str, int]]]:
        """(the engine's code, its outputs, the (key, count) of its meter calls during
        the call when ``meter_slot`` is its slot). ``tag_addr``: the usrTag buffer's
        address, held by the caller for the call. Every argument is held here until C
        returns: the lists it builds point into them."""
        out: list[Data] = []
        meters: list[tuple[str, int]] = []
        ret = _lib.aiges_exec(self._exec, self._free, tag_addr, id(params), id(data),
                              id(psr_ids), DATA_TYPE, id(out), meter_slot, id(meters))
        if ret == _lib.AIGES_FALLBACK:
            raise Fallback
        if ret == _lib.AIGES_PYERR:
            raise MemoryError("copying the engine's outputs failed")
        return ret, out, meters


def meter_entry(fallback) -> tuple[int, int] | None:
    """(slot, trampoline address) of a C meter entry whose calls during a compiled call
    of its engine stay in C (marshal.c); any other call goes on to ``fallback`` (the
    engine's cffi meter callback, kept alive by the caller for the process's life).
    None without the module or once its slots are taken."""
    if not compiled():
        return None
    slot = _lib.aiges_meter_slot(int(ffi.cast(UINTPTR, fallback)))
    return None if slot < 0 else (slot, _lib.aiges_meter_entry(slot))


def session_calls(fn_write, fn_read, on_error, write_abi):
    """``write(session, data)`` and ``read(session)`` of one library, each one crossing
    into C (the engine's code checked there: ``on_error(op, code)`` is raised for one
    that is not 0). ``session``: its ``address`` is the session handle's. Inputs
    marshal.c does not take go to ``write_abi(session, data)``."""
    write_fn = int(ffi.cast(UINTPTR, fn_write))
    read_fn = int(ffi.cast(UINTPTR, fn_read))
    c_write, c_read = _lib.aiges_write, _lib.aiges_read
    fallback, pyerr = _lib.AIGES_FALLBACK, _lib.AIGES_PYERR

    def write(session, data: list[Data]) -> None:
        ret = c_write(write_fn, session.address, id(data), DATA_TYPE)
        if ret:
            if ret == fallback:
                write_abi(session, data)
                return
            raise on_error("write", ret)

    def read(session) -> list[Data] | None:
        out: list[Data] = []
        ret = c_read(read_fn, session.address, DATA_TYPE, id(out))
        if ret:
            if ret == pyerr:
                raise MemoryError("copying the engine's outputs failed")
            raise on_error("read", ret)
        return out or None

    return write, read


def outputs(resp) -> list[Data] | None:
    """The outputs an engine handed its result callback (a DataList pointer, valid
    during the callback only), copied in C; None without the compiled module, or
    when copying failed (the caller then copies in Python)."""
    if not compiled():
        return None
    out: list[Data] = []
    if _lib.aiges_outputs(int(ffi.cast(UINTPTR, resp)), DATA_TYPE, id(out)):
        return None
    return out


class Pushed:
    """Results engines push through sessions' result callbacks, queued in C (pushed.c):
    an engine's thread copies and queues each without the GIL; the loop takes them in
    batches, woken through ``fd`` (an eventfd, readable while results wait). One queue
    per process, for every engine loaded: results are told apart by their usrTag.
    None from ``pushed()`` without the compiled module."""

    __slots__ = ("entry", "fd", "pid")

    def __init__(self, fd: int):
        self.entry = ffi.cast("wrapperCallback", _lib.aiges_push_entry())
        self.fd = fd
        self.pid = os.getpid()  # a forked process makes its own eventfd

    def take(self, readable: bool = False) -> list[tuple[int, int, list[Data] | None]]:
        """(usrTag address, engine's code, outputs or None) of every result queued, in
        the order they came. ``readable``: ``fd`` was seen readable; it is cleared."""
        out: list = []
        ret = _lib.aiges_push_take(DATA_TYPE, id(out), readable)
        if ret == _lib.AIGES_PYERR:
            log.error("copying results an engine pushed failed (out of memory): "
                      "some were dropped")
        elif ret:
            log.warning("callback with an unknown or finished usrTag ignored",
                        extra={"callbacks": ret})
        return out

    @staticmethod
    def open(tag: int) -> None:
        """Results for usrTag address ``tag`` are queued from now on (else the callback
        answers -1)."""
        if _lib.aiges_push_open(tag):
            raise MemoryError("no memory for a session's usrTag")

    @staticmethod
    def close(tag: int) -> None:
        """A callback for ``tag`` is answered -1 from now on."""
        _lib.aiges_push_close(tag)

    @staticmethod
    def hold(held: bool) -> None:
        """While held, engine threads wait (1 ms at most each) before queueing a result:
        a burst of writes is not interrupted by each of its results."""
        _lib.aiges_push_hold(held)


_pushed: Pushed | None = None


def pushed() -> Pushed | None:
    """This process's queue of pushed results; None without the compiled module (or
    with AIGES_MARSHAL=abi), or when no eventfd could be made."""
    global _pushed
    if not compiled():
        return None
    if _pushed is None or _pushed.pid != os.getpid():
        fd = _lib.aiges_push_fd()
        if fd >= 0:
            _pushed = Pushed(fd)
    return _pushed
