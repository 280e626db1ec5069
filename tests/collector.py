"""An in-process OTLP/HTTP trace collector for tests: an aiohttp server on 127.0.0.1
that takes ``POST /v1/traces`` (protobuf ``ExportTraceServiceRequest``, gzip or not)
and keeps every span, decoded into plain ``Span`` records."""
from __future__ import annotations

import asyncio
import gzip
from dataclasses import dataclass, field

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest, ExportTraceServiceResponse)


@dataclass
class Span:
    name: str
    trace_id: str      # 32 hex digits
    span_id: str       # 16 hex digits
    parent_id: str     # "" for a root span
    kind: int          # SpanKind of the proto: 1 internal, 2 server
    attributes: dict
    error: bool        # status ERROR
    message: str       # the status description
    start_ns: int
    end_ns: int
    service: str = ""  # the resource's service.name


def _value(any_value):
    which = any_value.WhichOneof("value")
    return getattr(any_value, which) if which else None


@dataclass
class Collector:
    spans: list[Span] = field(default_factory=list)
    posts: int = 0
    url: str = ""
    _runner: web.AppRunner | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> "Collector":
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _traces(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        export = ExportTraceServiceRequest()
        export.ParseFromString(body)
        self.posts += 1
        for resource_spans in export.resource_spans:
            resource = {kv.key: _value(kv.value) for kv in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for s in scope_spans.spans:
                    self.spans.append(Span(
                        s.name, s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex(),
                        s.kind, {kv.key: _value(kv.value) for kv in s.attributes},
                        s.status.code == 2, s.status.message, s.start_time_unix_nano,
                        s.end_time_unix_nano, resource.get("service.name", "")))
        self._arrived.set()
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(),
                            content_type="application/x-protobuf")

    async def wait_for(self, check, timeout: float = 10.0) -> list[Span]:
        """Until ``check(spans)`` is true; the spans then."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not check(self.spans):
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"spans never matched; got {[(s.name, s.trace_id) for s in self.spans]}")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), min(left, 0.5))
            except TimeoutError:
                pass
        return self.spans

    def trace(self, trace_id: str) -> list[Span]:
        return [s for s in self.spans if s.trace_id == trace_id]
