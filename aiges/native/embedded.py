"""Libraries that embed CPython, such as upstream's aiges_c_python_wrapper (a libwrapper.so
that runs a wrapper.py): recognised from the file, before dlopen.

Such a library starts an interpreter of its own when it is loaded (pybind11's
scoped_interpreter in a static initialiser). aiges-load is itself a Python process: the
library's start-up aborts it ("Can't add new modules after the interpreter has been
initialized", exit status 134) before any error could be reported. Its wrapper.py can be
served directly instead, which is all that library does.
"""
from __future__ import annotations

from pathlib import Path

from elftools.elf.elffile import ELFFile

from aiges.errors import EngineLoadError

# Calls that start an interpreter (Py_Initialize, Py_InitializeEx, Py_InitializeFromConfig)
# or register built-in modules for one about to start: an extension module, which runs
# inside an interpreter already there, never makes them.
START_PREFIX = "Py_Initialize"
STARTS = frozenset({"PyImport_AppendInittab", "PyImport_ExtendInittab"})
# Looked for in the dynamic string table first: walking every symbol with pyelftools takes
# seconds for a large engine (70 us per symbol), the table a few milliseconds. No hit, no
# such symbol; the match is loose (a name may end inside a longer one), the walk exact.
NEEDLES = (START_PREFIX.encode(), *(name.encode() for name in STARTS))


def embeds_python(path: str | Path) -> str | None:
    """Why the shared library at ``path`` embeds CPython, or None (also for a file that is
    missing or not ELF: dlopen refuses those with its own message)."""
    try:
        with open(path, "rb") as fh:
            return _reason(ELFFile(fh))
    except Exception:  # noqa: BLE001 - pyelftools raises many kinds on odd files; dlopen decides
        return None


def _reason(elf: ELFFile) -> str | None:
    # The dynamic segment, not the section headers: a stripped library still has it.
    for segment in elf.iter_segments("PT_DYNAMIC"):
        needed = [tag.needed for tag in segment.iter_tags("DT_NEEDED")
                  if tag.needed.startswith("libpython")]
        if needed:
            return f"it links {', '.join(needed)}"
        if not any(needle in _strings(elf, segment) for needle in NEEDLES):
            return None
        calls, defines = [], []
        for symbol in segment.iter_symbols():
            if symbol.name.startswith(START_PREFIX) or symbol.name in STARTS:
                (calls if symbol["st_shndx"] == "SHN_UNDEF" else defines).append(symbol.name)
        if calls:
            return f"it calls {', '.join(sorted(set(calls)))}"
        if defines:  # libpython linked statically: an interpreter inside the library
            return f"it contains a Python interpreter ({', '.join(sorted(set(defines)))})"
    return None


def _strings(elf: ELFFile, segment) -> bytes:
    """The dynamic string table (DT_STRTAB, DT_STRSZ bytes)."""
    tags = {tag.entry.d_tag: tag.entry.d_val for tag in segment.iter_tags()
            if tag.entry.d_tag in ("DT_STRTAB", "DT_STRSZ")}
    elf.stream.seek(next(elf.address_offsets(tags["DT_STRTAB"])))
    return elf.stream.read(tags["DT_STRSZ"])


def refuse_embedded(path: str) -> None:
    """EngineLoadError when the library at ``path`` embeds CPython."""
    reason = embeds_python(path)
    if reason is None:
        return
    raise EngineLoadError(
        f"cannot serve {path}: it embeds CPython ({reason}), like upstream's "
        f"aiges_c_python_wrapper. Loaded into aiges-load, itself a Python process, it would "
        f"start a second interpreter and abort the process. Serve its Python engine "
        f"directly instead: `aiges-load wrapper.py`, or AIGES_PLUGIN_MODE=python aiges-load "
        f"in the folder of wrapper.py.")
