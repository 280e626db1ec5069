"""The tracer provider and its exporters, from the standard OTEL environment: which
exporters (``OTEL_TRACES_EXPORTER``: ``otlp``, ``console``), OTLP's protocol
(``OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL``: ``http/protobuf``, the default, or ``grpc``
when its exporter package is installed), and everything the SDK reads itself: the
endpoint, headers, timeout and compression of OTLP, the batch processor's
``OTEL_BSP_*``, the sampler (``OTEL_TRACES_SAMPLER``, default parent-based always-on:
a caller's sampling decision is kept) and the resource (``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``). Imported only when tracing is on.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping

from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

log = logging.getLogger(__name__)

OTLP_DEFAULT = "http://localhost:4318"


def provider(service: str, exporters: list[str],
             env: Mapping[str, str]) -> tuple[TracerProvider, list[str]] | None:
    """(provider, where each exporter sends) or None when no exporter could be made."""
    resource = Resource.create({})
    if str(resource.attributes.get(SERVICE_NAME, "unknown_service")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service}))
    made = TracerProvider(resource=resource)
    where = []
    for name in exporters:
        exporter = _exporter(name, env)
        if exporter is not None:
            made.add_span_processor(BatchSpanProcessor(exporter[0]))
            where.append(exporter[1])
    if not where:
        log.warning("tracing off: none of the exporters in OTEL_TRACES_EXPORTER can be made",
                    extra={"exporters": ",".join(exporters)})
        made.shutdown()
        return None
    return made, where


def _exporter(name: str, env: Mapping[str, str]):
    """(exporter, where it sends) for one OTEL_TRACES_EXPORTER name, or None (logged)."""
    if name == "console":
        return ConsoleSpanExporter(), "the console (stdout)"
    if name != "otlp":
        log.warning("unknown trace exporter ignored (known: otlp, console)",
                    extra={"exporter": name})
        return None
    protocol = (env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf").strip().lower()
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError:
            log.warning("OTLP over gRPC needs opentelemetry-exporter-otlp-proto-grpc, which "
                        "is not installed: that exporter is off (http/protobuf needs nothing more)")
            return None
    elif protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    else:
        log.warning("unsupported OTLP protocol: that exporter is off (use http/protobuf or grpc)",
                    extra={"protocol": protocol})
        return None
    exporter = OTLPSpanExporter()  # endpoint, headers, timeout, compression: OTEL_* itself
    return exporter, f"{_endpoint(exporter, protocol, env)} (OTLP {protocol})"


def _endpoint(exporter, protocol: str, env: Mapping[str, str]) -> str:
    """Where the exporter sends, for the start-up line."""
    known = getattr(exporter, "_endpoint", None)
    if isinstance(known, str) and known:
        return known
    signal = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if signal:
        return signal
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or (
        "http://localhost:4317" if protocol == "grpc" else OTLP_DEFAULT)
    return base if protocol == "grpc" else base.rstrip("/") + "/v1/traces"
