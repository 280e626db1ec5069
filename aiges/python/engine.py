"""A Python engine: ``class Wrapper(WrapperBase)`` from a wrapper.py, behind the Engine protocol."""
from __future__ import annotations

import importlib.util
import logging
import sys
import uuid
from pathlib import Path

from aiges.dto import DataListCls, DataListNode, Response
from aiges.engine import Data, DataStatus, Modes, ResultCallback
from aiges.errors import EngineError, EngineLoadError, Unsupported
from aiges.python import upstream_schema
from aiges.python.binding import bind
from aiges.python.push import routes
from aiges.sdk import WrapperBase
from aiges.stream import SessionManager

log = logging.getLogger(__name__)

FINAL = frozenset((int(DataStatus.END), int(DataStatus.ONCE)))


def load(path: str | Path, private: bool = False) -> "PythonEngine":
    """``private``: import the file as a module of its own (a hot reload), so the new
    code runs even when an older version of it is loaded already."""
    return PythonEngine(str(path), private)


def _import(path: Path, name: str):
    if not path.is_file():
        raise EngineLoadError(f"cannot open {path}: no such file")
    # Wrappers import their neighbours (model code, utils) as top-level modules.
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    if importlib.util.find_spec("aiges_embed") is None:  # an install older than aiges_embed
        from aiges.python import embed
        sys.modules["aiges_embed"] = embed
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # so inspect and pickle can find the wrapper's module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(spec.name, None)
        raise EngineLoadError(f"cannot import {path}: {type(exc).__name__}: {exc}") from exc
    wrapper_cls = getattr(module, "Wrapper", None)
    if not isinstance(wrapper_cls, type):
        raise EngineLoadError(f"{path} defines no class Wrapper (class Wrapper(WrapperBase))")
    return wrapper_cls


def _module_name(path: Path, private: bool) -> str:
    name = f"aiges_wrapper_{path.parent.name}"
    return f"{name}_{uuid.uuid4().hex[:12]}" if private else name


class _Session:
    __slots__ = ("handle", "sid")

    def __init__(self, handle, sid):
        self.handle, self.sid = handle, sid


class PythonEngine:
    def __init__(self, path: str, private: bool = False):
        self.path = path
        self._module = _module_name(Path(path), private)
        cls = _import(Path(path), self._module)
        try:
            self.wrapper = cls()
        except Exception as exc:
            raise EngineLoadError(f"{path}: Wrapper() failed: {type(exc).__name__}: {exc}") from exc
        once = self._defines("wrapperOnceExec")
        self.modes = Modes(once_sync=once, once_async=False,
                           session=self._defines("wrapperCreate") and self._defines("wrapperWrite"),
                           batch=once and self._defines("wrapperOnceExecBatch"))
        if not (self.modes.once_sync or self.modes.session):
            raise EngineLoadError(f"{path}: Wrapper defines neither wrapperOnceExec nor "
                                  f"wrapperCreate + wrapperWrite")
        w = self.wrapper
        self._init = bind(w.wrapperInit, ("config",))
        self._error = bind(w.wrapperError, ("ret",))
        self._exec = bind(w.wrapperOnceExec, ("params", "data", "tag", "pers", "sid"))
        self._create = bind(w.wrapperCreate, ("params", "sid", "pers", "tag"))
        self._write = bind(w.wrapperWrite, ("handle", "data", "sid"))
        self._read = bind(w.wrapperRead, ("handle", "sid"))
        self._destroy = bind(w.wrapperDestroy, ("handle", "sid"))
        self._load_res = bind(w.wrapperLoadRes, ("data", "pers"))
        self._unload_res = bind(w.wrapperUnloadRes, ("pers",))

    def _defines(self, name: str) -> bool:
        return getattr(type(self.wrapper), name, None) is not getattr(WrapperBase, name)

    def _call(self, op: str, fn, *values):
        """User code: an exception becomes an EngineError of ``op``, like a C error code."""
        try:
            return fn(*values)
        except EngineError:
            raise
        except Exception as exc:
            raise self._raised(op, exc) from exc

    @staticmethod
    def _raised(op: str, exc: Exception) -> EngineError:
        """What the wrapper's exception in ``op`` becomes (logged with its traceback)."""
        log.exception("wrapper raised", extra={"op": op})
        return EngineError(op, -1, f"{type(exc).__name__}: {exc}")

    def _check(self, op: str, ret) -> None:
        if ret:
            raise EngineError(op, int(ret), self.error_text(int(ret)))

    @property
    def routes(self) -> list[str]:
        """Where upstream serves this wrapper: its ``route`` (one path or a list), else
        ``/{version}/private/{serviceId}`` once it names a serviceId."""
        w = self.wrapper
        if not getattr(type(w), "route", None) and not (w.serviceId and w.version):
            return []
        found = upstream_schema.route(w)
        return [str(r) for r in found] if isinstance(found, (list, tuple)) else [str(found)]

    # -- lifecycle ---------------------------------------------------------------------------
    def version(self) -> str:
        return str(getattr(self.wrapper, "version", "") or "")

    def error_text(self, code: int) -> str:
        try:
            text = self._error(code)
        except Exception:  # the error path must not fail
            text = ""
        return str(text) if text else f"engine error {code}"

    def init(self, config: dict[str, str]) -> None:
        self._check("init", self._call("init", self._init, dict(config)))

    def fini(self) -> None:
        self._check("fini", self._call("fini", self.wrapper.wrapperFini))

    def set_ctrl(self, meter, trace) -> None:
        """Where ``aiges_embed.callback_metric``/``callback_trace`` go (one process, one
        engine serving: the newest engine's callbacks win)."""
        routes.set_ctrl(meter, trace)

    def close(self) -> None:
        # The session threads of aiges.stream end with their engine (a reload replaces it).
        session = getattr(self.wrapper, "session", None)
        if isinstance(session, SessionManager):
            session.close()
        # A reloaded wrapper's old module is no longer reachable by name: it can be freed.
        module = sys.modules.get(self._module)
        if module is not None and getattr(module, "Wrapper", None) is type(self.wrapper):
            del sys.modules[self._module]

    # -- once ----------------------------------------------------------------------------------
    def exec(self, tag: str, params: dict[str, str], data: list[Data],
             psr_ids: list[int]) -> list[Data]:
        response = self._call("exec", self._exec, dict(params), _request(data), tag,
                              psr_ids[0] if psr_ids else 0, tag)
        return self._outputs("exec", response) or []

    def exec_async(self, *args, **kwargs):
        raise EngineError("execAsync", -1, "Python engines run one-shot requests with wrapperOnceExec")

    def exec_batch(self, tags: list[str], params: list[dict[str, str]],
                   data: list[list[Data]]) -> list[list[Data] | EngineError]:
        """wrapperOnceExecBatch (an aiges extension): one Response per item, its error
        code that item's alone; a non-zero int returned (an error code, as a C engine's
        return), an exception, or a wrong count fails the whole call."""
        batch = ([dict(p) for p in params], [_request(d) for d in data], list(tags))
        # Positional: wrappers name these parameters as they like.
        responses = self._call("execBatch", lambda: self.wrapper.wrapperOnceExecBatch(*batch))
        if isinstance(responses, int) and responses:
            raise EngineError("execBatch", responses, self.error_text(responses))
        if not isinstance(responses, (list, tuple)) or len(responses) != len(tags):
            raise EngineError("execBatch", -1, f"wrapperOnceExecBatch returned "
                              f"{_count(responses)} for {len(tags)} requests")
        results: list[list[Data] | EngineError] = []
        for response in responses:
            try:
                results.append(self._outputs("exec", response) or [])
            except EngineError as exc:
                results.append(exc)
        return results

    def forget(self, token) -> None:
        pass

    def health(self) -> tuple[bool, str] | None:
        """WrapperBase.wrapperHealth (an aiges extension), only when the Wrapper overrides
        it: (ok, detail). An exception or a malformed answer counts as unhealthy."""
        if not self._defines("wrapperHealth"):
            return None
        try:
            answer = self.wrapper.wrapperHealth()
        except Exception as exc:  # noqa: BLE001 (the engine's own failure: its reason)
            return False, f"wrapperHealth raised {type(exc).__name__}: {exc}"
        if isinstance(answer, bool):
            return answer, ""
        if isinstance(answer, (tuple, list)) and len(answer) == 2:
            return bool(answer[0]), str(answer[1] or "")
        return False, f"wrapperHealth returned {type(answer).__name__}, not (ok, detail)"

    @property
    def cancellable(self) -> bool:
        return self._defines("wrapperCancel")

    def cancel(self, tag: str) -> int:
        """WrapperBase.wrapperCancel (an aiges extension), only when the Wrapper
        overrides it; what it returns is passed on (an int, else 0)."""
        if not self._defines("wrapperCancel"):
            return 0
        ret = self.wrapper.wrapperCancel(tag)
        return ret if isinstance(ret, int) else 0

    def _outputs(self, op: str, response) -> list[Data] | None:
        if response is None:
            return None
        if not isinstance(response, Response) and not hasattr(response, "list"):
            raise EngineError(op, -1, f"wrapper returned {type(response).__name__}, not Response")
        code = getattr(response, "error_code", 0)
        if code:
            self._check(op, code)
        items = []
        for node in response.list or ():
            item = _data(node)
            # Upstream wrappers answer "nothing yet" with an empty, non-final item.
            if item.data or item.status in FINAL:
                items.append(item)
        return items or None

    # -- personalization -----------------------------------------------------------------------
    def load_res(self, res_id: int, data: list[Data]) -> None:
        # WrapperBase's default returns 0: accepting a resource nobody keeps would mislead.
        if not self._defines("wrapperLoadRes"):
            raise Unsupported("wrapperLoadRes", "it cannot load personalization resources")
        self._check("loadRes", self._call("loadRes", self._load_res, _request(data), res_id))

    def unload_res(self, res_id: int) -> None:
        self._check("unloadRes", self._call("unloadRes", self._unload_res, res_id))

    # -- sessions --------------------------------------------------------------------------------
    def create(self, tag: str, params: dict[str, str], psr_ids: list[int],
               on_result: ResultCallback | None) -> _Session:
        if on_result is not None:
            routes.add(tag, self._route(on_result))
        try:
            made = self._call("create", self._create, dict(params), tag,
                              psr_ids[0] if psr_ids else 0, tag)
            # Upstream examples answer some failures with a bare -1, not a response.
            code = getattr(made, "error_code", 0) if hasattr(made, "handle") else \
                (int(made) if isinstance(made, int) and made else -1)
            self._check("create", code)
        except EngineError:
            routes.remove(tag)
            raise
        return _Session(made.handle, tag)

    def _route(self, on_result: ResultCallback):
        """What the SDK's callback calls with a session's pushed Response, on the
        engine's thread: a closure, not a partial with a keyword (which builds a dict a
        call), as every push of an asyncMode session pays for it under the GIL."""
        outputs = self._outputs

        def pushed(response) -> None:
            code = getattr(response, "error_code", 0)
            if code and int(code):
                on_result(None, int(code))
                return
            on_result(outputs("callback", response) or [], 0)

        return pushed

    # write and read: _call and _check spelled out (once a frame each).
    def write(self, session: _Session, data: list[Data]) -> None:
        try:
            ret = self._write(session.handle, _request(data), session.sid)
        except EngineError:
            raise
        except Exception as exc:
            raise self._raised("write", exc) from exc
        if ret:
            self._check("write", ret)

    def read(self, session: _Session) -> list[Data] | None:
        try:
            response = self._read(session.handle, session.sid)
        except EngineError:
            raise
        except Exception as exc:
            raise self._raised("read", exc) from exc
        return None if response is None else self._outputs("read", response)

    def debug_info(self, session: _Session) -> str | None:
        return None

    def destroy(self, session: _Session) -> None:
        try:
            self._check("destroy", self._call("destroy", self._destroy, session.handle,
                                              session.sid))
        finally:
            routes.remove(session.sid)


def _count(responses) -> str:
    if isinstance(responses, (list, tuple)):
        return f"{len(responses)} responses"
    return type(responses).__name__


def _request(data: list[Data]) -> DataListCls:
    if len(data) == 1:  # the common frame: no comprehension's own frame
        d = data[0]
        return DataListCls([DataListNode(d.key, d.data, len(d.data), int(d.type),
                                         int(d.status), dict(d.desc))])
    return DataListCls([DataListNode(d.key, d.data, len(d.data), int(d.type), int(d.status),
                                     dict(d.desc)) for d in data])


def _data(node) -> Data:
    raw = node.data
    if type(raw) is bytes:  # the common case first: one check
        pass
    elif isinstance(raw, str):
        raw = raw.encode()
    elif raw is None:
        raw = b""
    else:
        raw = bytes(raw)
    desc = getattr(node, "desc", None)
    if desc:
        for k, v in desc.items():  # the common case, text only: copied as it is
            if type(k) is not str or type(v) is not str:
                desc = {str(k): str(v) for k, v in desc.items()}
                break
        else:
            desc = dict(desc)
    else:
        desc = {}
    key, kind, status = node.key, node.type, node.status
    # The common case first: plain str and ints need no conversion.
    return Data(key if type(key) is str else str(key), raw,
                kind if type(kind) is int else int(kind),
                status if type(status) is int else int(status), desc)
