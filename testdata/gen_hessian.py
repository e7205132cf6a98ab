#!/usr/bin/env python3
"""PyTorch reference for `srtool bound`: Hessian-vector products and lambda_max.

Run from the repository root with Debian's python3-torch (1.13):

    /usr/bin/python3 testdata/gen_hessian.py

Writes testdata/hessian/fmnist_robust_hvp.npz. The Go tests (cmd/srtool/bound_test.go)
read it and never run Python.

Setting (the one `srtool bound` computes at omega*):
* the model is testdata/demo/fmnist_robust.onnx (f*, srtool's resnet-small: kuangliu
  ResNet [1,1,1,1], widths 8-16-32-64, 1x28x28 input), its initializers loaded by name into
  scripts/torch_models.py's KuangResNet with a 1-channel conv1, in eval() mode (BatchNorm uses
  the running statistics);
* the data are the first N = 64 images of testdata/demo/fmnist_test_1000.npz (uint8 / 255);
* the loss is the mean cross-entropy over those 64 images, computed in float64 (the
  reference for srtool's float32 finite differences);
* "all" is every trainable parameter (conv and linear weights, linear bias, BN weight and
  bias; not the running statistics); "tail" those of the last K = 4 weight layers
  (layer4.* and linear.*), the tail of `srtool bound --fb-layers 4`.

Directions: for a parameter group, the names in sorted (byte) order, each tensor flattened
in C order, concatenated; element i of the direction is sin(2.399963 i + 0.3) (the golden
angle, so the direction has no period aligned with 3x3 kernels). The Go test builds the same
vector.

Values (keys):
* loss                   mean cross-entropy (float64, 0-d)
* hv_all/<name>          H_all v_all by double backward, per parameter (float32)
* hv_tail/<name>         H_tail v_tail, the tail block of the Hessian (float32)
* lambda_all, lambda_tail  largest eigenvalue of H_all and H_tail (float64, 0-d): Lanczos
                         with full reorthogonalisation, 60 steps, start vector from
                         torch.Generator seed 0; lambda_*_change is how much the top Ritz
                         value moved between steps 40 and 60 (its convergence)
* power_all, power_tail  PyHessian's power iteration (tol 1e-4, at most 100 iterations,
                         seed 0) for comparison, with power_*_iters
"""
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from torch_models import KuangResNet  # noqa: E402

MODEL = "testdata/demo/fmnist_robust.onnx"
DATA = "testdata/demo/fmnist_test_1000.npz"
OUT = "testdata/hessian/fmnist_robust_hvp.npz"
N = 64


def load_model():
    net = KuangResNet(num_blocks=(1, 1, 1, 1), num_classes=10, base_width=8)
    net.conv1 = nn.Conv2d(1, 8, kernel_size=3, stride=1, padding=1, bias=False)
    sd = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in onnx.load(MODEL).graph.initializer}
    missing, unexpected = net.load_state_dict(sd, strict=False)
    assert not unexpected, unexpected
    assert all(k.endswith("num_batches_tracked") for k in missing), missing
    net.eval()
    return net.double()


def direction(params):
    n = sum(p.numel() for _, p in params)
    i = np.arange(n, dtype=np.float64)
    flat = torch.from_numpy(np.sin(2.399963 * i + 0.3))
    out, off = [], 0
    for _, p in params:
        out.append(flat[off:off + p.numel()].view_as(p))
        off += p.numel()
    return out


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    net = load_model()
    d = np.load(DATA)
    x = torch.from_numpy(d["x"][:N].astype(np.float64) / 255)
    y = torch.from_numpy(d["y"][:N].astype(np.int64))
    named = sorted(net.named_parameters(), key=lambda kv: kv[0])
    groups = {
        "all": named,
        "tail": [(k, p) for k, p in named if k.startswith("layer4.") or k.startswith("linear.")],
    }
    out = {}
    with torch.enable_grad():
        loss = F.cross_entropy(net(x), y)
    out["loss"] = np.array(loss.item(), dtype=np.float64)
    print("loss", loss.item())
    for gname, params in groups.items():
        ps = [p for _, p in params]
        loss = F.cross_entropy(net(x), y)
        g = torch.autograd.grad(loss, ps, create_graph=True)

        def hvp(vs):
            return [h.detach() for h in torch.autograd.grad(g, ps, grad_outputs=vs, retain_graph=True)]

        hv = hvp(direction(params))
        for (name, _), h in zip(params, hv):
            out["hv_%s/%s" % (gname, name)] = h.numpy().astype(np.float32)
        dim = sum(p.numel() for p in ps)

        def flat_hvp(v):
            vs, off = [], 0
            for p in ps:
                vs.append(torch.from_numpy(v[off:off + p.numel()]).view_as(p))
                off += p.numel()
            return torch.cat([h.reshape(-1) for h in hvp(vs)]).numpy()

        # Lanczos with full reorthogonalisation: the reference lambda_max.
        gen = torch.Generator().manual_seed(0)
        q = torch.randn(dim, generator=gen, dtype=torch.float64).numpy()
        q /= np.linalg.norm(q)
        Q, alphas, betas = [q], [], []
        steps = 60
        for j in range(steps):
            w = flat_hvp(Q[-1])
            a = float(w @ Q[-1])
            alphas.append(a)
            for qq in Q:
                w -= (w @ qq) * qq
            for qq in Q:
                w -= (w @ qq) * qq
            b = float(np.linalg.norm(w))
            betas.append(b)
            Q.append(w / b)
        def ritz(m):
            T = np.diag(alphas[:m]) + np.diag(betas[:m - 1], 1) + np.diag(betas[:m - 1], -1)
            return np.linalg.eigvalsh(T)

        evals = ritz(steps)
        lam = float(evals[-1])
        change = abs(lam - float(ritz(40)[-1]))
        out["lambda_" + gname] = np.array(lam)
        out["lambda_%s_change" % gname] = np.array(change)
        print(gname, "params", dim, "lambda_max (Lanczos)", lam, "change 40->60", change, "lambda_min (Ritz)", float(evals[0]), flush=True)

        # PyHessian's power iteration, for comparison.
        gen = torch.Generator().manual_seed(0)
        v = torch.randn(dim, generator=gen, dtype=torch.float64).numpy()
        v /= np.linalg.norm(v)
        eig = None
        for it in range(1, 101):
            hvv = flat_hvp(v)
            tmp = float(hvv @ v)
            v = hvv / np.linalg.norm(hvv)
            if eig is not None and abs(eig - tmp) / (abs(eig) + 1e-6) < 1e-4:
                eig = tmp
                break
            eig = tmp
        out["power_" + gname] = np.array(eig)
        out["power_%s_iters" % gname] = np.array(it, dtype=np.int64)
        print(gname, "power iteration", eig, "iterations", it, flush=True)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    np.savez_compressed(OUT, **out)
    print(OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
