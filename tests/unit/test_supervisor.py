"""The supervisor's small pieces and the [aiges] workers / gpus keys."""
from __future__ import annotations

import asyncio
import os
from types import SimpleNamespace

import pytest

from aiges import config as configuration
from aiges.board import Board
from aiges.supervisor import STABLE_S, Slot, Supervisor, exit_text, gpu_for


def test_exit_text_names_the_signal():
    assert exit_text(-11) == "SIGSEGV"
    assert exit_text(-9) == "SIGKILL"
    assert exit_text(3) == "exit code 3"


def test_gpus_go_round_robin():
    assert [gpu_for(["0", "1"], i) for i in range(3)] == ["0", "1", "0"]
    assert gpu_for([], 0) is None


def test_workers_and_gpus_keys(tmp_path):
    path = tmp_path / "aiges.toml"
    path.write_text('[aiges]\nworkers = 3\ngpus = "0, 2"\n')
    config = configuration.load(path)
    assert (config.workers, config.gpus, config.warnings) == (3, ["0", "2"], [])
    path.write_text('[aiges]\ngpus = [1, 3]\n')
    assert configuration.load(path).gpus == ["1", "3"]


@pytest.mark.parametrize("value", ["0", "-1", '"two"', "true"])
def test_workers_must_be_positive(tmp_path, value):
    path = tmp_path / "aiges.toml"
    path.write_text(f"[aiges]\nworkers = {value}\n")
    with pytest.raises(configuration.ConfigError, match="workers"):
        configuration.load(path)


def test_default_toml_documents_them(tmp_path):
    path = tmp_path / "aiges.toml"
    path.write_text(configuration.DEFAULT_TOML)
    config = configuration.load(path)
    assert (config.workers, config.gpus, config.warnings) == (1, [], [])


def test_the_board_carries_beats_calls_and_counts_across_processes():
    board, fd = Board.create()
    worker = Board.attach(os.dup(fd))  # what a worker maps from the fd it inherits
    os.close(fd)
    assert (board.beats(), board.calls(), board.counts()) == (0, [], (0, 0))
    worker.beat()
    worker.beat()
    worker.enter(7, "exec", "s" * 100)  # a long sid is cut to fit its slot
    worker.enter(8, "write", "b")
    assert board.beats() == 2
    assert {(c["op"], c["sid"]) for c in board.calls()} == {("exec", "s" * 64), ("write", "b")}
    worker.leave(7)
    assert [c["op"] for c in board.calls()] == ["write"]
    board.set_counts(3, 1)
    assert worker.counts() == (3, 1)
    worker.close()
    board.close()


def _slot(supervisor: Supervisor, index: int = 0, ready: bool = True) -> Slot:
    slot = supervisor.slots[index]
    slot.proc, slot.ready = SimpleNamespace(pid=1), ready
    slot.board, fd = Board.create()
    os.close(fd)
    return slot


def test_workers_killed_by_requests_restart_at_once_however_often():
    supervisor = Supervisor(configuration.Config(), [])
    slot = _slot(supervisor)
    slot.board.enter(1, "exec", "poison")
    assert [supervisor._died(slot, -11, 0.5) for _ in range(10)] == [0.0] * 10
    slot.board.leave(1)
    slot.stalled = True
    assert supervisor._died(slot, -9, 0.5) == 0.0
    assert supervisor.replaced == {"died": 10, "stalled": 1}
    assert slot.board.counts() == (10, 1)


def test_workers_dying_on_their_own_back_off_after_the_first_restarts():
    supervisor = Supervisor(configuration.Config(workers=2), [])
    slot = _slot(supervisor)
    assert [supervisor._died(slot, -11, 1.0) for _ in range(5)] == [0.0, 0.0, 0.5, 1.0, 2.0]
    assert supervisor._died(slot, -11, STABLE_S) == 0.0  # up a long time: forgiven
    failing = _slot(supervisor, 1, ready=False)  # dies while starting, even in wrapperInit
    failing.board.enter(1, "init", "")
    assert [supervisor._died(failing, 1, 0.2) for _ in range(4)] == [0.0, 0.0, 0.5, 1.0]


async def test_back_off_ends_when_no_worker_serves():
    supervisor = Supervisor(configuration.Config(workers=2), [])
    waiting, other = supervisor.slots
    waiting.ready, other.ready = True, True
    other.proc = SimpleNamespace(returncode=None)
    waiting.proc = SimpleNamespace(returncode=-11)
    task = asyncio.create_task(supervisor._back_off(waiting, 30))
    await asyncio.sleep(0.3)
    assert not task.done()  # the other one serves: the back-off runs
    other.proc.returncode = -11
    await asyncio.wait_for(task, 1)  # none serves now: it ends at once
