"""``aiges.stream`` of the upstream SDK: a pool of session threads for streaming wrappers.

A wrapper calls ``self.session.init_handle_pool("thread", n, MyThread)`` in wrapperInit:
n ``WorkerThread``s start at once, each running one ``MyThread(StreamHandleThread)``
that takes requests from ``in_q`` and pushes results with ``callback_fn(resp, sid)``.
wrapperCreate takes a handle with ``get_idle_handle()`` and fills in sid, params and the
callback; the stream thread calls ``session_thread.reset()`` after its last result,
which makes the handle idle again. Plain threads and queues: nothing here talks to the
loader except through the callback the wrapper hands in.

Upstream's process mode (``PROCESS_MODE``) never worked; here it fails at once with a
clear error, as do the helper classes no known wrapper uses.
"""
from __future__ import annotations

import logging
import queue
import threading

from aiges.core.types import PROCESS_MODE, THREAD_MODE

log = logging.getLogger("wrapper")

PROCESS_MODE_ERROR = ("process mode is not available under aiges-load: use thread mode "
                      "(init_handle_pool('thread', n, cls)); processes come from [fc] max / "
                      "--workers")


class StreamHandleThread(threading.Thread):
    """Base of the wrapper's per-handle worker: override ``run`` (and ``init_model``).

    ``session_thread`` is the ``WorkerThread`` that owns it (sid, params, callback_fn,
    reset()); ``in_q`` receives what wrapperWrite puts, ``out_q`` is for wrappers that
    answer through wrapperRead."""

    def __init__(self, session_thread, in_q, out_q):
        super().__init__(daemon=True)
        self.is_stopping = False
        self.session_thread = session_thread
        self.in_q = in_q
        self.out_q = out_q
        self._stop_requested = threading.Event()

    def init_model(self, *args, **kwargs):
        raise NotImplementedError("implement init_model(handle) or run() in your "
                                  "StreamHandleThread subclass")

    def stop(self):
        self.is_stopping = True
        self._stop_requested.set()

    def run(self):
        self.init_model(self.session_thread.handle)
        self._stop_requested.wait()


class WorkerThread(threading.Thread):
    """One handle of the pool and its session's context (sid, params, callback_fn)."""

    def __init__(self, handle):
        super().__init__(daemon=True)
        self.handle = handle
        self.sid = ""
        self.is_stopping = False
        self.in_q: queue.Queue = queue.Queue()
        self.out_q: queue.Queue = queue.Queue()
        self.is_idle = True
        self.params: dict = {}
        self.StreamHandleThreadClass = StreamHandleThread  # noqa: N815 (upstream name)
        self.callback_fn = None  # callback(response, sid), set by wrapperCreate
        self._stream_thread: StreamHandleThread | None = None
        self._stream_lock = threading.Lock()

    def init_model(self, *args, **kwargs):
        raise NotImplementedError("implement init_model in a StreamHandleThread subclass")

    @property
    def idle(self) -> bool:
        return self.is_idle

    def setup_sid(self, sid):
        self.sid = sid

    def setup_params(self, params):
        self.params = params
        self.is_idle = False

    def setup_callback_fn(self, callback):
        self.callback_fn = callback

    def reset(self):
        """The session is over: forget its context and pending data, become idle."""
        self.sid = ""
        self.params = {}
        for q in (self.in_q, self.out_q):
            with q.mutex:
                q.queue.clear()
        self.is_idle = True

    def setStreamHandleThreadClass(self, cls):  # noqa: N802 (upstream name)
        self.StreamHandleThreadClass = cls

    def stop(self):
        with self._stream_lock:
            self.is_stopping = True
            thread = self._stream_thread
        if thread is not None and hasattr(thread, "stop"):
            thread.stop()

    def run(self):
        with self._stream_lock:  # a stop() before this point means no stream thread at all
            if self.is_stopping:
                return
            thread = self._stream_thread = self.StreamHandleThreadClass(self, self.in_q,
                                                                        self.out_q)
        thread.start()
        thread.join()


class Pool:
    """Handles and their WorkerThreads (``workers``: handle -> WorkerThread)."""

    def __init__(self):
        self.workers: dict[str, WorkerThread] = {}

    def get_thread(self, handle):
        return self.workers.get(handle)

    def get_idle_thread_handle(self):
        """(handle, worker) of an idle worker, now marked busy; None when all are busy."""
        for handle, worker in self.workers.items():
            if worker.idle:
                worker.is_idle = False
                return handle, worker
        return None

    def reset_thread(self, handle):
        worker = self.workers.get(handle)
        if worker is not None:
            worker.reset()

    def set_idle(self, handle):
        worker = self.workers.get(handle)
        if worker is not None:
            worker.is_idle = True


class ThreadPool(Pool):
    """``nums`` WorkerThreads named ``Process-{processs_no}-Thread-{i}``, started at once."""

    def __init__(self, reqDataThreadCls, processs_no=0, nums=10):  # noqa: N803 (upstream names)
        super().__init__()
        for i in range(int(nums)):
            handle = f"Process-{processs_no}-Thread-{i}"
            worker = WorkerThread(handle)
            worker.setStreamHandleThreadClass(reqDataThreadCls)
            self.workers[handle] = worker
            worker.start()


class SessionManager:
    """The handle pool of one wrapper instance (``WrapperBase.session``)."""

    def __init__(self, config=None, mode=THREAD_MODE, nums=0):
        # Upstream's constructor ignores its arguments too: init_handle_pool sets the pool up.
        self.initialized = False
        self.code = 0
        self.wrapperConfig: dict = {}  # noqa: N815 (upstream name)
        self.handle_pool: Pool | None = None
        self.lock = threading.Lock()

    def init_wrapper_config(self, config=None):
        self.wrapperConfig = dict(config or {})

    def init_handle_pool(self, mode, nums, ReqThreadCls):  # noqa: N803
        if mode == PROCESS_MODE:
            raise NotImplementedError(PROCESS_MODE_ERROR)
        self.handle_pool = self.init_threads(ReqThreadCls, nums)
        self.initialized = True

    def init_threads(self, ReqThreadCls, nums=10):  # noqa: N803
        return ThreadPool(ReqThreadCls, 0, nums)

    def init_processes(self, ReqThreadCls, procs=2, threads_per_cpu=5):  # noqa: N803
        raise NotImplementedError(PROCESS_MODE_ERROR)

    def _pool(self) -> Pool:
        if self.handle_pool is None:
            raise RuntimeError("call self.session.init_handle_pool(mode, nums, cls) in "
                               "wrapperInit before using the session manager")
        return self.handle_pool

    def get_session(self, handle):
        """The WorkerThread of ``handle``, or None."""
        return self._pool().get_thread(handle)

    def get_idle_handle(self):
        """An idle handle, now marked busy; **None when every handle is busy** (upstream
        raised TypeError there), so a wrapper's ``if not handle:`` branch answers it."""
        pool = self._pool()
        with self.lock:
            found = pool.get_idle_thread_handle()
        return found[0] if found else None

    def set_idle_session(self, handle):
        self._pool().set_idle(handle)

    def reset_session(self, handle):
        self._pool().reset_thread(handle)

    def push_back(self, handle):
        """Make ``handle`` idle and clear its context."""
        self.set_idle_session(handle)
        self.reset_session(handle)

    def close(self):
        """Ask every session thread to stop (aiges-load calls it when the engine is closed;
        the threads are daemons, so one that never checks ``is_stopping`` holds nothing)."""
        for worker in (self.handle_pool.workers.values() if self.handle_pool else ()):
            try:
                worker.stop()
            except Exception:  # a wrapper's stop(): the engine is closing anyway
                log.exception("stopping session thread %s failed", worker.handle)


class _Unsupported:
    """Upstream helpers of its unused process mode: importable, not usable."""

    def __init__(self, *args, **kwargs):
        raise NotImplementedError(f"aiges.stream.{type(self).__name__}: {PROCESS_MODE_ERROR}")


class ProcessThreadPool(_Unsupported, Pool):
    pass


class WorkerProcess(_Unsupported):
    pass


class RequestPool(_Unsupported):
    pass


class ReqHandleThread(_Unsupported):
    pass


class ModelProcess(_Unsupported):
    pass


class Context:
    """Per-request context of upstream's process mode; kept as the plain record it is."""

    def __init__(self):
        self.reset_ctx()

    def set_data(self, data):
        self.data = data

    def set_callback_handle(self, s):
        self.callback_handle = s

    def set_sid(self, sid):
        self.sid = sid

    def set_params(self, params):
        self.params = params

    def set_destroyed(self):
        self.session_destroyed = True

    def reset_ctx(self):
        self.sid, self.params, self.data = "", {}, None
        self.callback_handle, self.session_destroyed = "", False
