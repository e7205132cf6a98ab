#!/usr/bin/python3
"""Where PyTorch's ResNet-18 CIFAR train step (batch 64, train-mode BN, SGD)
spends its time, per op, with torch.profiler, for BENCHMARKS.md's comparison
with srtool's step (scripts/ort_profile.py on SRTOOL_BENCH_PROFILE traces).

    /usr/bin/python3 scripts/profile_pytorch_train.py [THREADS] [STEPS]

Prints the mean self CPU time per step of the ops that take the most.
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_models import resnet18_cifar  # noqa: E402


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = resnet18_cifar(10).train()
    x, y = torch.rand(64, 3, 32, 32), torch.randint(0, 10, (64,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    for _ in range(3):
        step()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    rows = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in rows)
    print(f"threads {threads}, {steps} steps: {total / steps / 1000:.0f} ms self CPU time per step (all ops)")
    for e in rows[:15]:
        print(f"{e.key:45s} {e.self_cpu_time_total / steps / 1000:8.1f} ms/step  {e.count // steps:4d} calls/step")


if __name__ == "__main__":
    main()
