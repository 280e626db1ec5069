"""cffi's API mode: builds aiges.native._marshal from marshal.c and pushed.c at install time.

setup.py names this in ``cffi_modules`` (as pyvips and cryptography build theirs);
``python aiges/native/marshal_build.py`` builds it in place by hand. The engine is
not linked: marshal.c calls it through addresses taken from the ABI-mode library
(aiges/native/marshal.py).
"""
from __future__ import annotations

from pathlib import Path

import cffi

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

ffibuilder = cffi.FFI()
# Everything crosses as an address: the engine's functions, the tag, the Python objects.
ffibuilder.cdef("""
#define AIGES_FALLBACK ...
#define AIGES_PYERR ...
int aiges_exec(uintptr_t exec_fn, uintptr_t free_fn, uintptr_t tag, uintptr_t params,
               uintptr_t items, uintptr_t ids, uintptr_t data_type, uintptr_t out,
               int meter_slot, uintptr_t meters);
int aiges_meter_slot(uintptr_t fallback);
uintptr_t aiges_meter_entry(int slot);
int aiges_write(uintptr_t write_fn, uintptr_t handle, uintptr_t items, uintptr_t data_type);
int aiges_read(uintptr_t read_fn, uintptr_t handle, uintptr_t data_type, uintptr_t out);
int aiges_outputs(uintptr_t resp, uintptr_t data_type, uintptr_t out);
uintptr_t aiges_push_entry(void);
int aiges_push_fd(void);
void aiges_push_hold(int held);
int aiges_push_open(uintptr_t tag);
void aiges_push_close(uintptr_t tag);
int aiges_push_take(uintptr_t data_type, uintptr_t out, int readable);
""")
ffibuilder.set_source(
    "aiges.native._marshal",
    # pushed.c (the queue of pushed results) uses marshal.c's copying: one unit.
    (HERE / "marshal.c").read_text() + (HERE / "pushed.c").read_text(),
    # wrapper.h: the repository's include/, or the copy inside an unpacked sdist's package.
    include_dirs=[str(REPO / "include"), str(REPO / "aiges" / "include")],
    extra_compile_args=["-O2"],
    # The C code reads dicts, lists and bytes with the full C API's macros.
    py_limited_api=False,
    define_macros=[("_CFFI_NO_LIMITED_API", None)],
)

if __name__ == "__main__":
    import shutil
    import tempfile
    # Built away from the repository (whose pyproject.toml the build would read), then
    # copied next to this file.
    with tempfile.TemporaryDirectory() as tmp:
        built = Path(ffibuilder.compile(tmpdir=tmp))
        shutil.copy2(built, HERE / built.name)
        print(HERE / built.name)
