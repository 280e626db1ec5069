"""Prometheus metrics of one service (SPEC 5), on a registry of its own.

One ``Metrics`` per application, made by ``create_app`` and kept in its state: no
module-level registry, so two apps in one process (tests) never share counts.
What every request or engine call updates (request counts and latency, engine call
latency, meter counts) is kept per thread without a lock and folded into the
exposition at scrape time (``_Sharded``): a prometheus_client child takes a lock and
a Python loop over the buckets per observation, about a microsecond each. The rest
are prometheus_client's metrics, their labelled children cached. Every method is
safe from any thread.
Knows nothing of HTTP or cffi.
"""
from __future__ import annotations

import logging
import threading
from bisect import bisect_left
from collections.abc import Callable
from threading import get_ident

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString
from prometheus_client.process_collector import ProcessCollector

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Seconds; one set for once requests (milliseconds) and whole sessions (minutes).
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0, 60.0, 300.0, float("inf"))
# Results of one session: a few for a sentence of speech, thousands for a long stream.
RESULT_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000, float("inf"))
ENGINE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                  0.5, 1.0, 2.5, 5.0, 10.0, 30.0, float("inf"))
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, float("inf"))
# Engines choose meter keys and error codes: past this many distinct values per
# metric, new ones are counted under "other" rather than growing without bound.
MAX_LABEL_VALUES = 200
OTHER = "other"


class _Children:
    """``metric.labels(*values)`` cached per values tuple, capped in number."""

    def __init__(self, name: str, metric, limit: int = MAX_LABEL_VALUES):
        self._name = name
        self._metric = metric
        self._limit = limit
        self._cache: dict[tuple, object] = {}
        self._lock = threading.Lock()

    def get(self, values: tuple):
        child = self._cache.get(values)
        if child is None:
            child = self._add(values)
        return child

    def _add(self, values: tuple):
        with self._lock:
            child = self._cache.get(values)
            if child is not None:
                return child
            if len(self._cache) >= self._limit:
                log.warning("too many label values; counting the rest as %r", OTHER,
                            extra={"metric": self._name, "labels": values})
                values = (*values[:-1], OTHER)
                child = self._cache.get(values)
                if child is not None:
                    return child
            child = self._metric.labels(*(str(v) for v in values))
            self._cache[values] = child
            return child


class _Sharded:
    """A counter or histogram family updated without a lock on the hot path: each
    thread adds to a dict of its own (keyed by its thread id: an id is only reused
    once its thread has ended, so one writer per dict), and ``collect`` sums them at
    scrape time. A plain ``+=`` on a value only this thread writes loses nothing; the
    scrape may see one update half done (a bucket counted, the sum not yet), which the
    next scrape corrects. Label values are capped as ``_Children`` caps them.
    ``buckets`` None: a counter; else each value is a list of per-bucket counts
    (upper bounds, +Inf last) followed by the sum."""

    def __init__(self, name: str, doc: str, labels: tuple[str, ...], registry,
                 buckets: tuple[float, ...] | None = None, limit: int = MAX_LABEL_VALUES):
        self.name, self.doc, self.labels = name, doc, labels
        self.buckets = buckets
        self._limit = limit
        self._shards: dict[int, dict] = {}
        self._known: set[tuple] = set()
        self._lock = threading.Lock()  # only for a label tuple seen for the first time
        registry.register(self)

    def _values(self) -> dict:
        ident = get_ident()
        values = self._shards.get(ident)
        if values is None:
            values = self._shards[ident] = {}
        return values

    def _admit(self, key: tuple) -> tuple:
        with self._lock:
            if key in self._known:
                return key
            if len(self._known) >= self._limit:
                log.warning("too many label values; counting the rest as %r", OTHER,
                            extra={"metric": self.name, "labels": key})
                key = (*key[:-1], OTHER)
            self._known.add(key)
            return key

    def inc(self, key: tuple, amount: float = 1) -> None:
        try:
            self._shards[get_ident()][key] += amount
        except KeyError:  # this thread's first update of these labels
            values = self._values()
            key = self._admit(key)
            values[key] = values.get(key, 0) + amount

    def observe(self, key: tuple, value: float) -> None:
        try:
            counts = self._shards[get_ident()][key]
        except KeyError:  # this thread's first update of these labels
            counts = self._counts(key)
        counts[bisect_left(self.buckets, value)] += 1
        counts[-1] += value

    def _counts(self, key: tuple) -> list:
        """This thread's bucket counts (and sum) of ``key``, made on first use."""
        values = self._values()
        key = self._admit(key)
        counts = values.get(key)
        if counts is None:
            counts = values[key] = [0] * len(self.buckets) + [0.0]
        return counts

    def observer(self, key: tuple) -> Callable[[float], None]:
        """``observe`` of ``key`` for this thread alone, looked up once: for a caller
        that observes the same labels from one thread many times (the loop's inline
        engine calls)."""
        counts = self._counts(key)
        buckets = self.buckets

        def observe(value: float) -> None:
            counts[bisect_left(buckets, value)] += 1
            counts[-1] += value

        return observe

    def _totals(self) -> dict:
        totals: dict = {}
        for values in list(self._shards.values()):
            for key, value in list(values.items()):  # one C call: no thread runs meanwhile
                labels = tuple(str(v) for v in key)
                if self.buckets is None:
                    totals[labels] = totals.get(labels, 0) + value
                else:
                    total = totals.get(labels)
                    totals[labels] = list(value) if total is None else \
                        [a + b for a, b in zip(total, value, strict=True)]
        return totals

    def describe(self):
        return [self._family()]

    def _family(self):
        if self.buckets is None:
            return CounterMetricFamily(self.name, self.doc, labels=self.labels)
        return HistogramMetricFamily(self.name, self.doc, labels=self.labels)

    def collect(self):
        family = self._family()
        for labels, value in sorted(self._totals().items()):
            if self.buckets is None:
                family.add_metric(labels, value)
            else:
                cumulative, running = [], 0
                for bound, count in zip(self.buckets, value, strict=False):
                    running += count
                    cumulative.append((floatToGoString(bound), running))
                family.add_metric(labels, cumulative, sum_value=value[-1])
        yield family


class Metrics:
    def __init__(self, process: bool = True):
        self.registry = registry = CollectorRegistry()
        if process:
            ProcessCollector(registry=registry)
        # Updated for every request and engine call: sharded per thread (_Sharded).
        self._requests = _Sharded("aiges_requests", "Requests answered, by mode (once, "
                                  "session_ws, session_http; a session counts once, at its "
                                  "end) and header.code (0 = ok)", ("mode", "code"), registry)
        self._latency = _Sharded("aiges_request_duration_seconds", "Once: the whole request; "
                                 "sessions: from create to end", ("mode",), registry,
                                 REQUEST_BUCKETS)
        self._engine_calls = _Sharded("aiges_engine_call_duration_seconds", "Time inside one "
                                      "engine call, by op (exec, execAsync, create, write, "
                                      "read, destroy, init, fini, ...)", ("op",), registry,
                                      ENGINE_BUCKETS)
        engine_errors = Counter("aiges_engine_errors", "Non-zero engine returns, by op and the "
                                "engine's own code", ("op", "code"), registry=registry)
        self._meter = _Sharded("aiges_engine_meter", "Counts the engine reported through its "
                               "CTMeterCustom callback, by meter key", ("key",), registry)
        self._queue_wait = Histogram(
            "aiges_queue_wait_seconds", "How long a once request that found no free "
            "instance waited for one (the rest waited nothing: compare the _count with "
            "aiges_requests_total)", buckets=REQUEST_BUCKETS, registry=registry)
        first_result = Histogram(
            "aiges_session_first_result_seconds", "From a session's create to the engine's "
            "first result, by mode (sessions with a result)", ("mode",),
            buckets=REQUEST_BUCKETS, registry=registry)
        results = Histogram("aiges_session_results", "Result frames a session handed out, "
                            "by mode", ("mode",), buckets=RESULT_BUCKETS, registry=registry)
        self._first_result = _Children("aiges_session_first_result_seconds", first_result)
        self._results = _Children("aiges_session_results", results)
        self.instances = Gauge("aiges_instances", "Engine instances ([fc] max)",
                               registry=registry)
        self.instances_in_use = Gauge("aiges_instances_in_use", "Instances held by a request "
                                      "or session", registry=registry)
        self.instances_stuck = Gauge("aiges_instances_stuck", "Instances held by an engine "
                                     "call that outlived its request (timed out)",
                                     registry=registry)
        self.queue_depth = Gauge("aiges_queue_depth", "Requests waiting for a free instance",
                                 registry=registry)
        self.sessions_active = Gauge("aiges_sessions_active", "Open streaming sessions",
                                     registry=registry)
        # Hot reload: attempts by result (ok, failed), and the engine now serving.
        self._reloads = Counter("aiges_engine_reloads", "Engine reloads (SIGHUP or POST "
                                "/admin/reload) by result: ok, failed (the old engine kept "
                                "serving)", ("result",), registry=registry)
        self._engine_info = Gauge("aiges_engine_info", "1 for the engine serving new requests: "
                                  "its wrapperVersion, path and generation (1 at start-up, "
                                  "+1 per reload)", ("version", "path", "generation"),
                                  registry=registry)
        self.engines_retiring = Gauge("aiges_engines_retiring", "Replaced engines still "
                                      "finishing their requests and sessions",
                                      registry=registry)
        # Adaptive batching ([batch] maxSize > 1): the histogram's count is the batch calls.
        self._batch_size = Histogram("aiges_batch_size", "Once requests per batch call "
                                     "(wrapperExecBatch)", buckets=BATCH_BUCKETS,
                                     registry=registry)
        self._batch_calls = Counter("aiges_batch_calls", "Batch calls by result: ok (the call "
                                    "ran; its items may still fail one by one), failed (the "
                                    "whole call failed), timeout (it outlived the once "
                                    "timeout)", ("result",), registry=registry)
        self.batch_waiting = Gauge("aiges_batch_waiting", "Once requests waiting to join a "
                                   "batch", registry=registry)
        # Engine-aware readiness ([aiges] healthIntervalS, wrapperHealth).
        self._health_failures = Counter("aiges_engine_health_failures", "Engine health checks "
                                        "(wrapperHealth) that answered not healthy, raised or "
                                        "did not return within the interval",
                                        registry=registry)
        self.engine_healthy = Gauge("aiges_engine_healthy", "1 while the serving engine's "
                                    "health check passes (or it has none), 0 while it fails "
                                    "(/ready is 503)", registry=registry)
        self.engine_healthy.set(1)
        # Cancellation (wrapperCancel): calls asked to stop early, by why.
        self._cancels = Counter("aiges_engine_cancels", "Work the engine was asked to stop "
                                "(wrapperCancel), by reason: client_left (the client went "
                                "while its call ran), timeout (the once timeout fired), "
                                "shutdown (still running when the drain time ended)",
                                ("reason",), registry=registry)
        self._engine_errors = _Children("aiges_engine_errors", engine_errors)

    def request(self, mode: str, code: int, seconds: float) -> None:
        self._requests.inc((mode, code))
        self._latency.observe((mode,), seconds)

    def session(self, mode: str, first_result_s: float | None, results: int) -> None:
        """A session's end: its time to the first result (if it had one), its results."""
        if first_result_s is not None:
            self._first_result.get((mode,)).observe(first_result_s)
        self._results.get((mode,)).observe(results)

    def engine_call(self, op: str, seconds: float) -> None:
        self._engine_calls.observe((op,), seconds)

    def engine_call_observer(self, op: str) -> Callable[[float], None]:
        """``engine_call`` of ``op`` for the calling thread alone (_Sharded.observer)."""
        return self._engine_calls.observer((op,))

    def engine_error(self, op: str, code: int) -> None:
        self._engine_errors.get((op, code)).inc()

    def batch_size(self, size: int) -> None:
        self._batch_size.observe(size)

    def batch_call(self, result: str) -> None:
        self._batch_calls.labels(result).inc()

    def meter(self, key: str, count: int) -> None:
        if count < 0:
            # A Prometheus counter only goes up; a negative count has no meaning here.
            log.warning("negative engine meter count ignored", extra={"key": key, "count": count})
            return
        self._meter.inc((key,), count)

    def health_failure(self) -> None:
        self._health_failures.inc()

    def cancel(self, reason: str) -> None:
        self._cancels.labels(reason).inc()

    def reload(self, ok: bool) -> None:
        self._reloads.labels("ok" if ok else "failed").inc()

    def engine(self, version: str, path: str, generation: int) -> None:
        """The engine serving now (one series: the previous one's is removed)."""
        self._engine_info.clear()
        self._engine_info.labels(version, path, str(generation)).set(1)

    def watch(self, pool, sessions) -> None:
        """Gauges read at scrape time from the instance pool and the session registry."""
        pool.waited = self._queue_wait.observe
        self.instances.set_function(lambda: pool.size)
        self.instances_in_use.set_function(lambda: pool.in_use)
        self.queue_depth.set_function(lambda: pool.waiting)
        self.instances_stuck.set_function(lambda: pool.stuck)
        self.sessions_active.set_function(lambda: len(sessions.live))

    def supervised(self, board) -> None:
        """A worker: the supervisor's counts of replaced workers, read from the board
        (aiges.board) at scrape time; every worker shows the same numbers."""
        self.registry.register(_Replaced(board))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _Replaced:
    """aiges_worker_restarts_total{reason}: the supervisor's counts, from the board."""

    def __init__(self, board):
        self.board = board

    def collect(self):
        died, stalled = self.board.counts()
        family = CounterMetricFamily(
            "aiges_worker_restarts", "Workers the supervisor replaced, by reason: died (an "
            "exit or a signal of its own: a crash, the OOM killer), stalled (its event loop "
            "did not beat for [aiges] workerStallS; killed)", labels=("reason",))
        family.add_metric(("died",), died)
        family.add_metric(("stalled",), stalled)
        yield family
