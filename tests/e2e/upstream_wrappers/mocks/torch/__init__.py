"""Minimal stand-in for torch, enough for aiges_demo stream_test/mnist wrappers (no real math)."""
from . import nn  # noqa: F401


class Tensor:
    def __init__(self, value=0, shape=(1, 1, 28, 28)):
        self.value, self.shape = value, shape

    def unsqueeze(self, dim):
        return Tensor(self.value, (1,) + tuple(self.shape))

    def to(self, device):
        return self

    def argmax(self, *a, **k):
        return Tensor(self.value, ())

    def __int__(self):
        return int(self.value)


class device:  # noqa: N801
    def __init__(self, name):
        self.name = name


def load(path, *a, **k):
    return {}          # the real mnist_cnn.pt is not needed by the mock model


def flatten(x, *a):
    return x
