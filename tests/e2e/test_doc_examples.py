"""Every marked shell example of README.md and docs/*.md runs as written, against real
servers, and prints what the page shows: documentation cannot drift.

A page marks an example with the fence info ```` ```sh test ````. In it:
- a command (lines ending in ``\\``, ``|`` or ``&&``, or inside an open quote, go on) runs with bash
  in a scratch folder that links every top-level entry of the repository (so ``.venv``,
  ``build/`` and ``python_examples/`` are there, and what a command writes is not),
  with the shell variables that earlier commands of the page set;
- a command ending in `` &`` starts a service: the test waits for its ``/health`` and
  stops it when the page starts another one, or after its last example;
- ``#`` lines right after a command show its output. A ```` ```json ```` block right
  after the example shows the output of its last command. Output is compared without
  whitespace; ``…`` stands for anything, and sids (32 hex digits) match any sid;
- ``<!-- test: COMMAND -->`` before an example runs COMMAND first, unseen by readers
  (a service the text says is running).
Port 1888 becomes a free port, in commands and outputs alike. Examples of one page run
in order: later ones may use what earlier ones started or wrote.
"""
from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\S*)(.*)$")
HIDDEN = re.compile(r"^<!-- test: (.*) -->$")
SID = re.compile(r"[0-9a-f]{32}")
COMMAND_TIMEOUT_S = 120
# Each command runs in a bash of its own, with the variables earlier ones set (a page's
# B64=..., TOKEN=...): they are kept in a file between commands.
KEEP_VARIABLES = """\
__known=" $(compgen -v | tr '\\n' ' ') PWD OLDPWD _ "
source ./.doc-variables 2>/dev/null
{command}
__rc=$?
for __v in $(compgen -v); do
  case "$__known" in *" $__v "*) ;; *) declare -p "$__v" ;; esac
done > ./.doc-variables
exit $__rc
"""


@dataclass
class Command:
    text: str
    line: int
    shown: list[str] = field(default_factory=list)  # the output the page shows

    @property
    def service(self) -> bool:
        words = shlex.split(self.text, comments=True)
        return bool(words) and words[-1] == "&"

    @property
    def service_command(self) -> str:
        """The command of a service, less its ``&`` and any comment after it."""
        return _uncommented(self.text).rstrip().removesuffix("&")


def examples(page: Path) -> list[Command]:
    """The page's commands in order: hidden ones, then each marked example's."""
    commands: list[Command] = []
    lines = page.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        hidden = HIDDEN.match(line)
        fence = FENCE.match(line)
        if hidden:
            commands.append(Command(hidden[1].strip(), i + 1))
        elif fence and fence[1] == "sh" and fence[2].split() == ["test"]:
            end = _closing(lines, i)
            commands += _commands(lines[i + 1:end], i + 2)
            i = end
            after = i + 1
            while after < len(lines) and not lines[after].strip():
                after += 1
            if after < len(lines) and lines[after].startswith("```json"):
                close = _closing(lines, after)
                commands[-1].shown += lines[after + 1:close]
                i = close
        i += 1
    return commands


def _closing(lines: list[str], start: int) -> int:
    for j in range(start + 1, len(lines)):
        if lines[j].startswith("```"):
            return j
    raise AssertionError(f"unclosed code block at line {start + 1}")


def _commands(block: list[str], first_line: int) -> list[Command]:
    commands: list[Command] = []
    pending: list[str] = []
    for n, line in enumerate(block):
        if not pending and line.startswith("#"):
            if commands:
                commands[-1].shown.append(line[1:])
            continue
        if not pending and not line.strip():
            continue
        pending.append(line)
        text = "\n".join(pending)
        if not text.rstrip().endswith(("\\", "|", "&&")) and _complete(text):
            commands.append(Command(text, first_line + n - len(pending) + 1))
            pending = []
    assert not pending, f"unfinished command at line {first_line}: {pending}"
    return commands


def _uncommented(text: str) -> str:
    """``text`` less a trailing comment: from the first ``#`` outside quotes that starts
    a word."""
    quote = None
    for i, char in enumerate(text):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or text[i - 1].isspace()):
            return text[:i]
    return text


def _complete(text: str) -> bool:
    try:
        shlex.split(text, comments=True)
    except ValueError:  # an open quote: the command goes on
        return False
    return True


def matches(shown: list[str], output: str) -> bool:
    expected = re.sub(r"\s+", "", "".join(shown))
    actual = SID.sub("SID", re.sub(r"\s+", "", output))
    parts = [re.escape(SID.sub("SID", part)) for part in expected.split("…")]
    return re.fullmatch(".*?".join(parts), actual, re.DOTALL) is not None


class Page:
    """One page's examples, run in order in one scratch folder."""

    def __init__(self, scratch: Path):
        self.scratch = scratch
        self.port = str(free_port())
        self.services: list[subprocess.Popen] = []
        for entry in ROOT.iterdir():
            if entry.name not in (".git",):
                (scratch / entry.name).symlink_to(entry)
        self.env = {**os.environ, "AIGES_DOCS_TEST": "1"}

    def run(self, command: Command) -> None:
        text = command.text.replace("1888", self.port)
        if command.service:
            self._start(command.service_command.replace("1888", self.port), command)
            return
        done = subprocess.run(["bash", "-c", KEEP_VARIABLES.format(command=text)],
                              cwd=self.scratch, env=self.env, capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT_S)
        where = f"line {command.line}: {command.text}"
        assert done.returncode == 0, f"{where}\nexit {done.returncode}\n{done.stdout}\n{done.stderr}"
        if command.shown:
            shown = [line.replace("1888", self.port) for line in command.shown]
            assert matches(shown, done.stdout), (
                f"{where}\nshown:\n" + "\n".join(command.shown) + f"\ngot:\n{done.stdout}")

    def _start(self, text: str, command: Command) -> None:
        self.close()  # the page's next service takes the port
        log = (self.scratch / f"service-{len(self.services)}.log").open("wb")
        proc = subprocess.Popen(["bash", "-c", f"exec {text}"], cwd=self.scratch, env=self.env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.services.append(proc)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"line {command.line}: {command.text} exited " \
                                        f"{proc.returncode}:\n{Path(log.name).read_text()}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"line {command.line}: {command.text} not serving in 60 s")

    def close(self) -> None:
        """Stop every service, and whatever it left in its process group (a command that
        put itself in the background)."""
        for proc in self.services:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
        self.services = []


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


@pytest.mark.parametrize("page", [p for p in PAGES if examples(p)], ids=lambda p: p.name)
def test_the_pages_examples_run_as_written(page, tmp_path):
    runner = Page(tmp_path)
    try:
        for command in examples(page):
            runner.run(command)
    finally:
        runner.close()


def test_the_reader_of_examples(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("\n".join([
        "text", "<!-- test: serve & -->", "```sh test", "echo '{\"a\":", "  1}'",
        "# {\"a\": …}", "printf 'x\\n'", "```", "", "```json", "{\"b\": 2}", "```",
        "```sh", "not run", "```"]))
    assert [(c.text, c.shown) for c in examples(page)] == [
        ("serve &", []), ("echo '{\"a\":\n  1}'", [' {"a": …}']),
        ("printf 'x\\n'", ['{"b": 2}'])]
    assert matches([' {"a": …}'], '{"a":\n 1}\n')
    assert matches(['{"sid":"0123456789abcdef0123456789abcdef"}'],
                   '{"sid":"fedcba9876543210fedcba9876543210"}')
    assert not matches(['{"a": 2}'], '{"a": 1}')
    assert Command('serve --x "#1" &   # or "y" & z', 1).service_command == 'serve --x "#1" '


LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_the_pages_links_lead_somewhere(page):
    """Every relative link of the page names a file or folder of the repository, and a
    heading of it when it has an #anchor."""
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        where = (page.parent / path).resolve() if path else page
        assert where.exists(), f"{page.name}: {target}"
        if anchor and where.suffix == ".md":
            headings = {_anchor(line.lstrip("#").strip())
                        for line in where.read_text().splitlines() if line.startswith("#")}
            assert anchor in headings, f"{page.name}: {target}"


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, spaces to dashes, punctuation dropped."""
    text = re.sub(r"[^\w\- ]", "", heading.lower())
    return text.replace(" ", "-")
