#!/usr/bin/env python
# coding:utf-8
"""
digits: handwritten digit classification, the Python twin of the C engine
native_examples/digits (libdigits.so), written for the aiges Python SDK.

Request:  input "image", 64 bytes: an 8x8 grayscale image, row-major,
          0 = background, 255 = full ink.
Response: output "result", text:  {"digit":3,"scores":[10 probabilities]}

The model is the MLP 64 -> 32 (ReLU) -> 10 of tools/train_digits.py, read
from the same digits.weights file as the C engine (format in
native_examples/digits/README.md). The forward pass adds in the same order
as the C code, in float32, so both engines give the same digit and the same
result text for every image.

Needs numpy.   Run once on test_digit.bin:  python wrapper.py
Serve it:      aiges-load python_examples/digits/wrapper.py
Config:        model=PATH of digits.weights (default: the repo's copy)
"""
import json
import math
import os
import struct
import threading

import numpy as np

from aiges.core.types import *
from aiges.dto import Response, ResponseData, DataListCls
from aiges.sdk import WrapperBase, ImageBodyField, StringBodyField
from aiges.utils.log import log

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_MODEL = os.path.normpath(
    os.path.join(HERE, "..", "..", "native_examples", "digits", "digits.weights"))

IMAGE_BYTES = 64

# The C engine's codes and texts (native_examples/digits/digits_internal.h).
ERR_NOINIT = 50003
ERR_INPUT = 50004
ERR_SIZE = 50005
ERR_MODEL_OPEN = 50006
ERR_MODEL_BAD = 50007

ERROR_TEXTS = {
    ERR_NOINIT: "digits: no model loaded (wrapperInit failed or was not called)",
    ERR_INPUT: 'digits: no input "image"',
    ERR_SIZE: "digits: image must be 64 bytes (8x8 grayscale)",
    ERR_MODEL_OPEN: "digits: cannot load the model",
    ERR_MODEL_BAD: "digits: cannot load the model",
}


class ModelError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def load_model(path):
    """(W1, b1, W2, b2) float32 from a DGT1 file; ModelError says what is wrong."""
    try:
        with open(path, "rb") as f:
            buf = f.read()
    except OSError as e:
        raise ModelError(ERR_MODEL_OPEN, "digits: cannot open model %s: %s" % (path, e.strerror))
    if len(buf) < 16 or buf[:4] != b"DGT1":
        raise ModelError(ERR_MODEL_BAD, "digits: %s is not a digits model (no DGT1 header)" % path)
    n_in, n_hid, n_out = struct.unpack_from("<3I", buf, 4)
    if n_in != IMAGE_BYTES or not 1 <= n_hid <= 1024 or not 1 <= n_out <= 256:
        raise ModelError(ERR_MODEL_BAD, "digits: model %s has layer sizes %d-%d-%d" % (
            path, n_in, n_hid, n_out))
    sizes = [n_hid * n_in, n_hid, n_out * n_hid, n_out]
    want = 16 + 4 * sum(sizes)
    if len(buf) != want:
        raise ModelError(ERR_MODEL_BAD, "digits: model %s is %s (want %d bytes)" % (
            path, "truncated" if len(buf) < want else "has trailing bytes", want))
    flat = np.frombuffer(buf, dtype="<f4", offset=16).astype(np.float32)
    if not np.all(np.isfinite(flat)):
        raise ModelError(ERR_MODEL_BAD, "digits: model %s holds a non-finite weight" % path)
    w1, b1, w2, b2 = np.split(flat, np.cumsum(sizes)[:-1])
    return w1.reshape(n_hid, n_in), b1, w2.reshape(n_out, n_hid), b2


def classify(model, image):
    """(digit, scores) for 64 image bytes.

    Sums run one input at a time (not as a BLAS dot product), the order the C
    engine adds in, so the float32 logits match it bit for bit."""
    return classify_batch(model, [image])[0]


def classify_batch(model, images):
    """[(digit, scores)] for a list of 64-byte images, in one pass over the weights:
    row b of each matrix is image b, and every sum still runs one input at a time, so
    each image gets the logits it gets alone, bit for bit."""
    w1, b1, w2, b2 = model
    x = np.frombuffer(b"".join(images), dtype=np.uint8).reshape(len(images), -1)
    x = x.astype(np.float32) / np.float32(255)
    h = np.tile(b1, (len(images), 1))
    for i in range(w1.shape[1]):
        h += x[:, i:i + 1] * w1[:, i]
    h = np.maximum(h, np.float32(0))
    z = np.tile(b2, (len(images), 1))
    for j in range(w2.shape[1]):
        z += h[:, j:j + 1] * w2[:, j]
    return [scores_of(row) for row in z]


def scores_of(z):
    """(digit, scores) for one image's float32 logits."""
    digit = int(np.argmax(z))
    # Softmax in double with libm's exp and a left-to-right sum, like the C code.
    top = float(z[digit])
    e = [math.exp(float(v) - top) for v in z]
    total = 0.0
    for v in e:
        total += v
    return digit, [v / total for v in e]


def result_json(digit, scores):
    return json.dumps({"digit": digit, "scores": [round(p, 4) for p in scores]},
                      separators=(",", ":"))


def result_response(digit, scores):
    res = Response()
    l = ResponseData()
    l.key = "result"
    l.type = DataText
    l.status = DataOnce
    l.setData(result_json(digit, scores).encode("utf-8"))
    res.list = [l]
    return res


class UserRequest(object):
    input1 = ImageBodyField(key="image", path=os.path.join(HERE, "test_digit.bin"))


class UserResponse(object):
    accept1 = StringBodyField(key="result")


class Wrapper(WrapperBase):
    serviceId = "digits"
    version = "v1"
    requestCls = UserRequest()
    responseCls = UserResponse()

    model = None
    init_error = ""
    # The text of this thread's last error: wrapperError only gets the code.
    last_error = threading.local()

    def wrapperInit(self, config: {}) -> int:
        path = config.get("model") or DEFAULT_MODEL
        try:
            self.model = load_model(path)
        except ModelError as e:
            self.init_error = str(e)
            log.error(self.init_error)
            self.remember_error(e.code, self.init_error)
            return e.code
        log.info("digits: loaded model %s" % path)
        return 0

    def wrapperOnceExec(self, params: {}, reqData: DataListCls, usrTag: str = "",
                        persId: int = 0) -> Response:
        if self.model is None:
            return self.fail(ERR_NOINIT, ERROR_TEXTS[ERR_NOINIT])
        node = reqData.get("image")
        if node is None:
            return self.fail(ERR_INPUT, ERROR_TEXTS[ERR_INPUT])
        img = node.data or b""
        if len(img) != IMAGE_BYTES:
            return self.fail(ERR_SIZE, "%s, got %d" % (ERROR_TEXTS[ERR_SIZE], len(img)))
        digit, scores = classify(self.model, bytes(img))
        return result_response(digit, scores)

    def wrapperOnceExecBatch(self, params: list, reqDatas: list, usrTags: list):
        """The aiges batch extension: the images of every request in one pass (numpy rows);
        a request without a valid 64-byte image fails alone."""
        if self.model is None:
            return ERR_NOINIT
        responses, images, at = [], [], []
        for req in reqDatas:
            node = req.get("image")
            img = bytes(node.data or b"") if node is not None else None
            if img is None or len(img) != IMAGE_BYTES:
                code = ERR_INPUT if img is None else ERR_SIZE
                responses.append(Response().response_err(code))
                continue
            at.append(len(responses))
            responses.append(None)
            images.append(img)
        if images:
            for k, (digit, scores) in zip(at, classify_batch(self.model, images)):
                responses[k] = result_response(digit, scores)
        return responses

    def remember_error(self, code, text):
        self.last_error.code, self.last_error.text = code, text

    def fail(self, code, text):
        """An error response; wrapperError(code) then returns text on this thread."""
        self.remember_error(code, text)
        res = Response()
        res.error_code = code
        return res

    def wrapperError(self, ret: int) -> str:
        if getattr(self.last_error, "code", None) == ret:
            return self.last_error.text
        if ret in (ERR_MODEL_OPEN, ERR_MODEL_BAD) and self.init_error:
            return self.init_error
        return ERROR_TEXTS.get(ret, "digits: unknown error")

    def wrapperFini(self) -> int:
        self.model = None
        return 0


if __name__ == '__main__':
    m = Wrapper()
    m.run()
