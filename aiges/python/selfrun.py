"""``python wrapper.py``: run the wrapper on its declared test values and check the answer.

Like upstream's run_once/run_stream + check_resp, with one difference: a wrapper that
raises, returns no Response or a malformed one (len not matching data, repeated keys in
one answer, an error code) makes the run exit 1; outputs whose key or type differ from
responseCls are logged only, as upstream does (its examples stream keys they never declared).
"""
from __future__ import annotations

import logging
import queue
import time

from aiges.dto import DataListCls, DataListNode, Response
from aiges.engine import DataStatus
from aiges.python.binding import bind
from aiges.python.push import routes
from aiges.sdk import ParamField, PayloadField, declared_fields

log = logging.getLogger("wrapper")

FINAL = (DataStatus.END, DataStatus.ONCE)
STREAM_WAIT_S = 30


def _request(wrapper):
    fields = declared_fields(wrapper.requestCls)
    wrapper.params_test_values.update({f.key: f.test_value for f in fields
                                       if isinstance(f, ParamField)})
    params = {f.key: str(f.test_value) for f in fields
              if isinstance(f, ParamField) and f.test_value not in (None, "")}
    nodes = [DataListNode(f.key, f.test_value, type=f.data_type, status=f.status)
             for f in fields if isinstance(f, PayloadField)]
    wrapper.inputs_test_values.update({n.key: n.data for n in nodes})
    return params, DataListCls(nodes)


def problems(wrapper, response, stream: bool = False) -> tuple[list[str], list[str]]:
    """(errors, warnings) about one response: errors fail a self-run, warnings (keys or
    types other than responseCls declares) are only logged."""
    if not isinstance(response, Response):
        return [f"the wrapper must return a Response, got {type(response).__name__}"], []
    if response.error_code:
        return [f"error_code {response.error_code}: "
                f"{wrapper.wrapperError(response.error_code)}"], []
    errors, warnings = [], []
    declared = {f.key: f.data_type for f in declared_fields(wrapper.responseCls)}
    keys = [d.key for d in response.list]
    if not keys and not stream:
        errors.append("the response list is empty")
    if len(keys) != len(set(keys)):
        errors.append(f"response keys repeat: {keys}")
    for d in response.list:
        data = d.data.encode() if isinstance(d.data, str) else d.data
        if d.len != len(data or b""):
            errors.append(f"{d.key}: len {d.len} but {len(data or b'')} bytes of data")
        if declared and d.key not in declared:
            warnings.append(f"{d.key} is not declared in responseCls ({sorted(declared)})")
        elif declared and d.type != declared[d.key]:
            warnings.append(f"{d.key}: type {d.type}, declared {declared[d.key]}")
    return errors, warnings


def self_run(wrapper, stream: bool = False) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    ret = wrapper.wrapperInit(dict(wrapper.config))
    if ret:
        log.error("wrapperInit returned %s: %s", ret, wrapper.wrapperError(ret))
        return 1
    params, req = _request(wrapper)
    try:
        responses = _stream(wrapper, params, req) if stream else \
            [bind(wrapper.wrapperOnceExec, ("params", "data", "tag", "pers", "sid"))(
                params, req, "self-run", 0, "self-run")]
    except TimeoutError as exc:
        log.error("%s", exc)
        return 1
    finally:
        wrapper.wrapperFini()
    errors, warnings = [], []
    for response in responses:
        found = problems(wrapper, response, stream)
        errors += [e for e in found[0] if e not in errors]
        warnings += [w for w in found[1] if w not in warnings]
    for text in warnings:
        log.warning(text)
    for text in errors:
        log.error(text)
    if errors:
        return 1
    for d in (d for r in responses for d in r.list):
        log.info("output %s (type %s, status %s): %r", d.key, d.type, d.status, d.data[:200])
    log.info("wrapper.py has been verified")
    return 0


def _stream(wrapper, params, req) -> list[Response]:
    """One session: create, write the test inputs as Once, collect until a final output,
    read or pushed (wrappers that push may still answer every read with an empty item)."""
    sid, pushed = "self-run", queue.Queue()
    routes.add(sid, pushed.put)
    try:
        made = bind(wrapper.wrapperCreate, ("params", "sid", "pers", "tag"))(params, sid, 0, sid)
        if getattr(made, "error_code", -1):
            return [Response(error_code=getattr(made, "error_code", -1))]
        ret = bind(wrapper.wrapperWrite, ("handle", "data", "sid"))(made.handle, req, sid)
        if ret:
            return [Response(error_code=ret)]
        read = bind(wrapper.wrapperRead, ("handle", "sid"))
        collected: list[Response] = []
        deadline = time.monotonic() + STREAM_WAIT_S
        while not any(r.error_code or any(d.status in FINAL for d in r.list)
                      for r in collected):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no final result (status End or Once) in {STREAM_WAIT_S} s")
            got = read(made.handle, sid)
            useful = [d for d in (got.list if got is not None else [])
                      if d.data or d.status in FINAL]
            if useful or (got is not None and got.error_code):
                collected.append(Response(useful, got.error_code))
                continue
            try:
                collected.append(pushed.get(timeout=0.05))
            except queue.Empty:
                pass
        bind(wrapper.wrapperDestroy, ("handle", "sid"))(made.handle, sid)
        return collected
    finally:
        routes.remove(sid)
