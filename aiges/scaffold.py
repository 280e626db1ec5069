"""`aiges create`: a new engine project from the templates under aiges/templates/<lang>/.

Templates are plain files. Rendering replaces ``{{name}}`` (in contents and in file
names) and the placeholders below, drops a trailing ``.tmpl`` (it keeps template
.py/.c files from being collected, linted or built as part of aiges itself) and turns
a leading ``dot-`` into ``.`` (hidden files may be dropped by packaging globs).

A project's commands name the Python that created it by its absolute path (a venv's
``bin/python``, not resolved: its link target lacks aiges), so they work without
activating anything or having aiges on PATH:
  {{python}}        that interpreter, quoted for a shell
  {{aiges_load}}    the aiges-load beside it (else ``python -m aiges.cli``), for a shell
  {{cmake_python}}  the interpreter as a CMake bracket argument, asked for the headers
"""
from __future__ import annotations

import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent / "templates"
LANGS = ("python", "c")
DEFAULT_LANG = "python"  # as upstream's `aiges create`, which only made Python wrappers

NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
# Target names CMake keeps for itself; a library target may not take them.
CMAKE_RESERVED = frozenset({
    "all", "all_build", "clean", "edit_cache", "help", "install", "install_local",
    "install_strip", "list_install_components", "package", "package_source", "preinstall",
    "rebuild_cache", "run_tests", "test", "zero_check",
})


# What `aiges create` prints after "next:"; the generated README gives the same commands.
NEXT_STEPS = {
    "c": ("cd {root}",
          "cmake -S . -B build && cmake --build build && ctest --test-dir build",
          "{aiges_load} build/lib{name}.so -c aiges.toml"),
    "python": ("cd {root}",
               "{python} -m unittest -v",
               "{aiges_load} wrapper.py -c aiges.toml"),
}


class ScaffoldError(Exception):
    """A request `aiges create` refuses (bad name, existing project); the text is for users."""


@dataclass(frozen=True)
class Project:
    root: Path
    files: list[Path]  # relative to root, in the order written
    next_steps: list[str]  # shell commands: cd into it, build and test, serve


def validate_name(name: str, lang: str = DEFAULT_LANG) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise ScaffoldError(
            f"invalid project name {name!r}: use a letter, then letters, digits, '_' or '-' "
            "(at most 64 characters)")
    if lang == "c" and name.lower() in CMAKE_RESERVED:
        raise ScaffoldError(f"invalid project name {name!r}: CMake reserves it as a target name")
    return name


def template_dir(lang: str) -> Path:
    if lang not in LANGS:
        raise ScaffoldError(f"unknown language {lang!r}: choose one of {', '.join(LANGS)}")
    return TEMPLATES / lang


def template_files(lang: str) -> list[Path]:
    """Every template of ``lang``, relative to its template directory, sorted."""
    base = template_dir(lang)
    return sorted(p.relative_to(base) for p in base.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts)


PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def render(text: str, values: dict[str, str]) -> str:
    # One pass: a value (a path) that looks like a placeholder is not replaced again.
    return PLACEHOLDER.sub(lambda m: values.get(m[1], m[0]), text)


def target_path(template: Path, values: dict[str, str]) -> Path:
    """Where a template lands in the new project (placeholders, .tmpl and dot- handled)."""
    parts = []
    for part in template.parts:
        part = render(part, values).removesuffix(".tmpl")
        if part.startswith("dot-"):
            part = "." + part[len("dot-"):]
        parts.append(part)
    return Path(*parts)


def interpreter() -> str:
    """The Python running aiges, absolute but with links kept (see the module doc)."""
    return os.path.abspath(sys.executable) if sys.executable else "python3"


def aiges_load_argv(python: str) -> list[str]:
    script = Path(python).parent / "aiges-load"
    return [str(script)] if script.is_file() else [python, "-m", "aiges.cli"]


def cmake_bracket(text: str) -> str:
    """``text`` as a CMake bracket argument: taken literally, no escapes or ${...}."""
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    return f"[{'=' * level}[{text}]{'=' * level}]"


def placeholders(name: str, python: str) -> dict[str, str]:
    return {
        "name": name,
        "python": shlex.quote(python),
        "aiges_load": shlex.join(aiges_load_argv(python)),
        "cmake_python": cmake_bracket(python),
    }


def check_target(root: Path) -> None:
    if root.is_dir() and any(root.iterdir()):
        raise ScaffoldError(f"{root} already exists and is not empty; not overwritten")
    if root.exists() and not root.is_dir():
        raise ScaffoldError(f"{root} already exists and is not a directory")


def create(name: str, lang: str = DEFAULT_LANG, parent: Path | str | None = None,
           python: str | None = None) -> Project:
    """Write the ``lang`` project ``name`` into ``parent/name`` (default: ./name); its
    commands use ``python`` (default: the interpreter running this)."""
    validate_name(name, lang)
    base = template_dir(lang)
    root = Path(parent if parent is not None else Path.cwd()) / name
    check_target(root)
    values = placeholders(name, python or interpreter())
    written = []
    for template in template_files(lang):
        relative = target_path(template, values)
        out = root / relative
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render((base / template).read_text(encoding="utf-8"), values),
                       encoding="utf-8")
        written.append(relative)
    steps = [step.format(root=shlex.quote(str(root)), **values) for step in NEXT_STEPS[lang]]
    return Project(root=root, files=written, next_steps=steps)
