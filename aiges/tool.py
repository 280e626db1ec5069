"""`aiges`: developer tools around aiges-load (SPEC 9).

Each subcommand adds its own parser in an ``add_<command>`` function and sets
``run``, a function of the parsed arguments returning the exit status.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aiges import scaffold
from aiges.client.commands import add_bench, add_call


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aiges", description="Tools for AIGES engines.")
    p.add_argument("--include-dir", action="store_true",
                   help="print the directory holding wrapper.h and type.h (for build systems)")
    commands = p.add_subparsers(dest="command", metavar="COMMAND")
    add_create(commands)
    add_call(commands)
    add_bench(commands)
    return p


def add_create(commands) -> None:
    p = commands.add_parser(
        "create", help="scaffold a new engine project",
        description="Create NAME/ with an engine that builds, tests and serves as generated: "
                    "a C library built with CMake (--lang c) or a Python wrapper.py "
                    "(--lang python, the default, as upstream). Its commands (printed after "
                    "'next:' and in its README) name this Python and its aiges-load by "
                    "absolute path: they work without activating the environment.")
    p.add_argument("-n", "--name", required=True,
                   help="project name: a letter, then letters, digits, '_' or '-'")
    p.add_argument("--lang", choices=scaffold.LANGS, default=scaffold.DEFAULT_LANG,
                   help=f"engine language (default {scaffold.DEFAULT_LANG})")
    p.add_argument("--dir", default=".", metavar="PARENT",
                   help="directory to create NAME in (default: the current directory)")
    p.set_defaults(run=run_create)


def run_create(args) -> int:
    try:
        project = scaffold.create(args.name, args.lang, Path(args.dir))
    except scaffold.ScaffoldError as exc:
        print(f"aiges create: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"aiges create: error: {exc}", file=sys.stderr)
        return 1
    print(f"created {args.lang} project {project.root}")
    for path in project.files:
        print(f"  {path}")
    print("next:")
    for step in project.next_steps:
        print("  " + step)
    return 0


def include_dir() -> int:
    from aiges.native.cdef import header_dir

    directory = header_dir()
    if not (directory / "wrapper.h").is_file():
        print(f"aiges: wrapper.h not found (looked in {directory})", file=sys.stderr)
        return 1
    print(directory)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.include_dir:
        return include_dir()
    if not args.command:
        p.print_help(sys.stderr)
        return 2
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
