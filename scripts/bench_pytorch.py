#!/usr/bin/python3
"""PyTorch CPU baseline for srtool's benchmarks: kuangliu CIFAR ResNet-18
(width 64, 10 classes, 3x32x32), batch 64.

    /usr/bin/python3 scripts/bench_pytorch.py [THREADS] [--batch 64] [--repeats 10] [--warmup 3]

Measures, with torch.set_num_threads(THREADS) (default 2):
  forward      eval mode, torch.inference_mode()                     images/s
  input_grad   eval mode, forward + d mean-CE / d x (torch.autograd.grad,
               parameters frozen with requires_grad=False)            images/s
  pgd10        eval mode, PGD-10 (L-inf 8/255, step 2/255, random start)   images/s
  train_step   train mode (BN batch statistics), forward + mean-CE +
               backward + SGD step (lr 0.1, momentum 0, weight decay 0) images/s
Each is the median over --repeats timed runs after --warmup untimed runs.
best_* is the fastest run (useful on a shared, noisy machine; loadavg_1m_*
records the 1-minute load average at start and end).  Peak RSS is ru_maxrss after each phase (monotonic).  Prints one JSON line.
"""
import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_models import resnet18_cifar  # noqa: E402


def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def timed(fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), min(ts)


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("threads", type=int, nargs="?", default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model = resnet18_cifar(10)
    x = torch.rand(a.batch, 3, 32, 32)
    y = torch.randint(0, 10, (a.batch,))
    rss = {"start": rss_mib()}
    load0 = os.getloadavg()

    # (i) forward, eval mode
    model.eval()

    def fwd():
        with torch.inference_mode():
            model(x)

    t_fwd, b_fwd = timed(fwd, a.warmup, a.repeats)
    rss["forward"] = rss_mib()

    # (ii) forward + input gradient of mean CE, eval mode, frozen parameters
    for p in model.parameters():
        p.requires_grad_(False)

    def igrad():
        xr = x.clone().requires_grad_(True)
        loss = F.cross_entropy(model(xr), y)
        (g,) = torch.autograd.grad(loss, xr)
        return g

    t_grad, b_grad = timed(igrad, a.warmup, a.repeats)
    rss["input_grad"] = rss_mib()

    # (ii b) PGD-10, L-inf eps 8/255, step 2/255, random start (torchattacks.PGD's loop)
    eps, alpha = 8 / 255, 2 / 255

    def pgd10():
        adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
        for _ in range(10):
            adv.requires_grad_(True)
            loss = F.cross_entropy(model(adv), y)
            (g,) = torch.autograd.grad(loss, adv)
            adv = adv.detach() + alpha * g.sign()
            adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(0, 1)
        return adv

    t_pgd, b_pgd = timed(pgd10, 1, max(3, a.repeats // 3))
    rss["pgd10"] = rss_mib()

    # (iii) SGD train step, train mode BN
    for p in model.parameters():
        p.requires_grad_(True)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.0, weight_decay=0.0)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    t_train, b_train = timed(step, a.warmup, a.repeats)
    rss["train_step"] = rss_mib()

    b = a.batch
    print(json.dumps({
        "bench": "pytorch_resnet18_cifar",
        "torch": torch.__version__,
        "threads": a.threads,
        "batch": b,
        "repeats": a.repeats,
        "warmup": a.warmup,
        "forward_img_s": round(b / t_fwd, 2),
        "input_grad_img_s": round(b / t_grad, 2),
        "train_step_img_s": round(b / t_train, 2),
        "pgd10_img_s": round(b / t_pgd, 2),
        "best_forward_img_s": round(b / b_fwd, 2),
        "best_input_grad_img_s": round(b / b_grad, 2),
        "best_train_step_img_s": round(b / b_train, 2),
        "forward_s_per_batch": round(t_fwd, 5),
        "input_grad_s_per_batch": round(t_grad, 5),
        "train_step_s_per_batch": round(t_train, 5),
        "peak_rss_mib": round(rss_mib(), 1),
        "peak_rss_mib_after": {k: round(v, 1) for k, v in rss.items()},
        "params": sum(p.numel() for p in model.parameters()),
        "loadavg_1m_start_end": [round(load0[0], 2), round(os.getloadavg()[0], 2)],
        "cpu": cpu_name(),
        "nproc": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
