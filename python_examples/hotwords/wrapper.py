"""Hot words as a Python wrapper: the twin of native_examples/hotwords, written in the
upstream aiges SDK style, to show personalization resources in a wrapper.py.

wrapperLoadRes(reqData, resId): the words of every node (newline, comma or blank
separated, compared lower-cased) become hot-word list resId; an id already loaded is
refused. wrapperUnloadRes(resId) drops it.
wrapperOnceExec: "result" is the first input's text with every word of list persId in
brackets ("turn on the [lamp]"); persId 0 (no res_id) gives the text unchanged, and an
id that is not loaded is an error ("hotwords: resource 7 is not loaded").

Python wrappers get ONE persId: the first id of header.res_id ("3,4" -> 3). The C
engine gets every id as psrIds and uses all of their lists.

Init config: counters_file (the C engines' counters line: loadres/unloadres balance).
"""
import os
import re
import threading

from aiges.core.types import *  # noqa: F401,F403
from aiges.dto import Response, ResponseData, DataListCls
from aiges.sdk import WrapperBase, StringBodyField
from aiges.utils.log import log

COUNTERS = ("init", "fini", "exec", "execfree", "live_exec", "async", "callbacks", "create",
            "destroy", "live_sessions", "loadres", "unloadres")
# The C engine's word bytes: ASCII letters, digits, '_', and anything non-ASCII.
WORD = re.compile(rb"[A-Za-z0-9_\x80-\xff]+")

ERR_ARG = 40001
ERR_NOT_LOADED = 40003
ERR_LOADED = 40004
ERR_EMPTY = 40005
TEXTS = {ERR_ARG: "hotwords: invalid argument", ERR_NOT_LOADED: "hotwords: resource is not loaded",
         ERR_LOADED: "hotwords: resource is already loaded",
         ERR_EMPTY: "hotwords: resource holds no words"}


class UserRequest(object):
    input1 = StringBodyField(key="input", value=b"turn on the lamp")


class UserResponse(object):
    accept1 = StringBodyField(key="result")


class Wrapper(WrapperBase):
    serviceId = "hotwords"
    version = "hotwords/1.0.0"
    requestCls = UserRequest()
    responseCls = UserResponse()

    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()
        self.lists = {}
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.config = {}
        # wrapperError names the resource of the last failure on the calling thread:
        # the loader asks on the thread that failed.
        self.last_error = threading.local()

    def count(self, **changes):
        with self.lock:
            for key, delta in changes.items():
                self.counts[key] += delta
            path = self.config.get("counters_file")
            if path:
                line = " ".join(f"{k}={self.counts[k]}" for k in COUNTERS) + "\n"
                with open(path + ".tmp", "w") as fh:
                    fh.write(line)
                os.replace(path + ".tmp", path)

    def fail(self, code, text):
        self.last_error.code, self.last_error.text = code, text
        return code

    def wrapperInit(self, config: {}) -> int:
        self.config = dict(config)
        self.count(init=1)
        log.info("python hotwords initialised")
        return 0

    def wrapperFini(self) -> int:
        with self.lock:
            self.lists.clear()
        self.count(fini=1)
        return 0

    def wrapperError(self, ret: int) -> str:
        if getattr(self.last_error, "code", None) == ret:
            return self.last_error.text
        return TEXTS.get(ret, "hotwords: unknown error")

    def wrapperLoadRes(self, reqData: DataListCls, resId: int) -> int:
        words = set()
        for node in reqData.list:
            data = node.data.encode() if isinstance(node.data, str) else bytes(node.data or b"")
            words.update(w.lower() for w in WORD.findall(data))
        if not words:
            return self.fail(ERR_EMPTY, f"hotwords: resource {resId} holds no words "
                                        f"(send a newline or comma separated list)")
        with self.lock:
            if resId in self.lists:
                return self.fail(ERR_LOADED, f"hotwords: resource {resId} is already loaded")
            self.lists[resId] = frozenset(words)
        self.count(loadres=1)
        return 0

    def wrapperUnloadRes(self, resId: int) -> int:
        with self.lock:
            found = self.lists.pop(resId, None)
        if found is None:
            return self.fail(ERR_NOT_LOADED, f"hotwords: resource {resId} is not loaded")
        self.count(unloadres=1)
        return 0

    def wrapperOnceExec(self, params: {}, reqData: DataListCls, usrTag: str = "",
                        persId: int = 0) -> Response:
        self.count(exec=1, execfree=1)
        if not reqData.list:
            return Response().response_err(self.fail(ERR_ARG, "hotwords: no input text"))
        hot = frozenset()
        if persId:
            with self.lock:
                hot = self.lists.get(persId)
            if hot is None:
                code = self.fail(ERR_NOT_LOADED, f"hotwords: resource {persId} is not loaded")
                return Response().response_err(code)
        text = reqData.list[0].data
        text = text.encode() if isinstance(text, str) else bytes(text or b"")
        marked = WORD.sub(lambda m: b"[" + m[0] + b"]" if m[0].lower() in hot else m[0], text)
        result = ResponseData(key="result", type=DataText, status=DataOnce)
        result.setData(marked)
        return Response(list=[result])


if __name__ == '__main__':
    Wrapper().run()
