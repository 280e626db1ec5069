"""The Open Inference Protocol (KServe v2), as Triton, KServe, MLServer and TorchServe
speak it: the wire formats and the model's description, free of any transport. Served
over HTTP under /v2 on the service's port (aiges/server/oip.py) and over gRPC on
``[grpc] port`` (aiges.oip.grpc_server). docs/OIP.md has the routes and the mapping.

Requests go through the same once pipeline and session machinery as the native
routes (aiges.service), so codes, limits, metrics and drain are the same.
"""
