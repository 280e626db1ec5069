"""The upstream SDK's examples/stream/mock reads a file its Docker image ships
(/home/mmocr/resources/mmocr-logo.png); this serves it from here instead, so the
wrapper runs unchanged. Python imports sitecustomize at start-up from PYTHONPATH."""
import builtins
from pathlib import Path

_SHIPPED = {"/home/mmocr/resources/mmocr-logo.png": str(Path(__file__).with_name("mmocr-logo.png"))}
_open = builtins.open


def _redirected_open(file, *args, **kwargs):
    if isinstance(file, str):
        file = _SHIPPED.get(file, file)
    return _open(file, *args, **kwargs)


builtins.open = _redirected_open
