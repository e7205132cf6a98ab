#!/usr/bin/env python3
"""Prove that weights srtool writes load into the PyTorch module and give srtool's logits.

Run from the repository root with Debian's python3-torch (1.13):

    /usr/bin/python3 scripts/roundtrip_weights.py [--srtool bin/srtool]

Steps: `srtool init --arch resnet-small --width 8` writes a model with srtool's own
(seeded) initialisation; `srtool weights export` writes its parameters as safetensors
keyed by PyTorch names; this script loads them strictly (load_state_dict(strict=True))
into kuangliu's ResNet with [1,1,1,1] blocks and base width 8 (scripts/torch_models.py),
and compares PyTorch's eval-mode logits with `srtool eval --save-logits` on the same
images. Exits non-zero when they differ by more than 1e-4.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_models import KuangResNet, load_safetensors  # noqa: E402

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--srtool", default="bin/srtool")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="srtool-roundtrip-")
    model = os.path.join(tmp, "model.onnx")
    weights = os.path.join(tmp, "model.safetensors")
    logits = os.path.join(tmp, "logits.npy")
    data = os.path.join(tmp, "data.npz")

    rng = np.random.default_rng(0)
    x = (rng.integers(0, 256, size=(16, 3, 32, 32)) / 255).astype(np.float32)
    y = rng.integers(0, 10, size=16).astype(np.int64)
    np.savez(data, x=x, y=y)

    run = lambda *a: subprocess.run([args.srtool, *a], check=True, stdout=subprocess.DEVNULL)
    run("init", "--arch", "resnet-small", "--width", "8", "--seed", "7", "-o", model)
    run("weights", "export", model, "-o", weights)
    run("eval", model, "--data", "npz:" + data, "--save-logits", logits)

    net = KuangResNet(num_blocks=(1, 1, 1, 1), num_classes=10, base_width=8)
    net.load_state_dict(load_safetensors(weights), strict=True)
    net.eval()
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    got = np.load(logits)
    diff = float(np.abs(got - want).max())
    print(json.dumps({"max_abs_diff": diff, "logit_scale": float(np.abs(want).max()), "ok": diff <= 1e-4}))
    sys.exit(0 if diff <= 1e-4 else 1)


if __name__ == "__main__":
    main()
