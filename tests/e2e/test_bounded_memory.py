"""Memory that client input cannot grow (issue 17): the C path's shared key strings and
desc chains are capped by size as well as count, so distinct 1 MiB keys and desc
values are not kept after their request."""
from __future__ import annotations

import base64

import pytest

from tests.helpers import rss_mb

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
TEXT = base64.b64encode(b"x").decode()


def request(kind: str, i: int) -> dict:
    big = f"{i:04d}" + "k" * (MIB - 4)
    if kind == "param key":
        return {"parameter": {"svcName": {big: "v"}},
                "payload": {"input": {"text": TEXT, "status": 3}}}
    if kind == "payload key":
        return {"payload": {big: {"text": TEXT, "status": 3}}}
    return {"payload": {"input": {"text": TEXT, "status": 3, "note": big}}}  # desc value


async def test_distinct_huge_keys_and_descs_are_not_kept(http, start, echo_so, echo_config):
    service = start(echo_so, "-c", str(echo_config), "--no-access-log")
    url = service.url + "/v1/svcName"
    for i in range(20):  # warm up: allocator arenas, placement, caches of short keys
        async with http.post(url, json=request("param key", 10000 + i)) as resp:
            assert resp.status == 200
    before = rss_mb(service.proc.pid)
    for kind in ("param key", "payload key", "desc value"):
        for i in range(100):
            async with http.post(url, json=request(kind, i)) as resp:
                assert resp.status == 200, await resp.text()
                await resp.read()
    grown = rss_mb(service.proc.pid) - before
    assert grown < 60, f"RSS grew {grown:.0f} MiB over 300 requests with 1 MiB keys"
