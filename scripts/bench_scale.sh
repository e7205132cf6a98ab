#!/usr/bin/env bash
# The cost of one gradient call and one forward pass for ResNet-18 and
# WRN-34-10 on CIFAR-sized inputs on this machine, and from them the
# node-hours of AutoAttack (standard, L∞) on 10 000 images (BENCHMARKS.md
# "Scale on paper"). Models come from `srtool init` (random weights: the cost
# does not depend on them); no Python.
#
#   scripts/bench_scale.sh [THREADS] [ROUNDS]     # defaults 2 and 3
set -euo pipefail
T=${1:-2}
ROUNDS=${2:-3}
cd "$(dirname "$0")/.."
W=${BENCH_DIR:-/tmp/srtool-bench-scale}
mkdir -p "$W"
export ONNXRUNTIME_SHARED_LIBRARY_PATH=${ONNXRUNTIME_SHARED_LIBRARY_PATH:-$(scripts/fetch_ort.sh --print-path)}
[ -x bin/srtool ] || make build >/dev/null
for a in resnet18 wrn-34-10; do
	[ -f "$W/$a.onnx" ] || bin/srtool init --arch "$a" --in 3,32,32 --classes 10 -o "$W/$a.onnx" >/dev/null
done
go test -c -o "$W/ort.test" ./ort/ >/dev/null
go test -c -o "$W/autodiff.test" ./autodiff/ >/dev/null
export SRTOOL_BENCH_THREADS=$T
for a in resnet18 wrn-34-10; do
	for r in $(seq 1 "$ROUNDS"); do
		(cd ort && SRTOOL_BENCH_MODEL="$W/$a.onnx" "$W/ort.test" -test.run '^$' -test.bench '^BenchmarkForward$' -test.benchtime 5x) >"$W/fwd_${a}_$r.txt"
		(cd autodiff && SRTOOL_BENCH_MODEL="$W/$a.onnx" "$W/autodiff.test" -test.run '^$' -test.bench '^BenchmarkInputGradient$' -test.benchtime 5x) >"$W/grad_${a}_$r.txt"
	done
done
/usr/bin/python3 - "$W" "$ROUNDS" "$T" <<'PY'
import re, statistics, sys
w, rounds, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def rate(path):
    for line in open(path):
        m = re.search(r"([0-9.]+) images/s", line)
        if m:
            return float(m.group(1))
    raise SystemExit(f"no images/s in {path}")
# AutoAttack standard per point that survives every attack (the official
# recipe, BENCHMARKS.md "AutoAttack against the official implementation"): APGD-CE 101, APGD-T
# 9 × 101, FAB-T 9 × 100 calls of one image-gradient each (z_t − z_y),
# Square 5000 forward queries.
grads_per_point = 101 + 909 + 900
fwd_per_point = 5000
print(f"| model | forward img/s | input gradient img/s | one gradient call, batch 64 | AutoAttack on 10 000 images, every point surviving (upper bound) | at 55 % robust accuracy |")
print("|---|---|---|---|---|---|")
for a in ["resnet18", "wrn-34-10"]:
    f = statistics.median(rate(f"{w}/fwd_{a}_{r}.txt") for r in range(1, rounds + 1))
    g = statistics.median(rate(f"{w}/grad_{a}_{r}.txt") for r in range(1, rounds + 1))
    per_point = grads_per_point / g + fwd_per_point / f
    hours = 10000 * per_point / 3600
    # Points broken by APGD-CE (most of the non-robust ones) cost only its
    # 101 calls; the robust ones pay the whole list.
    typical = (10000 * 0.55 * per_point + 10000 * 0.45 * (101 / g)) / 3600
    print(f"| {a} | {f:.1f} | {g:.1f} | {64 / g * 1000:.0f} ms | {hours:.0f} node-hours ({threads} threads) | {typical:.0f} node-hours |")
PY
