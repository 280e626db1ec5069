"""Ships include/ (the ABI headers, source of the cffi declarations) inside the package."""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildWithHeaders(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "aiges" / "include"
        target.mkdir(parents=True, exist_ok=True)
        for header in ("wrapper.h", "type.h"):
            shutil.copy2(HERE / "include" / header, target / header)


setup(cmdclass={"build_py": BuildWithHeaders})
