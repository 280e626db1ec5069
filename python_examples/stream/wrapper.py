"""stream: running text statistics over chunked sessions -- the Python twin of the C
engine in native_examples/stream (libstream.so), written for the upstream aiges SDK.

Every session write answers one "stats" output per input node (its key's running
chunk/byte/word/line counts, desc input=<key>); once every input key has ended (End or
Once) a "summary" follows: totals plus the five most frequent words (ASCII-lowercased,
ties in byte order). A word cut by a chunk boundary counts once. wrapperOnceExec gives
the summary of all its inputs, each node a text of its own.

wrapperInit config:
  counters_file=PATH  the one-line call counters file of the C sample engines
  push=true|false     true: results go out through callback(response, sid) from a
                      per-session worker thread, in write order (run the loader with
                      asyncMode); false (default): they queue for wrapperRead
wrapperCreate params:
  final_delay_ms=N    the summary comes N ms after the write that ends the input
                      (sync: readable then; push: sent then); wrapperDestroy cancels it
  fail_at_chunk=K     write number K returns 41000+K
                      (wrapperError: "stream: failure requested at chunk K")
  chunk_delay_ms=N    every write takes N ms first (the work a chunk costs);
                      wrapperCancel (an aiges extension) of the session's sid cuts it
                      short: 40007, counted in "cancelled"
"""
import heapq
import itertools
import os
import re
import threading
import time
from collections import Counter, deque

from aiges.core.types import *  # upstream style
from aiges.core.types import DataBegin, DataContinue, DataEnd, DataOnce, DataText
from aiges.dto import (  # noqa: F401 (the upstream template's imports)
    DataListCls,
    DataListNode,
    Response,
    ResponseData,
    SessionCreateResponse,
    callback,
)
from aiges.sdk import IntegerParamField, StringBodyField, StringParamField, WrapperBase  # noqa: F401
from aiges.utils.log import log

# Error codes, the same as libstream's.
ERR_HANDLE = 40001    # unknown session handle
ERR_ARG = 40002       # bad argument, param value or data status
ERR_NOMEM = 40003
ERR_THREAD = 40004    # cannot start the worker thread
ERR_TYPE = 40005      # an input that is not DataText
ERR_ENDED = 40006     # input for a key (or session) that has ended
ERR_CANCELLED = 40007  # a write cut short: wrapperCancel named its session
ERR_FAIL = 41000      # fail_at_chunk=K: write K returns ERR_FAIL + K
FAIL_MAX = 9999       # largest K
DELAY_MAX = 3600 * 1000

ERRORS = {
    ERR_HANDLE: "stream: unknown handle",
    ERR_ARG: "stream: invalid argument",
    ERR_NOMEM: "stream: out of memory",
    ERR_THREAD: "stream: cannot start thread",
    ERR_TYPE: "stream: only text input",
    ERR_ENDED: "stream: input already ended",
    ERR_CANCELLED: "stream: cancelled (wrapperCancel)",
}

TOP_N = 5
SPACE = b" \t\n\r\x0b\x0c"  # ASCII whitespace: what bytes.split() splits on
# strtol(v, &end, 10) consuming the whole value: C-locale spaces, a sign, digits.
INT_RE = re.compile(rb"[ \t\n\r\x0b\x0c]*[+-]?[0-9]+")
COUNTERS = ("init", "fini", "exec", "execfree", "live_exec", "async", "callbacks",
            "create", "destroy", "loadres", "unloadres", "cancels", "cancelled")
CANCEL_MEMORY = 64  # tags cancelled, remembered (a write may start after its cancel)


class UserRequest(object):  # noqa: UP004 (upstream style)
    text = StringBodyField(key="text", value=b"The quick brown fox jumps over the lazy dog.\n"
                                             b"The dog sleeps; the fox does not.\n")
    final_delay_ms = IntegerParamField(key="final_delay_ms", minimum=0, maximum=DELAY_MAX, value=0)
    fail_at_chunk = IntegerParamField(key="fail_at_chunk", minimum=0, maximum=FAIL_MAX, value=0)
    chunk_delay_ms = IntegerParamField(key="chunk_delay_ms", minimum=0, maximum=DELAY_MAX, value=0)


class UserResponse(object):  # noqa: UP004
    stats = StringBodyField(key="stats", value=b'{"chunk":1,"bytes":0,"words":0,"lines":0}')
    summary = StringBodyField(key="summary", value=b'{"chunks":1,"bytes":0,"words":0,"lines":0,"top":[]}')


# ---- text statistics -----------------------------------------------------------------------

class Totals:
    __slots__ = ("bytes", "chunks", "lines", "words")

    def __init__(self):
        self.chunks = self.bytes = self.words = self.lines = 0

    def add(self, t):
        self.chunks += t.chunks
        self.bytes += t.bytes
        self.words += t.words
        self.lines += t.lines


class TextStats:
    """Running statistics of one text written in chunks. A word is a maximal run of
    non-whitespace bytes; one cut by a chunk boundary is carried in `word`, counted once."""
    __slots__ = ("in_word", "t", "word")

    def __init__(self):
        self.t = Totals()
        self.in_word = False
        self.word = b""  # raw bytes of the word in progress

    def feed(self, data, words):
        """Counts one chunk; complete words go to the Counter `words`."""
        t = self.t
        t.chunks += 1
        t.bytes += len(data)
        if not data:
            return
        t.lines += data.count(b"\n")
        parts = data.split()
        if not parts:  # whitespace only: ends the word in progress
            self.end(words)
            return
        if self.in_word and data[0] not in SPACE:  # continues the word cut by the last chunk
            parts[0] = self.word + parts[0]
            t.words += len(parts) - 1
        else:
            self.end(words)
            t.words += len(parts)
        if data[-1] in SPACE:
            done, self.word, self.in_word = parts, b"", False
        else:
            done, self.word, self.in_word = parts[:-1], parts[-1], True
        for w in done:
            words[w.lower()] += 1  # bytes.lower(): ASCII only

    def end(self, words):
        """End of the text: the word in progress is complete."""
        if self.in_word and self.word:
            words[self.word.lower()] += 1
        self.word, self.in_word = b"", False


def _utf8_seq(s, i):
    """Length of the valid UTF-8 sequence at s[i:], 0 if invalid (libstream's rules)."""
    c = s[i]
    need = 1 if c < 0x80 else 2 if 0xC2 <= c <= 0xDF else 3 if 0xE0 <= c <= 0xEF \
        else 4 if 0xF0 <= c <= 0xF4 else 0
    if need == 0 or need > len(s) - i:
        return 0
    cp = c & (0x7F >> need)
    for k in range(1, need):
        b = s[i + k]
        if b & 0xC0 != 0x80:
            return 0
        cp = cp << 6 | (b & 0x3F)
    if (need == 3 and (cp < 0x800 or 0xD800 <= cp <= 0xDFFF)) or \
            (need == 4 and (cp < 0x10000 or cp > 0x10FFFF)):
        return 0
    return need


def _json_str(s):
    """A JSON string of raw word bytes: '"' and '\\' escaped, control bytes and DEL as
    \\u00xx, each byte of invalid UTF-8 as \\ufffd -- byte for byte libstream's."""
    out = bytearray(b'"')
    i = 0
    while i < len(s):
        k = _utf8_seq(s, i)
        c = s[i]
        if k == 0:
            out += b"\\ufffd"
            k = 1
        elif c in b'"\\':
            out += b"\\" + bytes((c,))
        elif c < 0x20 or c == 0x7F:
            out += b"\\u%04x" % c
        else:
            out += s[i:i + k]
        i += k
    out += b'"'
    return bytes(out)


def stats_json(t):
    return b'{"chunk":%d,"bytes":%d,"words":%d,"lines":%d}' % (t.chunks, t.bytes, t.words, t.lines)


def summary_json(t, words):
    top = heapq.nsmallest(TOP_N, words.items(), key=lambda kv: (-kv[1], kv[0]))
    return b'{"chunks":%d,"bytes":%d,"words":%d,"lines":%d,"top":[%s]}' % (
        t.chunks, t.bytes, t.words, t.lines,
        b",".join(b"[%s,%d]" % (_json_str(w), n) for w, n in top))


def text_node(key, data, status, desc=None):
    node = ResponseData(key=key, data=data, len=len(data), type=DataText, status=status)
    if desc:
        node.desc = dict(desc)
    return node


def _bytes(data):
    if data is None:
        return b""
    if isinstance(data, str):
        return data.encode()
    return bytes(data)


def _is_last(status):
    return status in (DataEnd, DataOnce)


# ---- a session's inputs --------------------------------------------------------------------

class Inputs:
    """Per input key its TextStats and whether it ended; all keys' words together."""

    def __init__(self):
        self.keys = {}      # key -> [TextStats, ended]
        self.words = Counter()
        self.outputs = 0
        self.finished = False
        self.saw_once = False

    def check(self, nodes):
        """A whole write is checked before any of it counts."""
        for i, d in enumerate(nodes):
            if d.type != DataText:
                return ERR_TYPE
            if not 0 <= d.status <= DataOnce:
                return ERR_ARG
            key = d.key or ""
            k = self.keys.get(key)
            if self.finished or (k and k[1]):
                return ERR_ENDED
            for e in nodes[:i]:  # ended earlier in this write
                if _is_last(e.status) and (e.key or "") == key:
                    return ERR_ENDED
        return 0

    def write(self, nodes):
        """Feeds a checked write: (one "stats" output per node, the summary or None)."""
        stats = []
        for d in nodes:
            key = d.key or ""
            k = self.keys.get(key)
            if k is None:
                k = self.keys[key] = [TextStats(), False]
            ts = k[0]
            ts.feed(_bytes(d.data), self.words)
            if _is_last(d.status):
                k[1] = True
                self.saw_once |= d.status == DataOnce
                ts.end(self.words)
            status = DataContinue if self.outputs else DataBegin
            stats.append(text_node("stats", stats_json(ts.t), status, {"input": key}))
            self.outputs += 1
        return stats, self.summary()

    def totals(self):
        t = Totals()
        for ts, _ in self.keys.values():
            t.add(ts.t)
        return t

    def summary(self):
        if not all(ended for _, ended in self.keys.values()):
            return None
        t = self.totals()
        self.finished = True
        # Once only when the whole session was a single Once chunk.
        status = DataOnce if t.chunks == 1 and self.saw_once else DataEnd
        return text_node("summary", summary_json(t, self.words), status)


class Batch:
    __slots__ = ("due", "items")

    def __init__(self, items, due=None):
        self.items = items
        self.due = due  # time.monotonic() deadline of a delayed batch, else None


class Session:
    def __init__(self, owner, sid, push, final_delay_ms, fail_at_chunk):
        self.owner = owner
        self.sid = sid
        self.push = push
        self.final_delay_ms = final_delay_ms
        self.fail_at_chunk = fail_at_chunk
        # Touched only by the session's own calls, which are sequential.
        self.writes = 0
        self.inputs = Inputs()
        # Shared with the worker, under cv.
        self.cv = threading.Condition()
        self.stop = False
        self.pending = []  # sync: ready for wrapperRead
        self.queue = deque()  # batches waiting for the worker
        self.worker = None

    def start_worker(self):
        self.worker = threading.Thread(target=self._work, name="stream-" + self.sid, daemon=True)
        self.worker.start()

    def _wait_due(self, batch):
        """With cv held: waits until batch is due; False if wrapperDestroy came first."""
        while not self.stop:
            left = batch.due - time.monotonic()
            if left <= 0:
                break
            self.cv.wait(left)
        return not self.stop

    def _work(self):
        """Delivers queued batches in order until stopped and drained: outputs written
        before wrapperDestroy still arrive (before it returns); a delayed summary is dropped."""
        with self.cv:
            while True:
                while not self.queue and not self.stop:
                    self.cv.wait()
                if not self.queue:
                    break
                batch = self.queue[0]
                deliver = batch.due is None or self._wait_due(batch)
                self.queue.popleft()
                if not deliver:
                    continue
                if not self.push:
                    self.pending += batch.items
                    continue
                self.cv.release()
                try:
                    callback(Response(list=batch.items), self.sid)
                except Exception:  # noqa: BLE001 (the worker must go on)
                    log.exception("stream: callback failed (sid %s)", self.sid)
                finally:
                    self.cv.acquire()
                self.owner._count(callbacks=1)

    def deliver(self, stats, summary):
        """One write's outputs: now (sync queue or push worker), the summary later when
        final_delay_ms asks for it."""
        later = None
        if summary is not None and self.final_delay_ms > 0:
            later = Batch([summary], time.monotonic() + self.final_delay_ms / 1000.0)
        elif summary is not None:
            stats.append(summary)
        with self.cv:
            if self.push:
                self.queue.append(Batch(stats))
            else:
                self.pending += stats
            if later is not None:
                self.queue.append(later)
            self.cv.notify()

    def take(self):
        with self.cv:
            items, self.pending = self.pending, []
        return items

    def close(self):
        if self.worker is not None:
            with self.cv:
                self.stop = True
                self.cv.notify_all()
            self.worker.join()


def _param_int(params, key, maximum):
    """(value, 0) for an integer in [0, maximum]; absent: (0, 0); else (0, ERR_ARG)."""
    v = params.get(key)
    if v is None:
        return 0, 0
    raw = _bytes(v).split(b"\0", 1)[0]  # what a C string of it holds
    if not INT_RE.fullmatch(raw):
        return 0, ERR_ARG
    n = int(raw)
    if n < 0 or n > maximum:
        return 0, ERR_ARG
    return n, 0


def _flag(value):
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    return None


class Wrapper(WrapperBase):
    serviceId = "stream"
    version = "stream/1.0.0"
    requestCls = UserRequest()
    responseCls = UserResponse()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._count_lock = threading.Lock()
        self._counts = dict.fromkeys(COUNTERS, 0)
        self._counters_path = None
        self._initialized = False
        self._push = False
        self._sessions_lock = threading.Lock()
        self._sessions = {}
        self._handles = itertools.count(1)
        self._cancel = threading.Condition()
        self._cancelled = deque(maxlen=CANCEL_MEMORY)

    def wrapperCancel(self, usrTag: str) -> int:
        """aiges extension: the session ``usrTag`` is no longer wanted; a write of it
        waiting chunk_delay_ms returns early. Quick, any thread."""
        with self._cancel:
            self._cancelled.append(usrTag)
            self._cancel.notify_all()
        self._count(cancels=1)
        return 0

    def _wait(self, sid, ms):
        """False when wrapperCancel(sid) came before the ms were over."""
        deadline = time.monotonic() + ms / 1000
        with self._cancel:
            while sid not in self._cancelled:
                left = deadline - time.monotonic()
                if left <= 0:
                    return True
                self._cancel.wait(left)
        self._count(cancelled=1)
        return False

    # ---- counters: the test oracle for the loader's call discipline -------------------------
    def _write_counters_locked(self):
        path = self._counters_path
        if not path:
            return
        c = self._counts
        line = (f"init={c['init']} fini={c['fini']} exec={c['exec']} execfree={c['execfree']} "
                f"live_exec={c['live_exec']} async={c['async']} callbacks={c['callbacks']} "
                f"create={c['create']} destroy={c['destroy']} "
                f"live_sessions={c['create'] - c['destroy']} loadres={c['loadres']} "
                f"unloadres={c['unloadres']} cancels={c['cancels']} "
                f"cancelled={c['cancelled']}\n")
        tmp = path + ".tmp"
        try:
            with open(tmp, "w") as f:
                f.write(line)
            os.replace(tmp, path)  # readers never see a partial line
        except OSError as exc:
            log.warning("stream: cannot write %s: %s", path, exc)

    def _count(self, **changes):
        """One atomic change of several counters."""
        with self._count_lock:
            for name, dx in changes.items():
                self._counts[name] += dx
            self._write_counters_locked()

    # ---- life cycle ---------------------------------------------------------------------------
    def wrapperInit(self, config: {}) -> int:
        push = _flag(config.get("push", "false"))
        if push is None:
            log.error("stream: push must be true or false, not %r", config.get("push"))
            return ERR_ARG
        self._push = push
        path = config.get("counters_file")
        with self._count_lock:
            # Counters describe one init..fini life; a second init without fini shows
            # up as init=2 rather than being hidden by a reset.
            if not self._initialized:
                self._counts = dict.fromkeys(COUNTERS, 0)
            self._initialized = True
            self._counters_path = str(path) if path is not None else None
            self._counts["init"] += 1
            self._write_counters_locked()
        log.info("stream: initialised (push=%s)", push)
        return 0

    def wrapperFini(self) -> int:
        # Sessions are the loader's to destroy (it always does, before fini).
        with self._count_lock:
            self._counts["fini"] += 1
            self._write_counters_locked()
            self._counters_path = None
            self._initialized = False
        return 0

    def wrapperHealth(self) -> tuple:
        """aiges extension: nothing here can break the way a device does: always healthy."""
        return True, ""

    def wrapperError(self, ret: int) -> str:
        if ret in ERRORS:
            return ERRORS[ret]
        if ERR_FAIL < ret <= ERR_FAIL + FAIL_MAX:
            return f"stream: failure requested at chunk {ret - ERR_FAIL}"
        return "stream: unknown error"

    # ---- once -----------------------------------------------------------------------------------
    def wrapperOnceExec(self, params: {}, reqData: DataListCls, usrTag: str = "",
                        persId: int = 0) -> Response:
        """The summary of all inputs, each node one chunk and a text of its own."""
        self._count(exec=1, execfree=1)  # Python has no ExecFree: counted with exec
        nodes = list(reqData.list) if reqData is not None else []
        for d in nodes:
            if d.type != DataText:
                return Response().response_err(ERR_TYPE)
        words = Counter()
        total = Totals()
        for d in nodes:
            ts = TextStats()
            ts.feed(_bytes(d.data), words)
            ts.end(words)
            total.add(ts.t)
        return Response(list=[text_node("summary", summary_json(total, words), DataOnce)])

    # ---- sessions -------------------------------------------------------------------------------
    def _find(self, handle, unlink=False):
        with self._sessions_lock:
            return self._sessions.pop(handle, None) if unlink else self._sessions.get(handle)

    def wrapperCreate(self, params: {}, sid: str, persId: int = 0,
                      usrTag: str = "") -> SessionCreateResponse:
        params = params or {}
        final_delay_ms, rc = _param_int(params, "final_delay_ms", DELAY_MAX)
        if not rc:
            fail_at_chunk, rc = _param_int(params, "fail_at_chunk", FAIL_MAX)
        if not rc:
            chunk_delay_ms, rc = _param_int(params, "chunk_delay_ms", DELAY_MAX)
        if rc:
            return SessionCreateResponse(handle="", error_code=rc)
        s = Session(self, str(sid), self._push, final_delay_ms, fail_at_chunk)
        s.chunk_delay_ms = chunk_delay_ms
        # Sync sessions need the worker only to hold back the summary.
        if s.push or final_delay_ms > 0:
            try:
                s.start_worker()
            except RuntimeError:
                return SessionCreateResponse(handle="", error_code=ERR_THREAD)
        handle = f"stream-{next(self._handles)}"
        with self._sessions_lock:
            self._sessions[handle] = s
        self._count(create=1)
        return SessionCreateResponse(handle=handle, error_code=0)

    def wrapperWrite(self, handle: str, req: DataListCls, sid: str = "") -> int:
        s = self._find(handle)
        if s is None:
            return ERR_HANDLE
        s.writes += 1
        if s.writes == s.fail_at_chunk:
            return ERR_FAIL + s.fail_at_chunk
        if s.chunk_delay_ms and not self._wait(s.sid, s.chunk_delay_ms):
            return ERR_CANCELLED
        nodes = list(req.list) if req is not None else []
        rc = s.inputs.check(nodes)
        if rc or not nodes:
            return rc
        stats, summary = s.inputs.write(nodes)
        s.deliver(stats, summary)
        return 0

    def wrapperRead(self, handle: str, sid: str = ""):
        """What is queued, or None; push sessions never have anything to read."""
        s = self._find(handle)
        if s is None:
            return Response().response_err(ERR_HANDLE)
        items = s.take()
        return Response(list=items) if items else None

    def wrapperDestroy(self, handle: str) -> int:
        s = self._find(handle, unlink=True)  # unlinked first: later calls get an error
        if s is None:
            return ERR_HANDLE
        s.close()
        self._count(destroy=1)
        return 0


if __name__ == '__main__':
    Wrapper().run(stream=True)
