#!/usr/bin/python3
"""Regenerates optim.json and schedules.json, the PyTorch reference values for
finetune's optimizer and schedule tests.

Run from this folder with Debian's python3-torch (1.13):

    /usr/bin/python3 gen_fixtures.py

Every float32 is written as a JSON number whose float64 value is exactly the
float32 (Python's float(t[i]) is exact), so the Go tests compare bits.
"""
import json
import math

import torch

torch.manual_seed(20240607)

N = 37  # odd: covers PyTorch's 8-wide AVX2 loop and its scalar tail
STEPS = 6


def floats(t):
    return [float(v) for v in t.detach().reshape(-1)]


def run_optimizer(name, make, lrs=None, momenta=None):
    p0 = torch.randn(N, dtype=torch.float32)
    grads = [torch.randn(N, dtype=torch.float32) * 0.5 for _ in range(STEPS)]
    p = torch.nn.Parameter(p0.clone())
    opt = make([p])
    after = []
    for s in range(STEPS):
        if lrs is not None:
            for g in opt.param_groups:
                g["lr"] = lrs[s]
        if momenta is not None:
            for g in opt.param_groups:
                if "betas" in g:
                    g["betas"] = (momenta[s], g["betas"][1])
                else:
                    g["momentum"] = momenta[s]
        p.grad = grads[s].clone()
        opt.step()
        after.append(floats(p))
    return {
        "name": name,
        "param": floats(p0),
        "grads": [floats(g) for g in grads],
        "after": after,
        "lrs": lrs,
        "momenta": momenta,
    }


cases = [
    run_optimizer("sgd plain", lambda ps: torch.optim.SGD(ps, lr=0.1)),
    run_optimizer("sgd wd", lambda ps: torch.optim.SGD(ps, lr=0.01, weight_decay=5e-4)),
    run_optimizer("sgd momentum wd (paper)", lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9, weight_decay=5e-4)),
    run_optimizer("sgd momentum dampening", lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.8, dampening=0.3)),
    run_optimizer("sgd nesterov wd", lambda ps: torch.optim.SGD(ps, lr=0.03, momentum=0.9, weight_decay=1e-3, nesterov=True)),
    run_optimizer("sgd changing lr and momentum", lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=5e-4),
                  lrs=[0.1, 0.05, 0.02, 0.3, 0.001, 0.07], momenta=[0.95, 0.9, 0.85, 0.86, 0.93, 0.95]),
    run_optimizer("adamw defaults", lambda ps: torch.optim.AdamW(ps)),
    run_optimizer("adamw lr wd eps", lambda ps: torch.optim.AdamW(ps, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)),
    run_optimizer("adamw no wd", lambda ps: torch.optim.AdamW(ps, lr=3e-3, weight_decay=0)),
    run_optimizer("adamw changing lr and beta1", lambda ps: torch.optim.AdamW(ps, lr=1e-3, weight_decay=0.01),
                  lrs=[1e-3, 2e-3, 5e-3, 1e-4, 3e-3, 1e-3], momenta=[0.95, 0.9, 0.85, 0.86, 0.93, 0.95]),
]
with open("optim.json", "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f, indent=1)


def run_schedule(name, make, steps, base_lr=0.1, opt="sgd"):
    p = torch.nn.Parameter(torch.zeros(1))
    if opt == "sgd":
        o = torch.optim.SGD([p], lr=base_lr, momentum=0.9)
    else:
        o = torch.optim.AdamW([p], lr=base_lr)
    s = make(o)
    lrs, moms = [], []
    for _ in range(steps):
        g = o.param_groups[0]
        lrs.append(g["lr"])
        moms.append(g["betas"][0] if "betas" in g else g["momentum"])
        o.step()
        s.step()
    g = o.param_groups[0]
    lrs.append(g["lr"])
    moms.append(g["betas"][0] if "betas" in g else g["momentum"])
    return {"name": name, "base_lr": base_lr, "optimizer": opt, "lr": lrs, "momentum": moms}


sch = [
    run_schedule("multistep paper", lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[40, 80], gamma=0.1), 120, base_lr=0.01),
    run_schedule("multistep repeated", lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[3, 3, 7], gamma=0.5), 12),
    run_schedule("cosine", lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10), 25),
    run_schedule("cosine eta_min", lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=7, eta_min=0.001), 30, base_lr=0.05),
    run_schedule("onecycle sgd", lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.2, total_steps=50), 50),
    run_schedule("onecycle adamw", lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.01, epochs=4, steps_per_epoch=9), 36, base_lr=1e-3, opt="adamw"),
    run_schedule("onecycle options", lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=23, pct_start=0.25, div_factor=10, final_div_factor=100, cycle_momentum=False), 23),
    run_schedule("onecycle three phase linear", lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.3, total_steps=40, three_phase=True, anneal_strategy='linear', base_momentum=0.8, max_momentum=0.9), 40),
]
with open("schedules.json", "w") as f:
    json.dump({"torch": torch.__version__, "schedules": sch}, f, indent=1)
