"""One ``ffi`` object whose declarations come from include/ (the single source of truth).

The headers are plain C apart from preprocessor lines, the ``extern "C"`` guard and
the ``WrapperAPI`` attribute; those are stripped and the rest goes to ``ffi.cdef``.
"""
from __future__ import annotations

import re
from pathlib import Path

import cffi

HEADERS = ("type.h", "wrapper.h")


def header_dir() -> Path:
    """Where wrapper.h and type.h live: inside the installed package, or the repo's include/."""
    packaged = Path(__file__).resolve().parent.parent / "include"
    if (packaged / "wrapper.h").is_file():
        return packaged
    return Path(__file__).resolve().parents[2] / "include"


def declarations(text: str) -> str:
    """The C declarations of a header, without what cffi's parser cannot take."""
    kept, depth = [], 0
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#if"):
            # Blocks guarded by a condition (the __cplusplus guard, the _WIN32 macro choice)
            # hold nothing cffi needs; the include guard is the one block we enter.
            depth += 0 if stripped.startswith("#ifndef __AIGES_") else 1
            continue
        if stripped.startswith("#endif"):
            depth = max(depth - 1, 0)
            continue
        if depth or stripped.startswith("#"):
            continue
        kept.append(line)
    return re.sub(r"\bWrapperAPI\b", "", "\n".join(kept))


def cdef_source(directory: Path | None = None) -> str:
    directory = directory or header_dir()
    return "\n".join(declarations((directory / name).read_text()) for name in HEADERS)


def _make_ffi() -> cffi.FFI:
    new = cffi.FFI()
    new.cdef(cdef_source())
    return new


ffi = _make_ffi()
