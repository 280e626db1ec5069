"""Start the servers under test as subprocesses, wait for them, and always stop them."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Server:
    name: str
    base: str  # http://127.0.0.1:PORT
    pid: int = 0  # the server itself (taskset execs it), for its CPU time


@dataclass(frozen=True)
class Pinning:
    """Which CPUs the server and the load generator may use (empty: unpinned)."""
    server: tuple[int, ...] = ()
    client: tuple[int, ...] = ()

    def prefix(self, cpus: tuple[int, ...]) -> list[str]:
        if not cpus:
            return []
        return ["taskset", "-c", ",".join(map(str, cpus))]

    def describe(self) -> str:
        if not self.server:
            return "none (server and load generator share all CPUs)"
        return f"server on CPU {_cpus(self.server)}, load generator on CPU {_cpus(self.client)}"


def _cpus(cpus: tuple[int, ...]) -> str:
    return ",".join(map(str, cpus))


def choose_pinning(enabled: bool) -> Pinning:
    """First allowed CPU for the server, the rest for the client.

    The Python servers run one event loop, so one core is what they can use
    anyway; pinning keeps wrk from stealing that core mid-run, which is the
    main source of noise on a 2-core box.
    """
    cpus = tuple(sorted(os.sched_getaffinity(0)))
    if not enabled or len(cpus) < 2 or shutil.which("taskset") is None:
        return Pinning()
    return Pinning(server=cpus[:1], client=cpus[1:])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    # Runs in the child before exec: if the harness is SIGKILLed its servers
    # still go, since no finally clause gets the chance to stop them.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def aiges_command(engine: Path, port: int, instances: int | None,
                  extra: tuple[str, ...] = ()) -> list[str]:
    # No access log: one line per request is the operator's choice, not the loader's cost.
    cmd = [sys.executable, "-m", "aiges.cli", str(engine), "--host", "127.0.0.1",
           "--port", str(port), "--log-level", "warning", "--no-access-log", *extra]
    return cmd + (["--instances", str(instances)] if instances else [])


def bare_command(port: int) -> list[str]:
    return echo_command("bare", port)


# The reference echoes: bare, the aiohttp echo; protocol, the same echo on a plain asyncio
# protocol; ceiling, on uvloop + httptools + orjson alone (the least a Python server does).
ECHO_SCRIPTS = {"bare": "echo_server.py", "protocol": "protocol_echo.py",
                "ceiling": "ceiling_echo.py", "handoff": "handoff_echo.py"}


def echo_command(name: str, port: int) -> list[str]:
    script = ECHO_SCRIPTS[name]
    return [sys.executable, str(REPO / "benchmarks" / script),
            "--host", "127.0.0.1", "--port", str(port)]


@contextlib.contextmanager
def running(name: str, cmd: list[str], port: int, pinning: Pinning,
            workdir: Path, tree: Path = REPO) -> Iterator[Server]:
    """Run one server for the duration of the block; stopped on any exit path.
    ``tree``: the checkout whose ``aiges`` it imports (another build, to compare)."""
    log_path = workdir / f"{name}.log"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(tree), os.environ.get("PYTHONPATH")])))
    with open(log_path, "wb") as log:
        # A session of its own: Ctrl-C reaches only the harness, which then
        # stops the servers in order instead of racing their own shutdown.
        # preexec_fn is safe here: the harness starts no threads of its own.
        proc = subprocess.Popen(pinning.prefix(pinning.server) + cmd, cwd=workdir, env=env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True,
                                preexec_fn=_die_with_parent)  # noqa: PLW1509
    try:
        server = Server(name, f"http://127.0.0.1:{port}", proc.pid)
        wait_ready(proc, server, log_path)
        yield server
    finally:
        stop(proc)


def wait_ready(proc: subprocess.Popen, server: Server, log_path: Path,
               timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {proc.returncode} before it was "
                               f"ready:\n{_tail(log_path)}")
        with contextlib.suppress(OSError), \
                urllib.request.urlopen(server.base + "/health", timeout=1) as resp:
            if resp.status == 200:
                return
        time.sleep(0.1)  # a start-up poll, not a hot path
    raise RuntimeError(f"{server.name} not healthy after {timeout:.0f}s:\n{_tail(log_path)}")


def stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MiB; 0 when unknown."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
