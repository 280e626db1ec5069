"""A C engine: a shared library opened in ABI mode, behind the Engine protocol."""
from __future__ import annotations

import logging
import shutil
import sys
import tempfile
import threading
from collections import deque
from pathlib import Path

from aiges.engine import Data, MeterCallback, Modes, ResultCallback, TraceCallback
from aiges.errors import EngineError, EngineLoadError, Unsupported
from aiges.native import lists, marshal
from aiges.native.cdef import ffi
from aiges.native.embedded import refuse_embedded
from aiges.native.symbols import ALL, check

log = logging.getLogger(__name__)
NULL = ffi.NULL
# Meter keys and trace texts are engine strings: copied, at most this many bytes.
CTRL_TEXT_MAX = 4096
UINTPTR = ffi.typeof("uintptr_t")
DATA_OUT = ffi.typeof("pDataList*")
TAGS = ffi.typeof("const char*[]")
PARAMS = ffi.typeof("pParamList[]")
DATAS = ffi.typeof("pDataList[]")
# wrapperHealth's reason: at most this many bytes (with its NUL).
HEALTH_DETAIL_MAX = 512
INTS = ffi.typeof("int[]")


def load(path: str | Path, private: bool = False) -> "CEngine":
    """``private``: open a copy of the library made for this engine alone (a hot reload),
    so that the dynamic loader maps a new image with its own state."""
    return CEngine(str(path), private)


def _private_copy(path: str) -> Path:
    """A copy of ``path`` in a new temp dir. dlopen hands back an image already mapped
    under the same name or the same file (device, inode); a fresh name on a fresh
    inode is always a new image, even of a library with -z nodelete. Deleted as soon as
    it is mapped: nothing is left in the temp dir, even if the process is killed."""
    folder = Path(tempfile.mkdtemp(prefix="aiges-engine-"))
    copy = folder / Path(path).name
    try:
        shutil.copyfile(path, copy)
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise EngineLoadError(f"cannot open {path}: {exc.strerror or exc}") from exc
    return copy


class _Tags:
    """usrTag buffers by address, for every call that hands one to the engine.

    A callback is matched by the pointer value alone, never by reading through it:
    a late or unknown tag is ignored (result callbacks) or reported as sid "-"
    (meter and trace). Every change is one dict operation, atomic under the GIL, so
    engine threads and the loop need no lock. Finished tags stay allocated for a while in ``_retired`` so
    that a late callback cannot hit an address already reused by a newer request,
    and an engine that reads its tag late reads valid memory.
    """

    def __init__(self, retired: int = 65536):
        # addr -> (buffer, sid, result handler or None, handler called once)
        self._live: dict[int, tuple[object, str, ResultCallback | None, bool]] = {}
        self._retired: deque = deque(maxlen=retired)

    def open(self, text: str, handler: ResultCallback | None = None,
             once: bool = True) -> tuple[object, int]:
        buf = ffi.new(lists.CHARS, text.encode())
        addr = int(ffi.cast(UINTPTR, buf))
        self._live[addr] = (buf, text, handler, once)  # a new address: no race to lose
        return buf, addr

    def sid(self, addr: int) -> str:
        entry = self._live.get(addr)
        return "-" if entry is None else entry[1]

    def claim(self, addr: int) -> ResultCallback | None:
        entry = self._live.get(addr)
        if entry is None or entry[2] is None:
            return None
        if entry[3]:
            # One atomic pop: of two callbacks for one call (or a callback racing the
            # request giving up) exactly one gets the handler.
            entry = self._live.pop(addr, None)
            if entry is None:
                return None
            self._retired.append(entry[0])
        return entry[2]

    def close(self, addr: int) -> None:
        # One dict pop: atomic, so a claim racing it gets the entry or nothing.
        entry = self._live.pop(addr, None)
        if entry is not None:
            self._retired.append(entry[0])


# usrTag address -> the tags of the engine whose session it is: a result queued in C
# (marshal.Pushed) comes back with its tag alone, whatever engine pushed it.
_PUSH_ROUTES: dict[int, _Tags] = {}
_TAKING = threading.RLock()
_taking = False


class _Pushed:
    """The Engine protocol's ``pushed`` over marshal.Pushed: every queued result handed
    to its session's handler, on the caller's thread."""

    def __init__(self, queue: marshal.Pushed):
        self.entry = queue.entry  # the wrapperCallback handed to wrapperCreate
        self.fd = queue.fd
        self.hold = queue.hold
        self._take = queue.take
        self._queue = queue

    def open(self, addr: int, tags: _Tags) -> None:
        """Results for the session of usrTag ``addr`` are queued, and reach ``tags``."""
        _PUSH_ROUTES[addr] = tags
        self._queue.open(addr)

    def close(self, addr: int) -> None:
        """After the session's last take: its callbacks are answered -1."""
        self._queue.close(addr)
        _PUSH_ROUTES.pop(addr, None)

    def take(self, readable: bool = False) -> None:
        global _taking
        with _TAKING:  # a session's results handed over in order, whoever takes them
            if _taking:
                return  # from a handler, on this thread: the take under way goes on, in order
            _taking = True
            try:
                self._hand_over(readable)
            finally:
                _taking = False

    def _hand_over(self, readable: bool) -> None:
        for addr, ret, items in self._take(readable):
            tags = _PUSH_ROUTES.get(addr)
            handler = tags.claim(addr) if tags is not None else None
            if handler is None:
                log.warning("callback with an unknown or finished usrTag ignored",
                            extra={"ret": ret})
                continue
            try:
                handler(items, ret)
            except Exception:  # noqa: BLE001 - as a callback's error: logged, not raised
                log.exception("error in engine callback")


class _Ctrl:
    """One engine's wrapperSetCtrl callbacks. The library keeps the pointers with no
    way in the ABI to take them back, and its image can outlive the CEngine (linked
    -z nodelete, or with threads of its own), so the trampolines live as long as the
    process (``_GIVEN``: two small objects per engine loaded); once the engine is
    closed they answer without passing anything on."""

    def __init__(self, tags: _Tags, on_error):
        self.tags: _Tags | None = tags
        self.meter: MeterCallback | None = None
        self.trace: TraceCallback | None = None  # None: trace lines are not logged
        self._on_error = on_error
        self.pairs = [
            ("CTMeterCustom", ffi.callback("wrapperMeterCustom", self._on_meter, error=-1,
                                           onerror=on_error)),
            ("CTTraceLog", ffi.callback("wrapperTraceLog", self._on_trace, error=-1,
                                        onerror=on_error)),
        ]
        # With the compiled module the engine gets a C entry for its meter calls: those
        # made during a compiled exec come back with its result (``metered``), the rest
        # go on to the callback above.
        entry = marshal.meter_entry(self.pairs[0][1])
        self.slot = -1
        if entry is not None:
            self.slot, address = entry
            self.given = [ffi.cast("void*", address), ffi.cast("void*", self.pairs[1][1])]
        else:
            self.given = [ffi.cast("void*", callback) for _, callback in self.pairs]

    def metered(self, sid: str, meters: list[tuple[str, int]]) -> None:
        """The meter calls an engine made during a compiled exec, as they would have
        come through ``_on_meter``."""
        meter = self.meter
        if meter is None:
            return
        for key, count in meters:
            try:
                meter(sid, key, count)
            except Exception:  # noqa: BLE001 - as a callback's error: logged, not raised
                self._on_error(*sys.exc_info())

    def _sid(self, usr_tag) -> str:
        # usrTag may be stale or NULL: only its value is looked up, never read through.
        tags = self.tags
        return tags.sid(int(ffi.cast(UINTPTR, usr_tag))) if tags is not None else "-"

    def _on_meter(self, usr_tag, key, count):
        meter = self.meter
        if meter is not None:
            meter(self._sid(usr_tag), lists.text(key, CTRL_TEXT_MAX), count)
        return 0

    def _on_trace(self, usr_tag, key, value):
        trace = self.trace
        if trace is not None:
            trace(self._sid(usr_tag), lists.text(key, CTRL_TEXT_MAX),
                  lists.text(value, CTRL_TEXT_MAX))
        return 0

    def close(self) -> None:
        self.tags = self.meter = self.trace = None


_GIVEN: list[_Ctrl] = []


class _Session:
    __slots__ = ("handle", "tag", "addr", "address")

    def __init__(self, handle, tag, addr):
        self.handle, self.tag, self.addr = handle, tag, addr
        self.address = int(ffi.cast(UINTPTR, handle))  # for the compiled calls


class CEngine:
    """Engine protocol over a wrapper ABI library. Thread-safe as the ABI requires:
    calls for different requests may run concurrently on different threads."""

    def __init__(self, path: str, private: bool = False):
        self.path = path
        self.routes: list[str] = []  # the ABI declares no route: /v1/{service} only
        self._lib = None
        refuse_embedded(path)  # it would abort this process inside dlopen
        copy = _private_copy(path) if private else None
        try:
            image = str(copy or path)
            try:
                self._lib = ffi.dlopen(image)
            except OSError as exc:
                raise EngineLoadError(f"cannot open {path}: "
                                      f"{str(exc).replace(image, path)}") from exc
            finally:
                if copy is not None:
                    shutil.rmtree(copy.parent, ignore_errors=True)
            self._fn = {name: self._symbol(name) for name in ALL}
            self.modes: Modes = check(path, {n for n, f in self._fn.items() if f is not None})
        except EngineLoadError:
            self._release()  # a refused reload leaves nothing behind
            raise
        self._tags = _Tags()
        compiled = marshal.compiled()
        self._exec = (marshal.Exec(self._fn["wrapperExec"], self._fn["wrapperExecFree"])
                      if compiled and self.modes.once_sync else None)
        self._session_calls = (marshal.session_calls(
            self._fn["wrapperWrite"], self._fn["wrapperRead"], self._error, self._write_abi)
            if compiled and self.modes.session else None)
        if self._session_calls is not None:
            # Called once a frame: the compiled calls themselves, no method around them.
            self.write, self.read = self._session_calls
        # Kept for the library's lifetime: the engine may call it from any thread, any time.
        self._callback = ffi.callback("wrapperCallback", self._on_result, error=-1,
                                      onerror=self._on_callback_error)
        # Sessions' results go through the C queue where it was built (no GIL on the
        # engine's thread); once requests' through the Python callback above.
        queue = marshal.pushed() if self.modes.session else None
        self.pushed = _Pushed(queue) if queue is not None else None
        self._ctrl: _Ctrl | None = None
        self._closed = False

    def _symbol(self, name: str):
        try:
            return getattr(self._lib, name)
        except (AttributeError, ffi.error):  # ffi.error: a declared symbol not in the library
            return None

    def _error(self, op: str, code: int) -> EngineError:
        return EngineError(op, code, self.error_text(code))

    # -- lifecycle -------------------------------------------------------------------
    def version(self) -> str:
        fn = self._fn["wrapperVersion"]
        return lists.text(fn()) if fn else ""

    def error_text(self, code: int) -> str:
        fn = self._fn["wrapperError"]
        text = lists.text(fn(code)) if fn else ""
        return text or f"engine error {code}"

    def set_ctrl(self, meter: MeterCallback, trace: TraceCallback) -> None:
        """wrapperSetCtrl(CTMeterCustom) and (CTTraceLog), when the library exports it,
        for each that is not None: an engine given no trace callback does not cross into
        Python for every trace line that would not be logged."""
        fn = self._fn["wrapperSetCtrl"]
        if fn is None:
            return
        if self._ctrl is None:
            self._ctrl = _Ctrl(self._tags, self._on_callback_error)
            _GIVEN.append(self._ctrl)
        self._ctrl.meter, self._ctrl.trace = meter, trace
        for (kind, _), entry, given in zip(self._ctrl.pairs, self._ctrl.given, (meter, trace),
                                           strict=True):
            if given is None:
                continue
            ret = fn(getattr(self._lib, kind), entry)
            if ret:
                log.warning("wrapperSetCtrl refused a callback",
                            extra={"type": kind, "code": ret, "error": self.error_text(ret)})

    def init(self, config: dict[str, str]) -> None:
        keep: list = []
        ret = self._fn["wrapperInit"](lists.param_list(config, keep))
        if ret:
            raise self._error("init", ret)

    def fini(self) -> None:
        fn = self._fn["wrapperFini"]
        ret = fn() if fn else 0
        if ret:
            raise self._error("fini", ret)

    def health(self) -> tuple[bool, str] | None:
        """wrapperHealth (an aiges extension): (ok, the engine's reason), or None when
        the library does not export it."""
        fn = self._fn["wrapperHealth"]
        if fn is None:
            return None
        detail = ffi.new("char[]", HEALTH_DETAIL_MAX)
        ret = fn(detail, HEALTH_DETAIL_MAX)
        detail[HEALTH_DETAIL_MAX - 1] = b"\0"  # an engine that ignored detailLen
        text = ffi.string(detail).decode(errors="replace")
        if ret:
            return False, text or f"wrapperHealth returned {ret}"
        return True, text

    @property
    def cancellable(self) -> bool:
        return self._fn["wrapperCancel"] is not None

    def cancel(self, tag: str) -> int:
        """wrapperCancel (an aiges extension) with a copy of ``tag``: the engine matches
        it by its text, never by the pointer of the call it cancels."""
        fn = self._fn["wrapperCancel"]
        return fn(tag.encode()) if fn is not None else 0

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._ctrl is not None:
                self._ctrl.close()
            self._release()

    def _release(self) -> None:
        if self._lib is not None:
            ffi.dlclose(self._lib)
            self._lib = None

    # -- once --------------------------------------------------------------------------
    def exec(self, tag: str, params: dict[str, str], data: list[Data],
             psr_ids: list[int]) -> list[Data]:
        """One crossing into the compiled marshalling (aiges/native/marshal.c) where it
        was built; else, or for inputs it does not take, the same steps here."""
        compiled = self._exec
        if compiled is not None:
            ctrl = self._ctrl
            tag_buf, addr = self._tags.open(tag)
            try:
                ret, items, meters = compiled.call(addr, params, data, psr_ids,
                                                   ctrl.slot if ctrl is not None else -1)
            except marshal.Fallback:
                pass
            else:
                if meters:
                    ctrl.metered(tag, meters)
                if ret:
                    raise self._error("exec", ret)
                return items
            finally:
                self._tags.close(addr)
        return self._exec_abi(tag, params, data, psr_ids)

    def _exec_abi(self, tag: str, params: dict[str, str], data: list[Data],
                  psr_ids: list[int]) -> list[Data]:
        keep: list = []
        tag_buf, addr = self._tags.open(tag)
        out = ffi.new(DATA_OUT)
        try:
            ret = self._fn["wrapperExec"](tag_buf, lists.param_list(params, keep),
                                          lists.data_list(data, keep), out,
                                          lists.u32_array(psr_ids, keep), len(psr_ids))
            if ret:
                raise self._error("exec", ret)
            return lists.read_data(out[0])
        finally:
            if out[0] != NULL:
                self._fn["wrapperExecFree"](tag_buf, out)
            self._tags.close(addr)

    def exec_batch(self, tags: list[str], params: list[dict[str, str]],
                   data: list[list[Data]]) -> list[list[Data] | EngineError]:
        """wrapperExecBatch: per item its outputs or its EngineError; the whole call's
        failure raised. Every respData[i] the engine filled is freed, whatever happened."""
        n = len(tags)
        keep: list = []
        opened = [self._tags.open(tag) for tag in tags]
        tag_bufs = ffi.new(TAGS, [buf for buf, _ in opened])
        param_heads = ffi.new(PARAMS, [lists.param_list(p, keep) for p in params])
        data_heads = ffi.new(DATAS, [lists.data_list(d, keep) for d in data])
        outs = ffi.new(DATAS, n)
        errs = ffi.new(INTS, n)
        try:
            ret = self._fn["wrapperExecBatch"](n, tag_bufs, param_heads, data_heads, outs, errs)
            if ret:
                raise self._error("execBatch", ret)
            # The engine's error texts are read here, on the calling thread, as for exec.
            return [self._error("exec", errs[i]) if errs[i] else lists.read_data(outs[i])
                    for i in range(n)]
        finally:
            free = self._fn["wrapperExecFree"]
            for i, (buf, addr) in enumerate(opened):
                if outs[i] != NULL:
                    free(buf, outs + i)
                self._tags.close(addr)

    def exec_async(self, tag: str, params: dict[str, str], data: list[Data],
                   psr_ids: list[int], timeout_ms: int, on_result: ResultCallback) -> object:
        keep: list = []
        tag_buf, addr = self._tags.open(tag, on_result, once=True)
        ret = self._fn["wrapperExecAsync"](tag_buf, lists.param_list(params, keep),
                                           lists.data_list(data, keep), self._callback,
                                           timeout_ms, lists.u32_array(psr_ids, keep),
                                           len(psr_ids))
        if ret:
            self._tags.close(addr)
            raise self._error("execAsync", ret)
        return addr

    def forget(self, token: object) -> None:
        self._tags.close(token)

    def _on_result(self, usr_tag, resp, ret):
        handler = self._tags.claim(int(ffi.cast(UINTPTR, usr_tag)))
        if handler is None:
            log.warning("callback with an unknown or finished usrTag ignored", extra={"ret": ret})
            return -1
        items = None
        if ret == 0:  # the list is the engine's, valid during this call only: copied now
            items = marshal.outputs(resp)
            if items is None:
                items = lists.read_data(resp)
        handler(items, ret)
        return 0

    @staticmethod
    def _on_callback_error(exc_type, exc, tb):
        log.error("error in engine callback", exc_info=(exc_type, exc, tb))

    # -- personalization -----------------------------------------------------------------------
    def load_res(self, res_id: int, data: list[Data]) -> None:
        keep: list = []
        fn = self._fn["wrapperLoadRes"]
        if fn is None:
            raise Unsupported("wrapperLoadRes", "it cannot load personalization resources")
        ret = fn(lists.data_list(data, keep), res_id)
        if ret:
            raise self._error("loadRes", ret)

    def unload_res(self, res_id: int) -> None:
        fn = self._fn["wrapperUnloadRes"]
        if fn is None:
            raise Unsupported("wrapperUnloadRes", "it cannot unload resources")
        ret = fn(res_id)
        if ret:
            raise self._error("unloadRes", ret)

    # -- sessions ------------------------------------------------------------------------
    def create(self, tag: str, params: dict[str, str], psr_ids: list[int],
               on_result: ResultCallback | None) -> object:
        keep: list = []
        tag_buf, addr = self._tags.open(tag, on_result, once=False)
        callback = NULL
        if on_result is not None and self.pushed is not None:
            self.pushed.open(addr, self._tags)
            callback = self.pushed.entry
        elif on_result is not None:
            callback = self._callback
        err = ffi.new("int*")
        handle = self._fn["wrapperCreate"](tag_buf, lists.param_list(params, keep), callback,
                                           lists.u32_array(psr_ids, keep), len(psr_ids), err)
        if handle == NULL or err[0]:
            if handle != NULL:
                self._fn["wrapperDestroy"](handle)
            self._tags.close(addr)
            if self.pushed is not None:
                self.pushed.close(addr)
            raise self._error("create", err[0] or -1)
        return _Session(handle, tag_buf, addr)

    def write(self, session: _Session, data: list[Data]) -> None:
        """(Where aiges.native._marshal was built, the instance's own ``write`` and
        ``read`` are its compiled calls, marshal.session_calls.)"""
        self._write_abi(session, data)

    def _write_abi(self, session: _Session, data: list[Data]) -> None:
        keep: list = []
        ret = self._fn["wrapperWrite"](session.handle, lists.data_list(data, keep))
        if ret:
            raise self._error("write", ret)

    def read(self, session: _Session) -> list[Data] | None:
        return self._read_abi(session)

    def _read_abi(self, session: _Session) -> list[Data] | None:
        out = ffi.new("pDataList*")
        ret = self._fn["wrapperRead"](session.handle, out)
        if ret:
            raise self._error("read", ret)
        return lists.read_data(out[0]) if out[0] != NULL else None

    def debug_info(self, session: _Session) -> str | None:
        fn = self._fn["wrapperDebugInfo"]
        return lists.text(fn(session.handle)) if fn else None

    def destroy(self, session: _Session) -> None:
        ret = self._fn["wrapperDestroy"](session.handle)
        if self.pushed is not None:
            self.pushed.take()  # what it pushed before it returned still reaches its session
            self.pushed.close(session.addr)
        self._tags.close(session.addr)
        if ret:
            raise self._error("destroy", ret)
