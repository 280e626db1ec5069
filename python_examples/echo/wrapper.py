"""The echo engine as a Python wrapper: the twin of native_examples/echo, written in the
upstream aiges SDK style, so the loader's behaviour tests run against both kinds.

Once: every input comes back unchanged, plus "params" (the params as JSON), "psr_ids"
when a resource id is given, and "config" (the init config) with show_config=true.
Params: delay_ms, fail=N (error N), empty=true (no output). wrapperCancel (an aiges
extension) of a request's usrTag cuts its delay_ms short: error 30007, counted in
"cancelled".
Batches (wrapperOnceExecBatch, [batch] maxSize > 1): fail_batch=N fails the whole call,
show_batch=true adds "batch" (the call's number of requests).
Sessions: each write's inputs come back; fail_create=N, fail_write=N, delay_ms
(pushed sessions), write_delay_ms (every write waits first; wrapperCancel of the
session's sid cuts it short: error 30007). Init config: counters_file (the C engine's counters line; "{version}"
in it becomes the version, '/' as '-'), push=true (deliver session results with
callback instead of wrapperRead).
"""
import json
import os
import queue
import threading
import time

from aiges.core.types import *  # noqa: F401,F403
from aiges.dto import Response, ResponseData, DataListCls, SessionCreateResponse, callback
from aiges.sdk import WrapperBase, StringBodyField, StringParamField
from aiges.utils.log import log

COUNTERS = ("init", "fini", "exec", "execfree", "live_exec", "async", "callbacks", "create",
            "destroy", "live_sessions", "loadres", "unloadres", "cancels", "cancelled")
CANCELLED = 30007  # a call cut short by wrapperCancel, as the C echo's code
CANCEL_MEMORY = 64  # tags cancelled before their call started, remembered


class UserRequest(object):
    input1 = StringBodyField(key="input", value=b"hello from the python echo")
    params1 = StringParamField(key="lang", value="en")


class UserResponse(object):
    accept1 = StringBodyField(key="input")
    accept2 = StringBodyField(key="params")


def node_copy(node, status=None):
    out = ResponseData(key=node.key, type=node.type,
                       status=node.status if status is None else status)
    out.setData(bytes(node.data))
    out.desc = dict(getattr(node, "desc", {}) or {})
    return out


def text_output(key, text):
    out = ResponseData(key=key, type=DataText, status=DataOnce)
    out.setData(text.encode())
    return out


class Session:
    def __init__(self, sid, params, push):
        self.sid = sid
        self.fail_write = int(params.get("fail_write", 0))
        self.delay_ms = int(params.get("delay_ms", 0))
        self.write_delay_ms = int(params.get("write_delay_ms", 0))
        self.pending = []
        self.push = push
        self.jobs = queue.SimpleQueue()  # C: a put or get is no Python-level lock work
        self.worker = None
        if push:
            self.worker = threading.Thread(target=self.deliver, daemon=True)
            self.worker.start()

    def deliver(self):
        # Results of each write, in write order, until destroy puts None.
        while True:
            outputs = self.jobs.get()
            if outputs is None:
                return
            if self.delay_ms:
                time.sleep(self.delay_ms / 1000)
            callback(Response(list=outputs), self.sid)


class Wrapper(WrapperBase):
    serviceId = "echo"
    version = "echo/1.0.0"
    requestCls = UserRequest()
    responseCls = UserResponse()

    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.config = {}
        self.counters_path = ""
        self.sessions = {}
        self.next_handle = 0
        # wrapperCancel: tag -> Event of the calls waiting now, and tags cancelled early.
        self.waits = {}
        self.cancelled = []

    def wait(self, tag, ms):
        """Sleep ms for the request or session ``tag``; False when wrapperCancel(tag)
        cut it short (or came before)."""
        with self.lock:
            if tag in self.cancelled:
                stop = None
            else:
                stop = self.waits.setdefault(tag, threading.Event())
        if stop is None or stop.wait(ms / 1000):
            self.count(cancelled=1)
            return False
        with self.lock:
            self.waits.pop(tag, None)
        return True

    def wrapperCancel(self, usrTag: str) -> int:
        """aiges extension: the request or session ``usrTag`` is no longer wanted; the
        call waiting for it returns early. Any thread, quick."""
        with self.lock:
            stop = self.waits.pop(usrTag, None)
            if stop is None:
                self.cancelled = (self.cancelled + [usrTag])[-CANCEL_MEMORY:]
        if stop is not None:
            stop.set()
        self.count(cancels=1)
        return 0

    def count(self, **changes):
        with self.lock:
            for key, delta in changes.items():
                self.counts[key] += delta
            self.counts["live_sessions"] = self.counts["create"] - self.counts["destroy"]
            path = self.counters_path
            if path:
                line = " ".join(f"{k}={self.counts[k]}" for k in COUNTERS) + "\n"
                with open(path + ".tmp", "w") as fh:
                    fh.write(line)
                os.replace(path + ".tmp", path)

    def wrapperInit(self, config: {}) -> int:
        self.config = dict(config)
        # "{version}" in the path: two versions loaded side by side (a hot reload) keep
        # counters files of their own, as with the C echo.
        self.counters_path = self.config.get("counters_file", "").replace(
            "{version}", self.version.replace("/", "-"))
        self.count(init=1)
        log.info("python echo initialised with %d config pairs", len(config))
        return 0

    def wrapperFini(self) -> int:
        self.count(fini=1)
        return 0

    def wrapperHealth(self) -> tuple:
        """aiges extension: nothing here can break the way a device does: always healthy."""
        return True, ""

    def wrapperError(self, ret: int) -> str:
        if ret == CANCELLED:
            return "echo: cancelled (wrapperCancel)"
        return "echo: failure requested"

    def wrapperOnceExec(self, params: {}, reqData: DataListCls, usrTag: str = "",
                        persId: int = 0) -> Response:
        self.count(exec=1, execfree=1)
        if int(params.get("delay_ms", 0)) and not self.wait(usrTag, int(params["delay_ms"])):
            return Response().response_err(CANCELLED)
        return self.answer(params, reqData, persId)

    def answer(self, params, reqData, persId=0):
        if int(params.get("fail", 0)):
            return Response().response_err(int(params["fail"]))
        if params.get("empty") == "true":
            return Response(list=[])
        outputs = [node_copy(node) for node in reqData.list]
        outputs.append(text_output("params", json.dumps(params, separators=(",", ":"),
                                                        ensure_ascii=False)))
        if persId:
            outputs.append(text_output("psr_ids", str(persId)))
        if params.get("show_config") == "true":
            outputs.append(text_output("config", json.dumps(self.config, separators=(",", ":"))))
        return Response(list=outputs)

    def wrapperOnceExecBatch(self, params: list, reqDatas: list, usrTags: list):
        """The aiges batch extension: each item as wrapperOnceExec answers it, after the
        longest delay_ms of them (one call, not n). fail=N fails its item only;
        fail_batch=N on any item fails the whole call; show_batch=true adds "batch"."""
        self.count(exec=len(params), execfree=len(params))
        for p in params:
            if int(p.get("fail_batch", 0)):
                return int(p["fail_batch"])
        delay_ms = max(int(p.get("delay_ms", 0)) for p in params)
        if delay_ms:
            time.sleep(delay_ms / 1000)
        responses = []
        for p, req in zip(params, reqDatas):
            res = self.answer(p, req)
            if p.get("show_batch") == "true" and res.list:
                res.list.append(text_output("batch", str(len(params))))
            responses.append(res)
        return responses

    def wrapperCreate(self, params: {}, sid: str, persId: int = 0,
                      usrTag: str = "") -> SessionCreateResponse:
        if int(params.get("fail_create", 0)):
            return SessionCreateResponse(error_code=int(params["fail_create"]))
        with self.lock:
            self.next_handle += 1
            handle = str(self.next_handle)
            self.sessions[handle] = Session(sid, params, self.config.get("push") == "true")
        self.count(create=1)
        return SessionCreateResponse(handle=handle)

    def wrapperWrite(self, handle: str, req: DataListCls, sid: str) -> int:
        session = self.sessions.get(handle)
        if session is None:
            return 30001
        if session.fail_write:
            return session.fail_write
        if session.write_delay_ms and not self.wait(session.sid, session.write_delay_ms):
            return CANCELLED
        outputs = [node_copy(node) for node in req.list]
        if session.push:
            self.count(callbacks=1)
            session.jobs.put(outputs)
        else:
            session.pending += outputs
        return 0

    def wrapperRead(self, handle: str, sid: str) -> Response:
        session = self.sessions.get(handle)
        if session is None or not session.pending:
            return None
        outputs, session.pending = session.pending, []
        return Response(list=outputs)

    def wrapperDestroy(self, handle: str) -> int:
        with self.lock:
            session = self.sessions.pop(handle, None)
        if session is None:
            return 30001
        if session.worker is not None:
            session.jobs.put(None)  # results already written are still delivered
            session.worker.join()
        self.count(destroy=1)
        return 0


if __name__ == '__main__':
    Wrapper().run()
