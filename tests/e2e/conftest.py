from __future__ import annotations

import aiohttp
import pytest

from tests.helpers import Service


@pytest.fixture
def start(tmp_path):
    """start(engine, *flags) -> a running Service; all are killed at the end of the test."""
    services: list[Service] = []

    def _start(engine: str, *args: str, ready: bool = True, **kw) -> Service:
        service = Service(engine, *args, cwd=tmp_path, ready=ready, **kw)
        services.append(service)
        return service

    yield _start
    for service in services:
        service.close()


@pytest.fixture
def counters_file(tmp_path):
    return tmp_path / "counters.txt"


@pytest.fixture
def echo_config(tmp_path, counters_file):
    """An aiges.toml for the echo engine that makes it keep a counters file."""
    path = tmp_path / "aiges.toml"
    path.write_text(f'[wrapper]\ncounters_file = "{counters_file}"\nmodel = "tiny"\n')
    return path


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session
