#!/usr/bin/python3
"""PyTorch reference adversarial examples for srtool's FGSM and PGD.

    /usr/bin/python3 testdata/gen_attacks.py        # from the repository root

Loads the weights of testdata/models/resnet10_cifar (param/* of its golden
file) into the PyTorch module, and writes testdata/models/resnet10_cifar_attacks.npz:
  x, y      16 structured images (8-bit grid) and labels (the model's own
            predictions for the first 8, the next class for the last 8)
  fgsm      torchattacks.FGSM: x + eps*sign(grad CE), clipped to [0,1], eps 8/255
  pgd       PGD-10 without random start (I-FGSM): step 2/255, eps 8/255, projection
            to the eps-ball then to [0,1] after every step, cross-entropy (mean)
Eval mode, float32, one thread: deterministic.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "scripts"))
from torch_models import KuangResNet, rand_images  # noqa: E402


def main():
    torch.set_num_threads(1)
    g = np.load(os.path.join(HERE, "models", "resnet10_cifar_golden.npz"))
    model = KuangResNet((1, 1, 1, 1), 10, base_width=8)
    sd = {k[len("param/"):]: torch.from_numpy(g[k]) for k in g.files if k.startswith("param/")}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
    model.eval()
    gen = torch.Generator().manual_seed(11)
    x = rand_images(16, (3, 32, 32), gen)
    with torch.no_grad():
        pred = model(x).argmax(1)
    y = pred.clone()
    y[8:] = (pred[8:] + 1) % 10
    with torch.no_grad():
        assert np.abs(model(torch.from_numpy(g["x"])).numpy() - g["logits"]).max() < 1e-4

    eps, alpha = 8 / 255, 2 / 255

    def grad(adv):
        adv = adv.clone().requires_grad_(True)
        loss = F.cross_entropy(model(adv), y)
        (gr,) = torch.autograd.grad(loss, adv)
        return gr

    fgsm = (x + eps * grad(x).sign()).clamp(0, 1).detach()
    adv = x.clone()
    for _ in range(10):
        adv = adv + alpha * grad(adv).sign()
        adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(0, 1).detach()
    np.savez_compressed(os.path.join(HERE, "models", "resnet10_cifar_attacks.npz"),
                        x=x.numpy(), y=y.numpy().astype(np.int64), fgsm=fgsm.numpy(), pgd=adv.numpy())


if __name__ == "__main__":
    main()
