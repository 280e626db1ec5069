def relu(x, *a, **k):
    return x


def max_pool2d(x, *a, **k):
    return x


def log_softmax(x, *a, **k):
    import torch
    return torch.Tensor(7, (1, 10))     # always predicts digit 7
