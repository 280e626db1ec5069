"""One ``ffi`` object whose declarations come from include/ (the single source of truth).

The headers are plain C apart from preprocessor lines, the ``extern "C"`` guard and
the ``WrapperAPI`` attribute; those are stripped and the rest goes to ``ffi.cdef``.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

import cffi
from cffi.recompiler import make_py_source

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


def _make_ffi():
    """cffi's out-of-line ABI mode, built in memory at import: the declarations go
    through cffi's recompiler into the module that ``set_source(name, None)`` and
    ``compile()`` would write, run here. Its ``ffi`` is cffi's C-level FFI type, whose
    new, cast, string and the rest are C functions; the in-line ``cffi.FFI`` puts a
    Python call in front of each, a few microseconds per once request in all (10 to
    25 ms more at start-up for the recompiler)."""
    builder = cffi.FFI()
    builder.cdef(cdef_source())
    source = io.StringIO()
    make_py_source(builder, "_aiges_abi", source)
    namespace: dict = {}
    exec(compile(source.getvalue(), "<the ABI of include/>", "exec"), namespace)  # noqa: S102
    return namespace["ffi"]


ffi = _make_ffi()
