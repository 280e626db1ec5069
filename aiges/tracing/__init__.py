"""OpenTelemetry tracing (docs/OPERATIONS.md, "Tracing"): a span per once request and per
session, children for the queue wait and every engine call, continuing the caller's
W3C trace (``traceparent``).

Off unless the standard OTEL environment asks for it (``wanted``) and the ``[otel]``
extra is installed. Off, nothing of OpenTelemetry is imported and the service state
holds ``tracing = None``: the request paths pay one attribute check. This module only
decides; ``aiges.tracing.spans`` (the ``Tracing`` object) and ``aiges.tracing.export``
(exporters from the environment) import the SDK, and only when tracing is on.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiges.tracing.spans import Tracing

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'aiges[otel]'"


def wanted(env: Mapping[str, str] = os.environ) -> list[str] | None:
    """The span exporters the environment asks for, or None: tracing off.

    ``OTEL_SDK_DISABLED=true`` wins; then ``OTEL_TRACES_EXPORTER`` (a comma list:
    ``otlp``, ``console``; ``none`` anywhere in it means off); without it, an OTLP
    endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``)
    means ``otlp``. Nothing set: off (the SDK's own default would export to localhost)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    names = [n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "").split(",")
             if n.strip()]
    if names:
        return None if "none" in names else names
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return ["otlp"]
    return None


def from_env(service: str, env: Mapping[str, str] = os.environ) -> Tracing | None:
    """The service's Tracing when the environment asks for it and the SDK is there (one
    info line says where spans go), else None. ``service``: the default service.name
    (OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win)."""
    exporters = wanted(env)
    if exporters is None:
        return None
    try:
        from aiges.tracing import export, spans
    except ImportError as exc:
        log.warning(f"tracing asked for by the OTEL_* environment, but OpenTelemetry is not "
                    f"installed ({INSTALL_HINT}): tracing off", extra={"error": str(exc)})
        return None
    made = export.provider(service, exporters, env)
    if made is None:
        return None  # no exporter could be made: said why
    provider, where = made
    log.info(f"tracing on: spans exported to {'; '.join(where)}",
             extra={"sampler": env.get("OTEL_TRACES_SAMPLER", "parentbased_always_on")})
    return spans.Tracing(provider, service)
