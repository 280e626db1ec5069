"""Which wrapper symbols a library exports, and a clear refusal when it cannot be served.

SPEC 1: wrapperInit plus one complete mode is required; every other symbol is
optional and its absence only disables the matching feature.
"""
from __future__ import annotations

from aiges.engine import Modes
from aiges.errors import EngineLoadError
from aiges.native.elfsyms import dynamic_symbols, mangled_twins

MODE_SYMBOLS = {
    "once-sync": ("wrapperExec", "wrapperExecFree"),
    "once-async": ("wrapperExecAsync",),
    "session": ("wrapperCreate", "wrapperWrite", "wrapperRead", "wrapperDestroy"),
}
OPTIONAL = ("wrapperSetCtrl", "wrapperFini", "wrapperError", "wrapperVersion",
            "wrapperLoadRes", "wrapperUnloadRes", "wrapperDebugInfo",
            "wrapperExecBatch",  # an aiges extension (docs/BATCHING.md)
            "wrapperHealth",  # an aiges extension (docs/OPERATIONS.md, readiness)
            "wrapperCancel")  # an aiges extension (docs/ENGINES.md, cancellation)
ALL = ("wrapperInit", *OPTIONAL, *(s for group in MODE_SYMBOLS.values() for s in group))


def check(path: str, exported: set[str]) -> Modes:
    """Modes the library supports, or EngineLoadError naming what is missing."""
    complete = {mode for mode, need in MODE_SYMBOLS.items() if all(s in exported for s in need)}
    missing = [] if "wrapperInit" in exported else ["wrapperInit"]
    if not complete:
        # Name the symbols of the modes the library started on; with none, all of them.
        started = [need for need in MODE_SYMBOLS.values() if any(s in exported for s in need)]
        for need in started or MODE_SYMBOLS.values():
            missing += [s for s in need if s not in exported]
    if not missing:
        # Batching is an extra way to run once requests: only with once-sync to free them.
        batch = "wrapperExecBatch" in exported and "once-sync" in complete
        return Modes("once-sync" in complete, "once-async" in complete, "session" in complete,
                     batch)
    raise EngineLoadError(refusal(path, missing, complete))


def refusal(path: str, missing: list[str], complete: set[str]) -> str:
    lines = [f"cannot serve {path}: missing symbol(s) {', '.join(missing)}."]
    if not complete:
        lines.append("An engine needs wrapperInit and one complete mode: "
                     + "; ".join(f"{m} ({' + '.join(s)})" for m, s in MODE_SYMBOLS.items()) + ".")
    names = dynamic_symbols(path)
    for symbol in missing:
        twins = mangled_twins(names, symbol)
        if twins:
            lines.append(f"{symbol} is exported C++-mangled as {twins[0]}: its definition does not "
                         f"match wrapper.h or lacks extern \"C\" (include \"wrapper.h\" in that file).")
    return " ".join(lines)
