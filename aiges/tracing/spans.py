"""The service's spans. One ``Tracing`` per service, owned by its state and handed to
each generation's runner (``watch``); the transports, the pool's queue-wait hook and
``Runner._timed`` call into it. Imported only when tracing is on.

A once request's or a session's span is registered under its sid while it lasts:
engine calls find their parent by the sid ``Runner._timed`` already knows, on
whatever thread they run, and the pool's queue-wait hook by the sid the acquiring
task set in ``current``. The engine gets its call span's ``traceparent`` as a param
(calls that take params: exec, execAsync, create, execBatch), so spans it makes of
its own become children of that call.

Span tree (names follow the HTTP semantic conventions loosely)::

    POST /v1/{service}   (SERVER; parent: the caller's traceparent, if any)
      aiges.queue_wait   (only when the request queued for an instance)
      aiges.engine exec  (or execAsync; execBatch with [batch]: one per request)
    aiges.session        (SERVER; open to end, wrapperDestroy included)
      aiges.queue_wait
      aiges.engine create / write / read (reads that return something) / destroy ...
"""
from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from time import perf_counter, time_ns

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from aiges.errors import AigesError, EngineError

log = logging.getLogger(__name__)

PARAM = "traceparent"  # the param engines get
# Where an engine op's params are among the arguments Runner._timed passes on.
PARAMS_AT = {"exec": 1, "execAsync": 1, "create": 1}
BATCH_OPS = frozenset({"exec_batch", "execBatch"})  # the runner's name, the ABI's
CLOSE_S = 5.0  # the most the exit waits for the last spans to be exported


class _Live:
    """A once request or session in progress: its span, the context its children get."""

    __slots__ = ("span", "context", "empty_reads", "start_ns")

    def __init__(self, span, start_ns: int):
        self.span = span
        self.start_ns = start_ns  # children measured after the fact start no earlier
        self.context = trace.set_span_in_context(span, Context())
        self.empty_reads = 0  # wrapperRead calls that returned nothing: counted, no span


class Tracing:
    def __init__(self, provider, service: str):
        self.provider = provider
        self.service = service
        self._tracer = provider.get_tracer("aiges")
        self._propagator = TraceContextTextMapPropagator()
        self._live: dict[str, _Live] = {}  # sid -> once request or session in progress
        # The sid whose queue wait the pool reports: set by the task that acquires an
        # instance (aiges.service.once.Pending.finish, SessionRegistry.open). A stale sid
        # left in a task's context finds nothing in _live: harmless.
        self.current: ContextVar[str] = ContextVar("aiges_tracing_sid", default="")

    # -- the caller's trace -------------------------------------------------------------
    def extract(self, carrier: Mapping | Iterable | None) -> Context:
        """The caller's context from W3C ``traceparent``/``tracestate``: an HTTP header
        mapping (case-insensitive, as aiohttp's), a dict with lower-case keys, or gRPC
        metadata (``(key, value)`` pairs). Without a valid traceparent: an empty
        context (the request's span starts a trace)."""
        if carrier is None:
            return Context()
        if not isinstance(carrier, Mapping):
            carrier = {str(k).lower(): v for k, v in carrier}
        return self._propagator.extract(carrier, context=Context())

    # -- once requests ------------------------------------------------------------------
    def start_once(self, sid: str, route: str, started: float,
                   carrier: Mapping | Iterable | None) -> None:
        """``started``: perf_counter() at the request's arrival."""
        start_ns = _epoch_ns(started)
        span = self._tracer.start_span(
            f"POST {route}", context=self.extract(carrier), kind=SpanKind.SERVER,
            start_time=start_ns,
            attributes={"http.request.method": "POST", "http.route": route,
                        "aiges.sid": sid, "aiges.service": self.service})
        self._live[sid] = _Live(span, start_ns)

    def end_once(self, sid: str, failure: AigesError | None) -> None:
        live = self._live.pop(sid, None)
        if live is None:
            return  # refused before it began (an unreadable body)
        span = live.span
        span.set_attribute("http.response.status_code",
                           failure.http_status if failure is not None else 200)
        _outcome(span, failure)
        span.end()

    # -- sessions -----------------------------------------------------------------------
    def start_session(self, sid: str, mode: str, carrier: Mapping | Iterable | None) -> None:
        start_ns = time_ns()
        span = self._tracer.start_span(
            "aiges.session", context=self.extract(carrier), kind=SpanKind.SERVER,
            start_time=start_ns, attributes={"aiges.sid": sid, "aiges.session.mode": mode,
                                             "aiges.service": self.service})
        self._live[sid] = _Live(span, start_ns)

    def opened(self, sid: str, instance: int | None) -> None:
        live = self._live.get(sid)
        if live is not None and instance is not None:
            live.span.set_attribute("aiges.instance", instance)

    def end_session(self, session, error: BaseException | None = None) -> None:
        """The session ended (``error``: why it could not open)."""
        live = self._live.pop(session.sid, None)
        if live is None:
            return
        span = live.span
        span.set_attribute("aiges.session.frames_in", session.writes)
        span.set_attribute("aiges.session.frames_out", session.seq)
        span.set_attribute("aiges.engine.empty_reads", live.empty_reads)
        if session.first_result_s is not None:
            span.set_attribute("aiges.session.first_result_s", session.first_result_s)
        _outcome(span, error if error is not None else session.error)
        span.end()

    # -- the queue and the engine -------------------------------------------------------
    def watch(self, runner) -> None:
        """``runner`` (a generation's) traces its engine calls and its pool's queue waits
        from now on. After Metrics.watch, whose queue-wait hook this one calls too."""
        runner.tracing = self
        pool = runner.pool
        observe = pool.waited

        def waited(seconds: float) -> None:
            if observe is not None:
                observe(seconds)
            self.queue_waited(seconds)

        pool.waited = waited

    def queue_waited(self, seconds: float) -> None:
        """The acquiring task's request or session queued ``seconds`` for an instance."""
        sid = self.current.get()
        live = self._live.get(sid)
        if live is None or not live.span.is_recording():
            return
        end = time_ns()
        span = self._tracer.start_span("aiges.queue_wait", context=live.context,
                                       # the loop's clock, not the request's: no
                                       # earlier than its parent
                                       start_time=max(end - int(seconds * 1e9), live.start_ns),
                                       attributes={"aiges.sid": sid})
        span.end(end_time=end)

    def engine_call(self, op: str, sid: str, fn, args: tuple):
        """``fn(*args)``, an engine call of ``op`` for ``sid``, as a child span of its
        request or session (none for calls of neither: init, fini, health...)."""
        if op in BATCH_OPS:
            return self._batch(fn, args)
        live = self._live.get(sid)
        if live is None:
            return fn(*args)
        at = PARAMS_AT.get(op)
        if not live.span.is_recording():
            # Not sampled: a child would not be recorded either. The engine still gets
            # the trace, with the sampled flag off.
            return fn(*_with_param(args, at, live.span)) if at is not None else fn(*args)
        if op == "read":
            return self._read(live, sid, fn, args)
        span = self._engine_span(op, sid, live.context)
        if at is not None:
            args = _with_param(args, at, span)
        try:
            return fn(*args)
        except BaseException as exc:
            _outcome(span, exc)
            raise
        finally:
            span.end()

    def _read(self, live: _Live, sid: str, fn, args: tuple):
        """A read becomes a span only when it returns something or fails: reads that
        poll an engine with nothing yet are counted on the session's span instead."""
        started = time_ns()
        try:
            items = fn(*args)
        except BaseException as exc:
            span = self._engine_span("read", sid, live.context, started)
            _outcome(span, exc)
            span.end()
            raise
        if items:
            span = self._engine_span("read", sid, live.context, started)
            span.set_attribute("aiges.outputs", len(items))
            span.end()
        else:
            live.empty_reads += 1  # one session's calls are sequential
        return items

    def _batch(self, fn, args: tuple):
        """wrapperExecBatch: a child span in each request's trace, each request's params
        with its own traceparent; an item's own engine error marks its span only."""
        sids, params = args[0], list(args[1])
        spans = []
        for i, sid in enumerate(sids):
            live = self._live.get(sid)
            span = None
            if live is not None and not live.span.is_recording():
                params[i] = {**params[i], PARAM: _traceparent(live.span)}
            elif live is not None:
                span = self._engine_span("execBatch", sid, live.context)
                span.set_attribute("aiges.batch.size", len(sids))
                params[i] = {**params[i], PARAM: _traceparent(span)}
            spans.append(span)
        try:
            results = fn(sids, params, *args[2:])
        except BaseException as exc:
            for span in spans:
                if span is not None:
                    _outcome(span, exc)
            raise
        else:
            if isinstance(results, list) and len(results) == len(spans):
                for span, result in zip(spans, results):
                    if span is not None and isinstance(result, BaseException):
                        _outcome(span, result)
            return results
        finally:
            for span in spans:
                if span is not None:
                    span.end()

    def _engine_span(self, op: str, sid: str, context: Context, start_time: int | None = None):
        return self._tracer.start_span(
            f"aiges.engine {op}", context=context, start_time=start_time,
            attributes={"aiges.engine.op": op, "aiges.sid": sid,
                        # an engine thread (aiges-engine_N) or the loop's (inline)
                        "thread.name": threading.current_thread().name})

    # -- the end ------------------------------------------------------------------------
    async def close(self, timeout_s: float = CLOSE_S) -> None:
        """Export the spans still buffered and stop; at most ``timeout_s``, so that a
        collector that is down does not hold the exit."""
        closer = threading.Thread(target=self.provider.shutdown, name="aiges-tracing-close",
                                  daemon=True)
        closer.start()
        await asyncio.get_running_loop().run_in_executor(None, closer.join, timeout_s)
        if closer.is_alive():
            log.warning("tracing: spans still unexported at exit", extra={"waited_s": timeout_s})


def _with_param(args: tuple, at: int, span) -> tuple:
    """``args`` with a copy of the params at ``at`` that carries ``span``'s traceparent."""
    return (*args[:at], {**args[at], PARAM: _traceparent(span)}, *args[at + 1:])


def _traceparent(span) -> str:
    ctx = span.get_span_context()
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def _epoch_ns(perf_started: float) -> int:
    """A perf_counter() reading as the wall-clock nanoseconds spans are stamped with."""
    return time_ns() - int((perf_counter() - perf_started) * 1e9)


def _outcome(span, error: BaseException | None) -> None:
    """The aiges code on the span; status ERROR with the message when it failed."""
    if error is None:
        span.set_attribute("aiges.code", 0)
        return
    if isinstance(error, AigesError):
        span.set_attribute("aiges.code", error.code)
        if isinstance(error, EngineError):
            span.set_attribute("aiges.engine.code", error.engine_code)
        span.set_status(Status(StatusCode.ERROR, error.message))
    else:
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, type(error).__name__))
