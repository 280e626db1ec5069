"""``python wrapper.py``: run the wrapper on its declared test values and check the answer."""
from __future__ import annotations

import logging
import queue

from aiges.dto import DataListCls, DataListNode, Response
from aiges.engine import DataStatus
from aiges.python.binding import bind
from aiges.python.push import routes
from aiges.sdk import ParamField, PayloadField, declared_fields

log = logging.getLogger("wrapper")


def _request(wrapper):
    fields = declared_fields(wrapper.requestCls)
    params = {f.key: str(f.test_value) for f in fields
              if isinstance(f, ParamField) and f.test_value not in (None, "")}
    nodes = [DataListNode(f.key, f.test_value, type=f.data_type, status=f.status)
             for f in fields if isinstance(f, PayloadField)]
    return params, DataListCls(nodes)


def problems(wrapper, response) -> list[str]:
    """What is wrong with a once response, in upstream's words (empty: fine)."""
    if not isinstance(response, Response):
        return [f"wrapperOnceExec must return a Response, got {type(response).__name__}"]
    if response.error_code:
        return [f"error_code {response.error_code}: {wrapper.wrapperError(response.error_code)}"]
    found = []
    declared = {f.key: f.data_type for f in declared_fields(wrapper.responseCls)}
    keys = [d.key for d in response.list]
    if not keys:
        found.append("the response list is empty")
    if len(keys) != len(set(keys)):
        found.append(f"response keys repeat: {keys}")
    for d in response.list:
        data = d.data.encode() if isinstance(d.data, str) else d.data
        if d.len != len(data):
            found.append(f"{d.key}: len {d.len} but {len(data)} bytes of data")
        if declared and d.key not in declared:
            found.append(f"{d.key} is not declared in responseCls ({sorted(declared)})")
        elif declared and d.type != declared[d.key]:
            found.append(f"{d.key}: type {d.type}, declared {declared[d.key]}")
    return found


def self_run(wrapper, stream: bool = False) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    ret = wrapper.wrapperInit(dict(wrapper.config))
    if ret:
        log.error("wrapperInit returned %s: %s", ret, wrapper.wrapperError(ret))
        return 1
    params, req = _request(wrapper)
    try:
        response = _stream(wrapper, params, req) if stream else \
            bind(wrapper.wrapperOnceExec, ("params", "data", "tag", "pers", "sid"))(
                params=params, data=req, tag="self-run", pers=0, sid="self-run")
    finally:
        wrapper.wrapperFini()
    found = problems(wrapper, response)
    for problem in found:
        log.error(problem)
    if found:
        return 1
    for d in response.list:
        log.info("output %s (type %s, status %s): %r", d.key, d.type, d.status, d.data[:200])
    log.info("wrapper.py has been verified")
    return 0


def _stream(wrapper, params, req) -> Response:
    """One session: create, write the test inputs as Once, collect until a final output."""
    sid, pushed = "self-run", queue.Queue()
    routes.add(sid, pushed.put)
    try:
        made = bind(wrapper.wrapperCreate, ("params", "sid", "pers", "tag"))(
            params=params, sid=sid, pers=0, tag=sid)
        bind(wrapper.wrapperWrite, ("handle", "data", "sid"))(handle=made.handle, data=req, sid=sid)
        read = bind(wrapper.wrapperRead, ("handle", "sid"))
        collected = Response([])
        while not any(d.status in (DataStatus.END, DataStatus.ONCE) for d in collected.list):
            got = read(handle=made.handle, sid=sid)
            if got is None or not got.list:
                got = pushed.get(timeout=30)
            collected.list += [d for d in got.list if d.data or d.status >= DataStatus.END]
        bind(wrapper.wrapperDestroy, ("handle", "sid"))(handle=made.handle, sid=sid)
        return collected
    finally:
        routes.remove(sid)
