"""The digits demo: a real classifier served by the C engine and by the numpy wrapper,
answering the right digit for held-out images, identically."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
HELDOUT = json.loads((REPO / "native_examples/digits/heldout.json").read_text())


@pytest.fixture(params=["c", "py"])
def digits(request, start, native_dir, py_examples):
    engine = native_dir / "libdigits.so" if request.param == "c" else \
        py_examples / "digits" / "wrapper.py"
    return start(str(engine))


async def classify(http, service, image: bytes):
    doc = {"payload": {"image": {"image": base64.b64encode(image).decode(), "status": 3}}}
    async with http.post(service.url + "/v1/svcName", json=doc) as resp:
        return resp.status, await resp.json()


async def test_held_out_images_get_the_exported_models_answer(http, digits):
    right = 0
    for image, label, predicted in zip(HELDOUT["images"], HELDOUT["labels"],
                                       HELDOUT["predictions"], strict=True):
        status, out = await classify(http, digits, bytes(image))
        assert status == 200
        result = json.loads(out["payload"]["result"]["text"])
        assert result["digit"] == predicted
        assert len(result["scores"]) == 10 and abs(sum(result["scores"]) - 1) < 0.01
        right += result["digit"] == label
    assert right / len(HELDOUT["labels"]) > 0.9


async def test_c_and_python_give_identical_answers(http, start, native_dir, py_examples):
    c = start(str(native_dir / "libdigits.so"))
    py = start(str(py_examples / "digits" / "wrapper.py"))
    for image in HELDOUT["images"][:20]:
        _, a = await classify(http, c, bytes(image))
        _, b = await classify(http, py, bytes(image))
        assert a["payload"] == b["payload"]


async def test_wrong_size_is_an_engine_error(http, digits):
    status, out = await classify(http, digits, b"\x00" * 10)
    assert (status, out["header"]["code"]) == (500, 10909)
    assert "image must be 64 bytes" in out["header"]["message"]
