#!/usr/bin/env python3
"""Write the Fashion-MNIST samples `make demo` ships (testdata/demo/).

Reads Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist) and writes
  fmnist_train_3000.npz  the last 3000 training images (fine-tuning data; the demo
                         models were trained on the first 20000, so these are unseen)
  fmnist_test_1000.npz   the first 1000 test images (evaluation data)
with keys x (uint8, N×1×28×28) and y (int64). Run from the repository root:
    /usr/bin/python3 scripts/make_demo_data.py
"""
import gzip
import os

import numpy as np

SRC = "/usr/share/datasets/fashion-mnist"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata", "demo")


def read(name, header):
    with gzip.open(os.path.join(SRC, name)) as f:
        return f.read()[header:]


def main():
    xtr = np.frombuffer(read("train-images-idx3-ubyte.gz", 16), np.uint8).reshape(-1, 1, 28, 28)
    ytr = np.frombuffer(read("train-labels-idx1-ubyte.gz", 8), np.uint8).astype(np.int64)
    xte = np.frombuffer(read("t10k-images-idx3-ubyte.gz", 16), np.uint8).reshape(-1, 1, 28, 28)
    yte = np.frombuffer(read("t10k-labels-idx1-ubyte.gz", 8), np.uint8).astype(np.int64)
    os.makedirs(OUT, exist_ok=True)
    np.savez_compressed(os.path.join(OUT, "fmnist_train_3000.npz"), x=xtr[-3000:], y=ytr[-3000:])
    np.savez_compressed(os.path.join(OUT, "fmnist_test_1000.npz"), x=xte[:1000], y=yte[:1000])


if __name__ == "__main__":
    main()
