"""Test helpers: the real aiges-load as a subprocess, and the echo engine's counters."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import urllib.request

AIGES_LOAD = str(Path(sys.executable).parent / "aiges-load")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    """A process's resident memory (VmRSS) in MiB."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise ValueError(f"no VmRSS for pid {pid}")


@contextlib.contextmanager
def counted(engine, folder: Path, **config: str):
    """``engine`` initialised with ``config`` and a counters file in ``folder`` (the
    sample engines write their live objects and calls there); ``engine.counters()``
    reads it. wrapperFini and close at the end; the counters stay readable after."""
    counters = folder / "counters.txt"
    engine.init({**config, "counters_file": str(counters)})
    engine.counters = lambda: read_counters(counters)
    try:
        yield engine
    finally:
        engine.fini()
        engine.close()


def wait_pushed(engine, done, timeout_s: float) -> bool:
    """Wait for ``done`` (a threading.Event) while taking what ``engine`` pushed, as the
    loop does: a C engine's session results wait in C until taken (Engine.pushed)."""
    deadline = time.monotonic() + timeout_s
    queued = getattr(engine, "pushed", None)
    while not done.wait(0.001):
        if queued is not None:
            queued.take()
        if time.monotonic() > deadline:
            return done.is_set()
    return True


def read_counters(path: Path) -> dict[str, int]:
    """The echo engine's counters file: one line of key=value pairs."""
    return {k: int(v) for k, v in (p.split("=") for p in path.read_text().split())}


class Service:
    """One aiges-load process on 127.0.0.1; always killed (with its group) on stop."""

    def __init__(self, engine: str, *args: str, cwd: Path, ready: bool = True,
                 env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = cwd / f"aiges-{self.port}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [AIGES_LOAD, engine, "--host", "127.0.0.1", "--port", str(self.port), *args],
            cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, **(env or {})})
        if ready:
            self.wait_ready()

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"aiges-load exited {self.proc.returncode}:\n{self.log}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"aiges-load not ready in {timeout}s:\n{self.log}")

    def wait_exit(self, timeout: float = 20) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def terminate(self, limit_s: float = 15) -> int:
        """SIGTERM; the process must be gone within ``limit_s`` (the default drain time,
        10 s, plus 5), whatever its engine does."""
        self.proc.send_signal(signal.SIGTERM)
        return self.wait_exit(limit_s)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def close(self) -> None:
        self.kill()
        self._log.close()


def metric_samples(text: str) -> dict[tuple, float]:
    """A /metrics exposition as {(sample name, ((label, value), ...)): value}."""
    from prometheus_client.parser import text_string_to_metric_families
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def metric(samples: dict, name: str, **labels) -> float:
    """One sample's value (0 when absent: a labelled series appears on first use)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


ECHO_WRAPPER = Path(__file__).resolve().parent.parent / "python_examples" / "echo" / "wrapper.py"


def echo_wrapper_build(folder: Path, version: str, init_delay_s: float = 0.0,
                       init_ret: int = 0, source: str | None = None) -> Path:
    """A new build of the Python echo wrapper for hot reload tests: ``folder``/wrapper.py
    with its own ``version``, a "version" node in every once answer (as
    libecho_next.so), and optionally a slow (``init_delay_s``) or failing (``init_ret``)
    wrapperInit; ``source`` replaces the whole text (a broken wrapper)."""
    text = ECHO_WRAPPER.read_text()
    edits = [('version = "echo/1.0.0"', f'version = "{version}"'),
             ("        if persId:\n",
              '        outputs.append(text_output("version", self.version))\n'
              "        if persId:\n"),
             ("        self.config = dict(config)\n",
              f"        time.sleep({init_delay_s})\n        self.config = dict(config)\n"),
             ('config pairs", len(config))\n        return 0',
              f'config pairs", len(config))\n        return {init_ret}')]
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "wrapper.py"
    path.write_text(source if source is not None else text)
    return path
