"""Names in an ELF shared library's dynamic symbol table.

Only used to explain a refused library: when ``wrapperInit`` is missing but
``_Z11wrapperInitP9ParamList`` is exported, the engine was compiled as C++ without
``extern "C"``. Reads ELF64/ELF32 little- and big-endian; anything else yields nothing.
"""
from __future__ import annotations

import struct
from pathlib import Path

SHT_DYNSYM = 11


def dynamic_symbols(path: str | Path) -> set[str]:
    try:
        blob = Path(path).read_bytes()
    except OSError:
        return set()
    if blob[:4] != b"\x7fELF" or len(blob) < 64:
        return set()
    wide = blob[4] == 2
    order = "<" if blob[5] == 1 else ">"
    if wide:
        shoff, = struct.unpack_from(order + "Q", blob, 0x28)
        shentsize, shnum = struct.unpack_from(order + "HH", blob, 0x3A)
    else:
        shoff, = struct.unpack_from(order + "I", blob, 0x20)
        shentsize, shnum = struct.unpack_from(order + "HH", blob, 0x2E)
    sections = []
    for i in range(shnum):
        base = shoff + i * shentsize
        if wide:
            _, sh_type, _, _, off, size, link, _, _, entsize = struct.unpack_from(
                order + "IIQQQQIIQQ", blob, base)
        else:
            _, sh_type, _, _, off, size, link, _, _, entsize = struct.unpack_from(
                order + "IIIIIIIIII", blob, base)
        sections.append((sh_type, off, size, link, entsize))
    names: set[str] = set()
    for sh_type, off, size, link, entsize in sections:
        if sh_type != SHT_DYNSYM or not entsize or link >= len(sections):
            continue
        str_off = sections[link][1]
        for entry in range(off, off + size, entsize):
            name_off, = struct.unpack_from(order + "I", blob, entry)
            end = blob.find(b"\0", str_off + name_off)
            if name_off and end > 0:
                names.add(blob[str_off + name_off:end].decode("ascii", "replace"))
    return names


def mangled_twins(names: set[str], symbol: str) -> list[str]:
    """Itanium-mangled names of a free function called ``symbol``: _Z<len><name>…"""
    prefix = f"_Z{len(symbol)}{symbol}"
    return sorted(n for n in names if n.startswith(prefix))
