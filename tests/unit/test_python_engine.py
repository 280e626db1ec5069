"""Python engines: upstream wrapper variants load and behave like C engines."""
import textwrap
import threading

import pytest

from aiges.dto import DataListCls, DataListNode, Response, ResponseData
from aiges.engine import Data, DataStatus, Modes
from aiges.errors import EngineError, EngineLoadError
from aiges.python import load

HEADER = """
from aiges.core.types import *
from aiges.dto import Response, ResponseData, DataListCls, SessionCreateResponse, callback
from aiges.sdk import WrapperBase, StringBodyField
from aiges.utils.log import log
"""


def wrapper(tmp_path, body: str, name: str = "wrapper.py"):
    path = tmp_path / name
    path.write_text(HEADER + textwrap.dedent(body))
    return load(path)


def test_upstream_spellings_are_bound(tmp_path):
    engine = wrapper(tmp_path, """
    class Wrapper(WrapperBase):
        def wrapperInit(cls, config: {}) -> int:
            cls.config = config
            return 0
        def wrapperOnceExec(cls, params: {}, reqData: DataListCls, userTag: str = "",
                            persId: int = 0) -> Response:
            l = ResponseData()
            l.key = "result"
            l.data = f"{userTag}|{persId}|{params['x']}|{reqData.get('in').data.decode()}"
            l.len = len(l.data)
            res = Response()
            res.list = [l]
            return res
        def wrapperCreate(self, params, sid, persId=0, usrTag=""):
            return SessionCreateResponse(handle="h-" + sid)
        def wrapperWrite(self, handle: str, req: DataListCls, sid: str) -> int:
            self.seen = (handle, sid, req.list[0].data)
            return 0
        def wrapperRead(self, handle, sid):
            return Response([ResponseData("r", b"", 0, DataText, DataContinue)])
    """)
    assert engine.modes == Modes(once_sync=True, once_async=False, session=True)
    engine.init({"a": "1"})
    assert engine.wrapper.config == {"a": "1"}
    out = engine.exec("tag-1", {"x": "y"}, [Data("in", b"data")], [9])
    assert out == [Data("result", b"tag-1|9|y|data", 0, 3, {})]
    session = engine.create("sid-1", {}, [], None)
    engine.write(session, [Data("in", b"chunk", status=DataStatus.BEGIN)])
    assert engine.wrapper.seen == ("h-sid-1", "sid-1", b"chunk")
    assert engine.read(session) is None  # an empty, non-final item means "nothing yet"


def test_error_code_and_exceptions_become_engine_errors(tmp_path):
    engine = wrapper(tmp_path, """
    class Wrapper(WrapperBase):
        def wrapperOnceExec(self, params, reqData, usrTag="", persId=0):
            if params.get("boom"):
                raise ValueError("bad model input")
            return Response().response_err(100)
        def wrapperError(self, ret):
            return "user error defined here" if ret == 100 else ""
    """)
    with pytest.raises(EngineError) as info:
        engine.exec("t", {}, [], [])
    assert (info.value.code, info.value.message) == (10909, "user error defined here;code=100")
    with pytest.raises(EngineError) as info:
        engine.exec("t", {"boom": "1"}, [], [])
    assert "ValueError: bad model input" in info.value.message


def test_init_failure(tmp_path):
    engine = wrapper(tmp_path, """
    class Wrapper(WrapperBase):
        def wrapperInit(self, config):
            return 7
        def wrapperError(self, ret):
            return "no model"
        def wrapperOnceExec(self, params, reqData, usrTag="", persId=0):
            return Response()
    """)
    with pytest.raises(EngineError) as info:
        engine.init({})
    assert (info.value.code, info.value.message) == (10901, "no model;code=7")


def test_pushed_session_results(tmp_path):
    engine = wrapper(tmp_path, """
    import threading
    class Wrapper(WrapperBase):
        def wrapperCreate(self, params, sid, persId=0, usrTag=""):
            return SessionCreateResponse(handle=sid)
        def wrapperWrite(self, handle, req, sid):
            r = Response([ResponseData("out", req.list[0].data, status=DataEnd)])
            threading.Thread(target=callback, args=(r, sid)).start()
            return 0
    """)
    got, done = [], threading.Event()
    session = engine.create("s1", {}, [], lambda items, ret: (got.append((items, ret)), done.set()))
    engine.write(session, [Data("in", b"x", status=DataStatus.END)])
    assert done.wait(2)
    assert got == [([Data("out", b"x", 0, 2, {})], 0)]
    engine.destroy(session)


@pytest.mark.parametrize("body, message", [
    ("x = 1\n", "defines no class Wrapper"),
    ("class Wrapper(WrapperBase):\n    pass\n", "neither wrapperOnceExec"),
    ("import not_a_module_here\n", "cannot import"),
])
def test_bad_wrappers_are_refused(tmp_path, body, message):
    with pytest.raises(EngineLoadError, match=message):
        wrapper(tmp_path, body)


def test_dto_shapes():
    d = ResponseData()
    d.setData(b"abc")
    assert (d.data, d.len, d.status) == (b"abc", 3, 3)
    req = DataListCls([DataListNode("a", b"1"), DataListNode("b", b"22")])
    assert req.get("b").len == 2 and req.get("zz") is None
    assert Response().list == [] and Response().response_err(5).error_code == 5


@pytest.mark.parametrize("example, stream", [("echo", False), ("stream", True), ("digits", False)])
def test_self_run_of_the_examples(example, stream):
    import subprocess
    import sys
    from pathlib import Path
    path = Path(__file__).resolve().parents[2] / "python_examples" / example / "wrapper.py"
    out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "wrapper.py has been verified" in out.stderr


def test_self_run_reports_a_bad_response(tmp_path):
    import subprocess
    import sys
    path = tmp_path / "wrapper.py"
    path.write_text(HEADER + textwrap.dedent("""
    class UserResponse(object):
        accept1 = StringBodyField(key="result")
    class Wrapper(WrapperBase):
        responseCls = UserResponse()
        def wrapperOnceExec(self, params, reqData, usrTag="", persId=0):
            d = ResponseData("other", b"abc")
            d.len = 5
            return Response([d])
    if __name__ == "__main__":
        Wrapper().run()
    """))
    out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "len 5 but 3 bytes" in out.stderr and "not declared in responseCls" in out.stderr
