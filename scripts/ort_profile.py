#!/usr/bin/env python3
"""Summarise an ONNX Runtime profile (ort.Options.ProfilePrefix, or
SRTOOL_BENCH_PROFILE=prefix for the autodiff benchmarks).

usage: ort_profile.py TRACE.json [TOP_NODES]

Prints the wall time of every session run, then for the last run the kernel
time per op type and the slowest nodes. Standard library only.
"""
import collections
import json
import signal
import sys


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet under `| head`
    d = json.load(open(sys.argv[1]))
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    runs = [e for e in d if e.get("cat") == "Session" and e["name"] == "model_run"]
    if not runs:
        sys.exit("no model_run events in %s" % sys.argv[1])
    print("model_run ms", [round(e["dur"] / 1000, 1) for e in runs])
    last = runs[-1]
    t0, t1 = last["ts"], last["ts"] + last["dur"]
    by_op, by_node = collections.Counter(), collections.Counter()
    for e in d:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and t0 <= e["ts"] <= t1:
            op = e["args"]["op_name"]
            by_op[op] += e["dur"]
            by_node[e["name"][: -len("_kernel_time")] + " " + op] += e["dur"]
    total = sum(by_op.values())
    print("last run: kernel total %.1f ms" % (total / 1000))
    for k, v in by_op.most_common(25):
        print("%-24s %8.1f ms %5.1f %%" % (k, v / 1000, 100 * v / total))
    print("--- slowest nodes")
    for k, v in by_node.most_common(top):
        print("%-64s %8.1f ms" % (k, v / 1000))


if __name__ == "__main__":
    main()
