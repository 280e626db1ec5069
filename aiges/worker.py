"""``aiges.worker`` of the upstream SDK: a thread per session that feeds each written
request to an ``InferClass`` until it says the session is done (the ailab wrappers)."""
from __future__ import annotations

import abc
import logging
import queue
import threading

log = logging.getLogger("wrapper")

_STOP = object()  # put on in_q by stop(): wakes a worker waiting for input


class InferClass(abc.ABC):
    @abc.abstractmethod
    def predict(self, *args, **kwargs) -> tuple[object, bool]:
        """Handle ``req=`` (a DataListCls) and push results; (output, all_done)."""

    def setHandle(self, hdl):  # noqa: N802 (upstream name)
        self.handle = hdl


class Worker(threading.Thread):
    """A daemon thread (upstream's was not: an abandoned session's worker then kept the
    process alive). ``in_q`` takes requests; ``run`` calls ``predict(req=...)`` for each
    and ends once it returns all_done, or on ``stop()``."""

    def __init__(self, name=None, _type="thread", nums=1, context=None):
        super().__init__(name=name, daemon=True)
        self._type = _type
        self.nums = nums
        self.context = context if context is not None else {}
        self.in_q: queue.Queue = queue.Queue()
        self.out_q: queue.Queue = queue.Queue()
        self.infer_class: InferClass | None = None
        self.infer_func = None
        self.callback_fn = None
        self.is_stopping = False

    def stop(self):
        self.is_stopping = True
        self.in_q.put(_STOP)

    def register_infer_class(self, instance):
        self.infer_class = instance

    def register_infer_func(self, infer):
        self.infer_func = infer

    def register_callback(self, cb):
        self.callback_fn = cb

    def setHandle(self, hdl):  # noqa: N802 (upstream name)
        self.infer_class.setHandle(hdl)

    def create(self, params=None):
        pass

    def run(self):
        if self.infer_class is None:
            log.error("worker %s has no infer class (register_infer_class before start)",
                      self.name)
            return
        while not self.is_stopping:
            req = self.in_q.get()
            if req is _STOP:
                break
            try:
                _, all_done = self.infer_class.predict(req=req)
            except Exception:
                log.exception("predict failed; worker %s ends", self.name)
                return
            if all_done:
                break
