from . import functional  # noqa: F401


class Module:
    def __call__(self, *a, **k):
        return self.forward(*a, **k)

    def to(self, device):
        return self

    def eval(self):
        return self

    def load_state_dict(self, state, *a, **k):
        return None


class _Layer(Module):
    def __init__(self, *a, **k):
        pass

    def forward(self, x):
        return x


Conv2d = Dropout = Linear = _Layer
