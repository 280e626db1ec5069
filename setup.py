"""Ships include/ (the ABI headers, source of the cffi declarations) inside the package,
and builds the compiled marshalling (aiges.native._marshal, cffi's API mode) where a C
compiler is present; where none is, the build says so and aiges installs without it,
marshalling in Python over the ABI-mode library (aiges/native/marshal.py)."""
import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildWithHeaders(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "aiges" / "include"
        target.mkdir(parents=True, exist_ok=True)
        for header in ("wrapper.h", "type.h"):
            shutil.copy2(HERE / "include" / header, target / header)


class OptionalBuildExt(build_ext):
    """The compiled marshalling is an optimisation: a failed build is a warning."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - no compiler, no Python headers, ...
            self._skip(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            self._skip(exc)

    @staticmethod
    def _skip(exc):
        print(f"WARNING: aiges's compiled marshalling was not built ({exc}); aiges "
              "marshals in Python instead (slower per request, same results)",
              file=sys.stderr)


setup(cmdclass={"build_py": BuildWithHeaders, "build_ext": OptionalBuildExt},
      cffi_modules=["aiges/native/marshal_build.py:ffibuilder"])
