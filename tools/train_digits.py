#!/usr/bin/env python3
"""Train the digits sample model and export what the sample engines load.

Dev-only: needs scikit-learn (`pip install scikit-learn`); nothing at run or
test time does, because every file written here is committed:

  native_examples/digits/digits.weights   the model (format below)
  native_examples/digits/heldout.json     100 held-out images, labels, predictions
  native_examples/digits/heldout.bin      all held-out images, for the C test
  python_examples/digits/test_digit.bin   one held-out image (the wrapper's test value)

Data: scikit-learn's bundled 8x8 digits (1797 images, pixel values 0..16; no
download). A fixed, stratified 20% (train_test_split, random_state=0) is held
out; the rest trains. (Holding out simply the last 20% tops out near 0.92: those
images come from writers the rest of the set barely has.)

Inputs: engines receive an 8x8 image as 64 bytes, 0 = background, 255 = full
ink. A data set value v becomes the byte v*255//16 and the model sees
byte/255 (float32). Training uses exactly those values, so the images a client
sends and the images the model was trained on go through the same scaling.

Model: an MLP 64 -> 32 (ReLU) -> 10 (softmax), trained with scikit-learn's
MLPClassifier (adam, fixed random_state), then exported as float32.

digits.weights, all little-endian:
  offset 0   4 bytes   magic "DGT1"
  offset 4   uint32    n_in  (64)
  offset 8   uint32    n_hid (32)
  offset 12  uint32    n_out (10)
  offset 16  float32   W1[n_hid][n_in]   row-major: W1[j][i] weighs input i into hidden j
             float32   b1[n_hid]
             float32   W2[n_out][n_hid]  row-major: W2[k][j] weighs hidden j into output k
             float32   b2[n_out]
  and nothing after. Forward pass, every step in float32:
    x[i] = byte[i] / 255
    h[j] = relu(b1[j] + sum_i W1[j][i] * x[i])   summed in order i = 0, 1, ...
    z[k] = b2[k] + sum_j W2[k][j] * h[j]         summed in order j = 0, 1, ...
    digit = the first k with the largest z[k]; scores = softmax(z) in double.
The C engine and python_examples/digits/wrapper.py compute it in exactly this
order, so all three agree bit for bit on z and thus on every prediction.

heldout.bin: uint32 count (little-endian), then count records of 66 bytes:
64 image bytes, 1 byte label, 1 byte prediction of the exported model.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_DIR = os.path.join(ROOT, "native_examples", "digits")
PY_DIR = os.path.join(ROOT, "python_examples", "digits")

MAGIC = b"DGT1"
HIDDEN = 32
HELDOUT_FRACTION = 0.2
SEED = 0
JSON_IMAGES = 100


def to_bytes(values):
    """Data set values 0..16 -> image bytes 0..255."""
    return (values.astype(np.int64) * 255 // 16).astype(np.uint8)


def scale(images):
    """Image bytes -> model inputs, as the engines compute them."""
    return images.astype(np.float32) / np.float32(255)


def load_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    images = to_bytes(data.data)
    labels = data.target.astype(np.uint8)
    tr_x, ho_x, tr_y, ho_y = train_test_split(images, labels, test_size=HELDOUT_FRACTION,
                                              random_state=SEED, stratify=labels)
    return (tr_x, tr_y), (ho_x, ho_y)


def train(images, labels):
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(HIDDEN,), activation="relu", solver="adam",
                        alpha=0.1, max_iter=2000, tol=1e-6, n_iter_no_change=20,
                        random_state=SEED)
    clf.fit(scale(images), labels)
    return clf


def weights_bytes(clf):
    # sklearn stores coefs_[0] as [n_in][n_hid]; the file holds [n_hid][n_in].
    w1, w2 = clf.coefs_[0].T, clf.coefs_[1].T
    b1, b2 = clf.intercepts_
    n_hid, n_in = w1.shape
    header = MAGIC + struct.pack("<3I", n_in, n_hid, w2.shape[0])
    body = b"".join(np.ascontiguousarray(a, dtype="<f4").tobytes() for a in (w1, b1, w2, b2))
    return header + body


def parse_weights(buf):
    """(W1, b1, W2, b2) as float32 arrays, read back the way the engines read them."""
    if buf[:4] != MAGIC:
        raise ValueError("not a DGT1 file")
    n_in, n_hid, n_out = struct.unpack_from("<3I", buf, 4)
    flat = np.frombuffer(buf, dtype="<f4", offset=16).astype(np.float32)
    sizes = [n_hid * n_in, n_hid, n_out * n_hid, n_out]
    if flat.size != sum(sizes):
        raise ValueError("DGT1 file has the wrong size")
    parts = np.split(flat, np.cumsum(sizes)[:-1])
    return parts[0].reshape(n_hid, n_in), parts[1], parts[2].reshape(n_out, n_hid), parts[3]


def logits(model, image):
    """z for one image, summed in the engines' order (not BLAS's) so results match C."""
    w1, b1, w2, b2 = model
    x = scale(np.asarray(image, dtype=np.uint8))
    h = b1.copy()
    for i in range(w1.shape[1]):
        h += w1[:, i] * x[i]
    h = np.maximum(h, np.float32(0))
    z = b2.copy()
    for j in range(w2.shape[1]):
        z += w2[:, j] * h[j]
    return z


def write_heldout_json(path, images, labels, preds):
    rows = ",\n    ".join(json.dumps([int(v) for v in img]) for img in images)
    with open(path, "w") as f:
        f.write('{"images": [\n    %s\n  ],\n' % rows)
        f.write(' "labels": %s,\n' % json.dumps([int(v) for v in labels]))
        f.write(' "predictions": %s}\n' % json.dumps([int(v) for v in preds]))


def write_heldout_bin(path, images, labels, preds):
    with open(path, "wb") as f:
        f.write(struct.pack("<I", len(images)))
        for img, label, pred in zip(images, labels, preds):
            f.write(img.tobytes() + bytes([int(label), int(pred)]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", default=MODEL_DIR, help="where digits.weights and heldout.* go")
    ap.add_argument("--py-dir", default=PY_DIR, help="where test_digit.bin goes")
    args = ap.parse_args(argv)

    (tr_x, tr_y), (ho_x, ho_y) = load_split()
    clf = train(tr_x, tr_y)
    blob = weights_bytes(clf)
    model = parse_weights(blob)
    preds = np.array([int(np.argmax(logits(model, img))) for img in ho_x], dtype=np.uint8)
    acc = float(np.mean(preds == ho_y))
    sk_acc = float(clf.score(scale(ho_x), ho_y))

    os.makedirs(args.model_dir, exist_ok=True)
    os.makedirs(args.py_dir, exist_ok=True)
    with open(os.path.join(args.model_dir, "digits.weights"), "wb") as f:
        f.write(blob)
    write_heldout_json(os.path.join(args.model_dir, "heldout.json"),
                       ho_x[:JSON_IMAGES], ho_y[:JSON_IMAGES], preds[:JSON_IMAGES])
    write_heldout_bin(os.path.join(args.model_dir, "heldout.bin"), ho_x, ho_y, preds)
    with open(os.path.join(args.py_dir, "test_digit.bin"), "wb") as f:
        f.write(ho_x[0].tobytes())

    print(f"train {len(tr_x)} images, held out {len(ho_x)}; iterations {clf.n_iter_}")
    print(f"held-out accuracy: {acc:.4f} (exported float32 model), {sk_acc:.4f} (sklearn)")
    print(f"test_digit.bin: label {int(ho_y[0])}, prediction {int(preds[0])}")
    return 0 if acc > 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
