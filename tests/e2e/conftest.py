from __future__ import annotations

import aiohttp
import pytest

from tests.helpers import Service, read_counters


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


@pytest.fixture
def balanced(start, tmp_path, counters_file):
    """balanced(engine, toml_extra, *flags): a service whose engine keeps a counters file;
    after the test it is stopped with SIGTERM, must exit 0, and must show every wrapperCreate
    matched by one wrapperDestroy, no live handle, and wrapperFini called once."""
    services: list[Service] = []

    def _serve(engine: str, extra: str = "", *flags: str, push: bool | None = None) -> Service:
        # push: the sample engines deliver session results through the callback (which the
        # loader always hands over) instead of wrapperRead; by default with --async-mode.
        push = "true" if (push if push is not None else "--async-mode" in flags) else "false"
        path = tmp_path / "aiges.toml"
        path.write_text(f'{extra}\n[wrapper]\ncounters_file = "{counters_file}"\n'
                        f'push = "{push}"\n')
        service = start(engine, "-c", str(path), *flags)
        services.append(service)
        return service

    yield _serve
    for service in services:
        assert service.terminate() == 0, service.log
        counters = read_counters(counters_file)
        assert counters["create"] == counters["destroy"], counters
        assert (counters["live_sessions"], counters["live_exec"], counters["fini"]) == (0, 0, 1)
