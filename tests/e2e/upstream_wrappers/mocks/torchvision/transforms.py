class _T:
    def __init__(self, *a, **k):
        pass

    def __call__(self, img):
        import torch
        return torch.Tensor(0, (1, 28, 28))


Grayscale = Resize = ToTensor = Normalize = _T


class Compose(_T):
    pass
