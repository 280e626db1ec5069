"""The upstream SDK's helper modules wrappers import: aiges.stream, aiges.callback,
aiges.concurrent, aiges.worker, aiges_embed, WrapperBase.session/schema (issue 18)."""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from aiges.dto import DataListCls, DataListNode, Response, ResponseData
from aiges.engine import Data, DataStatus
from aiges.errors import EngineError
from aiges.python import load
from aiges.python.push import routes

UPSTREAM = Path(__file__).resolve().parents[1] / "e2e" / "upstream_wrappers"


# -- aiges.stream ------------------------------------------------------------------------------
@pytest.fixture
def echo_thread_cls():
    """A StreamHandleThread subclass as upstream examples write them."""
    from aiges.stream import StreamHandleThread

    class EchoThread(StreamHandleThread):
        def run(self):
            while not self.is_stopping:
                req = self.in_q.get()
                node = req.list[0]
                resp = Response([ResponseData("out", node.data, status=node.status)])
                self.session_thread.callback_fn(resp, self.session_thread.sid)
                if node.status == 2:
                    self.session_thread.reset()

    return EchoThread


def test_session_manager_hands_out_each_handle_once(echo_thread_cls):
    from aiges.stream import SessionManager, WorkerThread
    manager = SessionManager()
    manager.init_wrapper_config({"a": "1"})
    manager.init_handle_pool("thread", 2, echo_thread_cls)
    first, second = manager.get_idle_handle(), manager.get_idle_handle()
    assert {first, second} == {"Process-0-Thread-0", "Process-0-Thread-1"}
    assert manager.get_idle_handle() is None  # upstream: TypeError when all are busy
    assert isinstance(manager.get_session(first), WorkerThread)
    assert manager.get_session("nope") is None
    manager.push_back(first)
    assert manager.get_idle_handle() == first


def test_worker_thread_runs_the_stream_thread_and_resets(echo_thread_cls):
    from aiges.stream import SessionManager
    manager = SessionManager()
    manager.init_handle_pool("thread", 1, echo_thread_cls)
    handle = manager.get_idle_handle()
    worker = manager.get_session(handle)
    got = queue.Queue()
    worker.setup_sid("s-1")
    worker.setup_params({"p": "1"})
    worker.setup_callback_fn(lambda resp, sid: got.put((sid, resp.list[0].data)))
    assert not worker.idle and worker.params == {"p": "1"}
    worker.in_q.put(DataListCls([DataListNode("in", b"a", status=0)]))
    worker.in_q.put(DataListCls([DataListNode("in", b"b", status=2)]))
    assert [got.get(timeout=2) for _ in range(2)] == [("s-1", b"a"), ("s-1", b"b")]
    for _ in range(200):  # reset() follows the callback on the stream thread
        if worker.idle:
            break
        threading.Event().wait(0.01)
    assert worker.idle and worker.sid == "" and worker.params == {}
    assert worker.daemon


def test_process_mode_and_unset_pool_fail_clearly(echo_thread_cls):
    from aiges.core.types import PROCESS_MODE
    from aiges.stream import SessionManager
    manager = SessionManager()
    with pytest.raises(RuntimeError, match="init_handle_pool"):
        manager.get_idle_handle()
    with pytest.raises(NotImplementedError, match="process mode"):
        manager.init_handle_pool(PROCESS_MODE, 2, echo_thread_cls)


def test_default_stream_thread_calls_init_model_and_stops():
    from aiges.stream import StreamHandleThread, WorkerThread
    seen = []

    class Model(StreamHandleThread):
        def init_model(self, handle):
            seen.append(handle)

    worker = WorkerThread("h-1")
    worker.setStreamHandleThreadClass(Model)
    thread = Model(worker, worker.in_q, worker.out_q)
    thread.start()
    thread.stop()
    thread.join(2)
    assert seen == ["h-1"] and not thread.is_alive()


def test_closing_the_engine_stops_the_session_threads(tmp_path):
    (tmp_path / "wrapper.py").write_text(textwrap.dedent("""
    from aiges.sdk import WrapperBase
    from aiges.stream import StreamHandleThread

    class Model(StreamHandleThread):
        def init_model(self, handle):
            self.model = handle

    class Wrapper(WrapperBase):
        def wrapperInit(self, config):
            self.session.init_handle_pool("thread", 2, Model)
            return 0

        def wrapperOnceExec(self, params, reqData):
            return None
    """))
    engine = load(tmp_path / "wrapper.py")
    engine.init({})
    workers = list(engine.wrapper.session.handle_pool.workers.values())
    assert all(w.is_alive() for w in workers)
    engine.fini()
    engine.close()
    for worker in workers:
        worker.join(2)
    assert not any(w.is_alive() for w in workers)


# -- aiges.concurrent / aiges.worker ------------------------------------------------------------
def test_fixed_pool_is_per_instance_with_unique_keys():
    from aiges.concurrent.fixpool import FixedPool
    from aiges.concurrent.pool import Pool
    a, b = FixedPool(), FixedPool()
    assert isinstance(a, Pool)
    a.set_capacity(2)
    assert a.add("x") == (True, "worker-0") and a.add("y") == (True, "worker-1")
    assert a.add("z") == (False, "")
    assert b.get("worker-0") is None  # upstream shared one class-level dict
    assert a.remove("worker-0") is True
    ok, key = a.add("z")
    assert ok and key not in ("worker-1",) and a.get("worker-1") == "y" and a.get(key) == "z"
    a.clear_all()
    assert a.get("worker-1") is None and a.add("w")[0]


def test_worker_predicts_until_done_and_a_removed_worker_stops():
    from aiges.concurrent.fixpool import FixedPool
    from aiges.worker import InferClass, Worker

    class Infer(InferClass):
        def __init__(self):
            self.got = []

        def predict(self, *args, **kwargs):
            self.got.append(kwargs["req"])
            return kwargs["req"], kwargs["req"] == "last"

    with pytest.raises(TypeError):
        InferClass()  # abstract, as upstream
    infer, worker = Infer(), Worker()
    worker.register_infer_class(infer)
    worker.setHandle("worker-0")
    assert infer.handle == "worker-0" and worker.daemon
    worker.start()
    for req in ("a", "last", "ignored"):
        worker.in_q.put(req)
    worker.join(2)
    assert infer.got == ["a", "last"] and not worker.is_alive()

    idle = Worker()
    idle.register_infer_class(Infer())
    idle.start()
    pool = FixedPool()
    _, key = pool.add(idle)
    pool.remove(key)
    idle.join(2)
    assert not idle.is_alive()


# -- the push: aiges.callback, aiges_embed, aiges.dto --------------------------------------------
@pytest.fixture
def routed():
    got: dict[str, list] = {"tag-1": [], "sid-2": []}
    for key, sink in got.items():
        routes.add(key, sink.append)
    yield got
    for key in got:
        routes.remove(key)


def test_callback_routes_by_tag_then_sid(routed):
    import aiges.callback as cb
    one, two = Response([ResponseData("a", b"1")]), Response([ResponseData("b", b"2")])
    cb.callback(one, "tag-1", "unknown")
    cb.callback(two, "unknown-handle", "sid-2")
    assert routed == {"tag-1": [one], "sid-2": [two]}
    q = queue.Queue()
    cb.set_up(q)
    try:
        cb.callback(one, "nobody", "nobody")
        assert q.get_nowait() is one
    finally:
        cb.set_up(None)


def test_callback_module_creates_no_log_folder(tmp_path):
    existed = Path("/log/app").exists()
    code = ("import aiges.callback, aiges.stream, aiges.worker, aiges_embed, aiges.sdk\n"
            "from aiges.utils.log import getFileLogger\n"
            "getFileLogger().info('x')")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60, env={**os.environ, "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert list(tmp_path.iterdir()) == []
    assert Path("/log/app").exists() == existed  # upstream made /log/app/wrapper.log
    assert out.stdout == ""  # upstream printed "Found proto", Python info


def test_aiges_embed_names_and_callbacks(routed):
    import aiges_embed
    from aiges import dto
    for name in ("ResponseData", "Response", "DataListNode", "DataListCls",
                 "SessionCreateResponse"):
        assert getattr(aiges_embed, name) is getattr(dto, name)
    resp = aiges_embed.Response()
    aiges_embed.callback(resp, "tag-1")
    assert routed["tag-1"] == [resp]
    # metric/trace go to the service's callbacks once an engine has them
    seen = []
    routes.set_ctrl(lambda *a: seen.append(("meter",) + a), lambda *a: seen.append(("trace",) + a))
    try:
        aiges_embed.callback_metric("tag-1", "frames", 3)
        aiges_embed.callback_trace("tag-1", "stage", "decode")
    finally:
        routes.set_ctrl(None, None)
    aiges_embed.callback_metric("tag-1", "frames", 1)  # none set: dropped
    assert seen == [("meter", "tag-1", "frames", 3), ("trace", "tag-1", "stage", "decode")]


def test_dto_init_rq_receives_unrouted_results():
    from aiges.dto import callback, init_rq
    q = init_rq()
    try:
        resp = Response()
        callback(resp, "no-such-session")
        assert q.get_nowait() is resp
    finally:
        routes.set_sink(None)


# -- WrapperBase ---------------------------------------------------------------------------------
MNIST = """
from aiges.sdk import WrapperBase, ImageBodyField, StringParamField, StringBodyField, SessionManager
from aiges.stream import StreamHandleThread

class UserRequest(object):
    input1 = ImageBodyField(key="img", path="test_data/0.png")
    param1 = StringParamField(key="ctl", value="ok")

class UserResponse(object):
    accept1 = StringBodyField(key="result")

class Wrapper(WrapperBase):
    serviceId = "mnist"
    version = "v1"
    requestCls = UserRequest()
    responseCls = UserResponse()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.model = None

    def wrapperInit(self, config):
        return 0

    def wrapperOnceExec(self, params, reqData):
        return None
"""


def test_wrapper_base_gives_each_instance_a_session_manager(tmp_path):
    (tmp_path / "wrapper.py").write_text(MNIST)
    engine = load(tmp_path / "wrapper.py")
    from aiges.stream import SessionManager
    other = type(engine.wrapper)(legacy=False, is_aipaas=True, keep_schema_default_value=False)
    assert isinstance(engine.wrapper.session, SessionManager)
    assert engine.wrapper.session is not other.session
    assert engine.wrapper.wrapperTestFunc([], []) is None
    mappings = type(engine.wrapper).__mappings__
    assert [f.key for f in mappings["inputs"]] == ["img"]
    assert [f.key for f in mappings["params"]] == ["ctl"]
    assert [f.key for f in mappings["accepts"]] == ["result"]
    with pytest.raises(NotImplementedError, match="gradio"):
        engine.wrapper.gradio()

    class NoSuper(type(engine.wrapper)):
        def __init__(self):  # upstream: AttributeError on self.session
            pass

    lone = NoSuper()
    assert isinstance(lone.session, SessionManager) and lone.session is lone.session
    assert lone.params_test_values == {} and NoSuper().session is not lone.session


def test_schema_matches_upstream_legacy_output(tmp_path):
    (tmp_path / "wrapper.py").write_text(MNIST)
    wrapper = load(tmp_path / "wrapper.py").wrapper
    expected = json.loads((UPSTREAM / "aiges_demo_stream_test" / "schema_legacy.json").read_text())
    text = wrapper.schema()
    assert isinstance(text, str) and json.loads(text) == expected
    assert json.loads(wrapper.schema_v2()) == expected  # no pydantic: the same document
    assert wrapper.params_test_values == {"ctl": "ok"}
    assert set(wrapper.inputs_test_values) == {"img"}


def test_schema_of_params_and_a_route_of_its_own(tmp_path):
    (tmp_path / "wrapper.py").write_text(textwrap.dedent("""
    from aiges.sdk import (WrapperBase, AudioBodyField, BooleanParamField, IntegerParamField,
                           NumberParamField, StringBodyField, StringParamField)

    class Req:
        a = StringParamField(key="lang", enums=["zh", "en"], required=True)
        b = NumberParamField(key="speed", maximum=2)
        c = IntegerParamField(key="n", enums=[1, 2])
        d = BooleanParamField(key="punct", default=True)
        audio = AudioBodyField(key="audio", path="")

    class Resp:
        accept1 = StringBodyField(key="text")

    class Wrapper(WrapperBase):
        serviceId = "asr"
        version = "v2"
        route = "/asr/custom"
        call_type = 1
        requestCls = Req()
        responseCls = Resp()

        def wrapperOnceExec(self, params, reqData):
            return None
    """))
    doc = json.loads(load(tmp_path / "wrapper.py").wrapper.schema())
    assert doc["meta"]["route"] == "/asr/custom" and doc["meta"]["call_type"] == 1
    section = doc["schemainput"]["properties"]["parameter"]["properties"]["asr"]
    assert section == {"type": "object", "required": ["lang"], "properties": {
        "lang": {"type": "string", "enum": ["zh", "en"]},
        "speed": {"type": "number", "maximum": 2},
        "n": {"type": "integer", "enum": [1, 2]},
        "punct": {"type": "boolean", "default": True}}}
    audio = doc["schemainput"]["properties"]["payload"]["properties"]["audio"]
    assert audio["properties"]["sample_rate"] == {"type": "integer", "enum": [8000, 16000]}
    assert doc["meta"]["asr"]["input"] == {"audio": {"dataType": "audio"}}


def test_session_manager_wrapper_streams_through_the_engine(tmp_path, echo_thread_cls):
    (tmp_path / "wrapper.py").write_text(textwrap.dedent("""
    from aiges_embed import SessionCreateResponse, callback
    from aiges.sdk import WrapperBase
    from aiges.stream import StreamHandleThread
    from aiges.dto import Response, ResponseData

    class Echo(StreamHandleThread):
        def run(self):
            while True:
                req = self.in_q.get()
                n = req.list[0]
                self.session_thread.callback_fn(Response([ResponseData("out", n.data,
                                                status=n.status)]), self.session_thread.sid)
                if n.status == 2:
                    self.session_thread.reset()

    class Wrapper(WrapperBase):
        def wrapperInit(self, config):
            self.session.init_handle_pool("thread", 1, Echo)
            return 0

        def wrapperCreate(self, params, sid, persId=0):
            handle = self.session.get_idle_handle()
            if not handle:
                return SessionCreateResponse(error_code=-1)
            s = self.session.get_session(handle)
            s.setup_sid(sid)
            s.setup_params(params)
            s.setup_callback_fn(callback)
            return SessionCreateResponse(handle=handle)

        def wrapperWrite(self, handle, req, sid):
            self.session.get_session(handle).in_q.put(req)
            return 0
    """))
    engine = load(tmp_path / "wrapper.py")
    engine.init({})
    got, done = [], threading.Event()

    def on_result(items, ret):
        got.extend((d.data, d.status) for d in items or [])
        if any(d.status == 2 for d in items or []):
            done.set()

    session = engine.create("sid-9", {}, [], on_result)
    with pytest.raises(EngineError) as info:  # the only handle is taken
        engine.create("sid-10", {}, [], on_result)
    assert (info.value.op, info.value.code, info.value.engine_code) == ("create", 10905, -1)
    engine.write(session, [Data("in", b"a", status=DataStatus.BEGIN)])
    engine.write(session, [Data("in", b"z", status=DataStatus.END)])
    assert done.wait(2)
    assert got == [(b"a", 0), (b"z", 2)]
    engine.destroy(session)


def test_self_run_logs_undeclared_keys_but_passes(tmp_path):
    path = tmp_path / "wrapper.py"
    path.write_text(textwrap.dedent("""
    from aiges.dto import Response, ResponseData
    from aiges.sdk import WrapperBase, StringBodyField

    class UserResponse(object):
        accept1 = StringBodyField(key="result")

    class Wrapper(WrapperBase):
        responseCls = UserResponse()
        def wrapperInit(self, config):
            return 0
        def wrapperOnceExec(self, params, reqData, usrTag="", persId=0):
            return Response([ResponseData("other", b"abc", type=2)])

    if __name__ == "__main__":
        Wrapper().run_once()
    """))
    out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "other is not declared in responseCls" in out.stderr
    assert "wrapper.py has been verified" in out.stderr
