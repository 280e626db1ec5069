"""libdigits_cuda, the digits model on an NVIDIA GPU, served by aiges-load. It is built
only where CMake found a CUDA compiler. With a GPU it must answer every held-out image
exactly as the CPU engine libdigits does; without one it must refuse to start and say
why (the machine CI runs on has no GPU: that is what it checks there)."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.e2e.test_digits import HELDOUT, classify

pytestmark = pytest.mark.e2e


def has_gpu() -> bool:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    try:
        listed = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return listed.returncode == 0 and "GPU" in listed.stdout


GPU = has_gpu()


@pytest.fixture
def cuda_so(native_dir) -> str:
    path = native_dir / "libdigits_cuda.so"
    if not path.exists():
        pytest.skip("libdigits_cuda.so is built only where CMake finds a CUDA compiler")
    return str(path)


@pytest.mark.skipif(GPU, reason="this machine has a GPU")
def test_without_a_gpu_start_up_fails_and_says_why(start, cuda_so):
    service = start(cuda_so, ready=False)
    assert service.wait_exit() == 1, service.log
    assert "digits_cuda: no usable CUDA device" in service.log


@pytest.mark.skipif(not GPU, reason="no NVIDIA GPU here (nvidia-smi -L lists none)")
async def test_gpu_answers_every_held_out_image_as_the_cpu_engine(http, start, cuda_so,
                                                                    native_dir):
    gpu = start(cuda_so)
    cpu = start(str(native_dir / "libdigits.so"))
    for image, predicted in zip(HELDOUT["images"], HELDOUT["predictions"], strict=True):
        status, on_gpu = await classify(http, gpu, bytes(image))
        _, on_cpu = await classify(http, cpu, bytes(image))
        assert status == 200 and on_gpu["payload"] == on_cpu["payload"]
        assert f'"digit":{predicted},' in on_gpu["payload"]["result"]["text"]
