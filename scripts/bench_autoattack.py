#!/usr/bin/python3
"""The official AutoAttack (fra31/auto-attack) on a model srtool attacks, for
scripts/bench_autoattack.sh.  Not a test: it needs the official code, which is
never part of this repository.

    /usr/bin/python3 scripts/bench_autoattack.py --autoattack DIR \\
        --weights W.safetensors --data X.npz --n 64 --eps 0.1 --threads 2 \\
        [--logits L.npy] [--attacks apgd-ce,apgd-t,fab-t,square] [--json OUT]

DIR is a checkout of fra31/auto-attack (the folder holding autoattack/).
W.safetensors is `srtool weights export MODEL` of a kuangliu-style ResNet
(scripts/torch_models.py KuangResNet; blocks, width and input channels are
read from the tensors), so both sides run the same function; with --logits
(`srtool eval --save-logits` on the same points) the script first checks that
PyTorch's logits equal srtool's within 1e-4.  X.npz holds x (uint8 0..255 or
float32 0..1, NCHW) and y; the first N points are used.

It runs AutoAttack's standard version (or the listed components as version
"custom"), seed 0, on the CPU with --threads intra-op threads, and prints one
JSON line: seconds per component (from the end of the clean pass, or of the
previous component, to the end of this one, as srtool's
diffmodel.BenchmarkAutoAttack measures), the robust accuracy after each component,
clean accuracy and total seconds.
"""
import argparse
import json
import os
import re
import sys
import time

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_models import KuangResNet, load_safetensors  # noqa: E402

def build_model(sd):
    """KuangResNet with the block counts, width and input channels of sd."""
    blocks = []
    for layer in range(1, 5):
        idx = {int(k.split(".")[1]) for k in sd if k.startswith("layer%d." % layer)}
        blocks.append(len(idx))
    width, in_ch = sd["conv1.weight"].shape[:2]
    classes = sd["linear.weight"].shape[0]
    net = KuangResNet(tuple(blocks), num_classes=classes, base_width=width)
    net.conv1 = nn.Conv2d(in_ch, width, kernel_size=3, stride=1, padding=1, bias=False)
    missing, unexpected = net.load_state_dict(sd, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
    return net.eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--autoattack", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--eps", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--logits")
    ap.add_argument("--attacks", default="")
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sys.path.insert(0, args.autoattack)
    from autoattack import AutoAttack  # noqa: E402

    z = np.load(args.data)
    x, y = z["x"][: args.n], z["y"][: args.n].astype(np.int64)
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / np.float32(255)  # srtool's byte → [0,1], in float32
    x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    y = torch.from_numpy(y)
    model = build_model(load_safetensors(args.weights))
    if args.logits:
        with torch.no_grad():
            diff = float(np.abs(model(x).numpy() - np.load(args.logits)[: args.n]).max())
        if diff > 1e-4:
            sys.exit("PyTorch's logits differ from srtool's by %g (> 1e-4): not the same model" % diff)

    version, attacks = "standard", []
    if args.attacks:
        version, attacks = "custom", args.attacks.split(",")
    adversary = AutoAttack(model, norm="Linf", eps=args.eps, version=version, attacks_to_run=attacks,
                           seed=0, device="cpu", verbose=True)
    if version == "custom":  # the standard version's settings for the listed components
        adversary.apgd.n_restarts = 1
        adversary.fab.n_restarts = 1
        adversary.apgd_targeted.n_target_classes = 9
        adversary.fab.n_target_classes = 9
        adversary.square.n_queries = 5000
    marks = []
    pat = re.compile(r"^(initial accuracy|robust accuracy after ([A-Z-]+)): ([0-9.]+)%")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)
        m = pat.match(str(msg))
        if m:
            marks.append((time.perf_counter(), time.process_time(), (m.group(2) or "clean").lower(), float(m.group(3))))

    adversary.logger.log = log
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.no_grad():
        adversary.run_standard_evaluation(x, y, bs=250)
    total, total_cpu = time.perf_counter() - t0, time.process_time() - c0
    out = {"n": args.n, "eps": args.eps, "threads": args.threads, "total_s": total, "total_cpu_s": total_cpu,
           "seconds": {}, "cpu_seconds": {}, "robust_accuracy": {}}
    for (t_prev, c_prev, _, _), (t, c, name, acc) in zip(marks, marks[1:]):
        out["seconds"][name] = t - t_prev
        out["cpu_seconds"][name] = c - c_prev
        out["robust_accuracy"][name] = acc
    out["clean_accuracy"] = marks[0][3] if marks else None
    line = json.dumps(out)
    print(line)
    if args.json:
        with open(args.json, "w") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
