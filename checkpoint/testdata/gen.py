#!/usr/bin/python3
"""Writes the checkpoint package's PyTorch-made fixtures.

    /usr/bin/python3 checkpoint/testdata/gen.py      # from the repository root

Needs Debian's python3-torch (1.13) and python3-numpy; no safetensors package
(the .safetensors file is written by hand from the format spec).  Every file
holds the weights of testdata/models/resnet10_cifar_train.onnx: the
``param/<name>`` arrays of testdata/models/resnet10_cifar_golden.npz, loaded
into scripts/torch_models.py's KuangResNet((1,1,1,1), base_width=8), so the
Go tests compare against that npz.  Output is deterministic, except that the legacy-format files name their
storages by memory address.

| file | what it is |
|---|---|
| plain.pt | torch.save(model.state_dict()) (zip format, float32, with the int64 num_batches_tracked buffers) |
| wrapped.pt | {'state_dict': <DataParallel state_dict, 'module.' prefixes>, 'epoch': 7, 'best_acc': 0.5, 'arch': 'resnet10'}, where linear.weight is a transposed view (strides (1, 10)), conv1.weight a permuted view, and every BN's weight/bias/running_mean/running_var are slices of one shared storage (storage offsets) |
| half.pt | the state_dict in float16 (zip format) |
| legacy_bf16.pt | the state_dict in bfloat16, legacy (non-zip) format: _use_new_zipfile_serialization=False |
| tiny.pt, tiny_legacy.pt | fuzz seeds: {'model': {'a': arange(6).view(2,3).t(), 'b': a float16 slice at offset 2, 'n': int64 scalar}} in both formats |
| plain.safetensors | float32 safetensors written by hand: u64 header length, JSON header padded with spaces to 8 bytes, little-endian C-order data, tensors sorted by name |
"""
import collections
import json
import os
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from torch_models import KuangResNet  # noqa: E402


def load_model():
    g = np.load(os.path.join(ROOT, "testdata", "models", "resnet10_cifar_golden.npz"))
    model = KuangResNet((1, 1, 1, 1), 10, base_width=8)
    sd = model.state_dict()
    params = {k[len("param/"):]: g[k] for k in g.files if k.startswith("param/")}
    missing = [k for k in sd if not k.endswith("num_batches_tracked") and k not in params]
    assert not missing, missing
    for k, v in sd.items():
        if k in params:
            v.copy_(torch.from_numpy(params[k]))
        else:
            v.fill_(5)  # num_batches_tracked: warm_bn ran 5 train-mode passes
    return model


def strided_state_dict(sd):
    """The same values, stored with non-trivial strides and storage offsets."""
    out = collections.OrderedDict()
    bn_prefixes = sorted({k.rsplit(".", 1)[0] for k in sd if k.endswith("running_var")})
    shared = {}
    for p in bn_prefixes:
        parts = [sd[p + s] for s in (".weight", ".bias", ".running_mean", ".running_var")]
        buf = torch.cat(parts)  # one storage, four slices at offsets 0, C, 2C, 3C
        c = parts[0].numel()
        for i, s in enumerate((".weight", ".bias", ".running_mean", ".running_var")):
            shared[p + s] = buf[i * c:(i + 1) * c]
    for k, v in sd.items():
        if k in shared:
            t = shared[k]
        elif k == "linear.weight":
            t = v.t().contiguous().t()                  # [10,64] with strides (1,10)
        elif k == "conv1.weight":
            t = v.permute(2, 3, 1, 0).contiguous().permute(3, 2, 0, 1)
        else:
            t = v
        assert torch.equal(t, v), k
        out["module." + k] = t
    assert not out["module.linear.weight"].is_contiguous()
    assert out["module.linear.weight"].stride() == (1, 10)
    assert not out["module.conv1.weight"].is_contiguous()
    assert out["module.bn1.bias"].storage_offset() == 8
    return out


def write_safetensors(path, sd):
    """safetensors by hand (huggingface/safetensors README, "Format")."""
    header, chunks, off = {}, [], 0
    for k in sorted(sd):
        a = sd[k].detach().contiguous().numpy()
        dtype = {np.dtype("float32"): "F32", np.dtype("int64"): "I64"}[a.dtype]
        b = a.astype(a.dtype.newbyteorder("<")).tobytes(order="C")
        header[k] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        chunks.append(b)
        off += len(b)
    header = {"__metadata__": {"format": "pt", "source": "checkpoint/testdata/gen.py"}, **header}  # first, as sorted JSON keys put it
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for c in chunks:
            f.write(c)


def main():
    torch.manual_seed(0)
    model = load_model()
    sd = model.state_dict()
    files = {}

    files["plain.pt"] = lambda p: torch.save(sd, p)
    files["wrapped.pt"] = lambda p: torch.save(
        {"state_dict": strided_state_dict(sd), "epoch": 7, "best_acc": 0.5, "arch": "resnet10"}, p)
    half = collections.OrderedDict((k, v.half() if v.is_floating_point() else v) for k, v in sd.items())
    files["half.pt"] = lambda p: torch.save(half, p)
    bf16 = collections.OrderedDict((k, v.bfloat16() if v.is_floating_point() else v) for k, v in sd.items())
    files["legacy_bf16.pt"] = lambda p: torch.save(bf16, p, _use_new_zipfile_serialization=False)
    files["plain.safetensors"] = lambda p: write_safetensors(p, sd)

    base = torch.arange(12, dtype=torch.float32)
    tiny = {"model": collections.OrderedDict([
        ("a", base[:6].view(2, 3).t()),
        ("b", base.half()[2:5]),
        ("n", torch.tensor(3)),
    ]), "epoch": 1}
    files["tiny.pt"] = lambda p: torch.save(tiny, p)
    files["tiny_legacy.pt"] = lambda p: torch.save(tiny, p, _use_new_zipfile_serialization=False)

    total = 0
    for name, save in files.items():
        p = os.path.join(HERE, name)
        save(p)
        n = os.path.getsize(p)
        total += n
        print(f"{name}: {n} bytes")
    print(f"total: {total} bytes")


if __name__ == "__main__":
    main()
