"""An upstream-style mock engine as a Python wrapper: the twin of native_examples/mock.

wrapperRead returns a result on EVERY call, whose status is the status of the last
input written, as upstream's own test engine does. Once: "result" with the input's
length. Session params: never_end=1 (End is answered as Continue), empty_reads=N
(after the last input, the first N reads return nothing), hang=read|write|exec (that
call never returns), push=1 (results go through callback(response, sid) from the
write, none to read). Init config: counters_file (the C engines' counters line).
"""
import os
import threading

from aiges.core.types import *  # noqa: F401,F403
from aiges.dto import Response, ResponseData, DataListCls, SessionCreateResponse, callback
from aiges.sdk import WrapperBase, StringBodyField

COUNTERS = ("init", "fini", "exec", "execfree", "live_exec", "async", "callbacks", "create",
            "destroy", "live_sessions", "loadres", "unloadres")
FINAL = (DataEnd, DataOnce)


class UserRequest(object):
    input1 = StringBodyField(key="input", value=b"hello from the mock")


class UserResponse(object):
    accept1 = StringBodyField(key="result")


def result(nbytes, status):
    out = ResponseData(key="result", type=DataText, status=status)
    out.setData(f"mock result after {nbytes} bytes".encode())
    return Response(list=[out])


def hang_forever():
    threading.Event().wait()


class Session:
    def __init__(self, sid, params):
        self.sid = sid
        self.never_end = params.get("never_end") == "1"
        self.empty_reads = int(params.get("empty_reads", 0))
        self.hang = params.get("hang", "")
        self.push = params.get("push") == "1"
        self.last = DataBegin
        self.last_input = False
        self.bytes = 0

    def current(self):
        status = self.last
        if self.never_end and status in FINAL:
            status = DataContinue
        return result(self.bytes, status)


class Wrapper(WrapperBase):
    serviceId = "mock"
    version = "mock/1.0.0"
    requestCls = UserRequest()
    responseCls = UserResponse()

    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.counters_path = ""
        self.sessions = {}
        self.next_handle = 0

    def count(self, **changes):
        with self.lock:
            for key, delta in changes.items():
                self.counts[key] += delta
            self.counts["live_sessions"] = self.counts["create"] - self.counts["destroy"]
            if self.counters_path:
                line = " ".join(f"{k}={self.counts[k]}" for k in COUNTERS) + "\n"
                with open(self.counters_path + ".tmp", "w") as fh:
                    fh.write(line)
                os.replace(self.counters_path + ".tmp", self.counters_path)

    def wrapperInit(self, config: {}) -> int:
        self.counters_path = config.get("counters_file", "")
        self.count(init=1)
        return 0

    def wrapperFini(self) -> int:
        self.count(fini=1)
        return 0

    def wrapperError(self, ret: int) -> str:
        return "mock engine error"

    def wrapperOnceExec(self, params: {}, reqData: DataListCls, usrTag: str = "",
                        persId: int = 0) -> Response:
        if params.get("hang") == "exec":
            hang_forever()
        self.count(exec=1, execfree=1)
        return result(sum(len(node.data) for node in reqData.list), DataOnce)

    def wrapperCreate(self, params: {}, sid: str, persId: int = 0,
                      usrTag: str = "") -> SessionCreateResponse:
        with self.lock:
            self.next_handle += 1
            handle = str(self.next_handle)
            self.sessions[handle] = Session(sid, params)
        self.count(create=1)
        return SessionCreateResponse(handle=handle)

    def wrapperWrite(self, handle: str, req: DataListCls, sid: str) -> int:
        session = self.sessions.get(handle)
        if session is None:
            return 6001
        if session.hang == "write":
            hang_forever()
        for node in req.list:
            session.bytes += len(node.data)
            session.last = node.status
            session.last_input |= node.status in FINAL
        if session.push:
            callback(session.current(), session.sid)
        return 0

    def wrapperRead(self, handle: str, sid: str) -> Response:
        session = self.sessions.get(handle)
        if session is None:
            return Response().response_err(6001)
        if session.hang == "read":
            hang_forever()
        if session.push:
            return None
        if session.last_input and session.empty_reads > 0:
            session.empty_reads -= 1
            return None
        return session.current()

    def wrapperDestroy(self, handle: str) -> int:
        with self.lock:
            session = self.sessions.pop(handle, None)
        if session is None:
            return 6001
        self.count(destroy=1)
        return 0


if __name__ == '__main__':
    Wrapper().run()
