"""The service core: once requests (``once.begin`` / ``Pending.finish``), sessions,
accounting, readiness and the service's life (``Lifecycle``: start / drain / close),
and the one route table. Transport-free: nothing here imports aiohttp, grpc, an ASGI
framework or Ray; transports (aiges/server, aiges/ray, the Open Inference Protocol)
translate bytes to these calls and back.
"""
from aiges.service.core import Service
from aiges.service.health import readiness
from aiges.service.lifecycle import Lifecycle, Phase
from aiges.service.once import Answer, Pending, begin
from aiges.service.spec import NATIVE, Spec

__all__ = ["Answer", "Lifecycle", "NATIVE", "Pending", "Phase", "Service", "Spec", "begin",
           "readiness"]
