"""The service core: what every transport serves with. Transport-free: nothing here
imports aiohttp, grpc, an ASGI framework or Ray; transports (aiges/server: aiohttp
and the fast path; aiges/ray/replica.py; the Open Inference Protocol) translate bytes
to these calls and back.

- ``core.Service``: config, engine generations, metrics, the engine's health check,
  ``lifecycle`` (``lifecycle.Lifecycle``: phase starting -> ready -> draining ->
  stopped; ``start()``, ``begin_drain()``, ``drain(timeout)``, ``close()``, ``accepting``).
- ``once``: ``begin(service, spec, body, route, started, params=None)`` -> ``Answer``
  (status, body, headers) or ``Pending`` (``await finish()`` -> Answer); ``failed`` and
  ``error_answer`` for errors (Retry-After derived there).
- ``spec``: ``Spec``, the wire format of a once request; ``NATIVE``, SPEC 3's JSON.
- ``health.readiness(service)`` -> (status, JSON body); ``accounting``: metrics and
  the access log; ``sessions``: open, write, find, end; ``reload``: hot reload.
- ``routes``: the one route table (``table(service, aliases)``, ``SECTIONS``).
"""
from aiges.service.core import Service
from aiges.service.health import readiness
from aiges.service.lifecycle import Lifecycle, Phase
from aiges.service.once import Answer, Pending, begin
from aiges.service.spec import NATIVE, Spec

__all__ = ["Answer", "Lifecycle", "NATIVE", "Pending", "Phase", "Service", "Spec", "begin",
           "readiness"]
