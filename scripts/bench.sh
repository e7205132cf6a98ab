#!/usr/bin/env bash
# Runs srtool's benchmarks next to PyTorch's on the same machine, in the same
# window, with the same thread count, and prints the ratios (BENCHMARKS.md).
#
#   scripts/bench.sh [THREADS] [ROUNDS]     # defaults 2 and 3
#
# Needs Debian's python3-torch (1.13), GNU time (/usr/bin/time, Debian
# package `time`, for the train step's peak RSS) and `make ort`. ResNet-18 CIFAR
# (kuangliu, width 64), batch 64: forward, forward + input gradient (twice:
# through the Classifier the attacks use, and autodiff's plain graph), PGD-10
# and a full train step. Each round runs PyTorch, then srtool; the summary
# gives per-round ratios and their median.
set -euo pipefail
T=${1:-2}
ROUNDS=${2:-3}
cd "$(dirname "$0")/.."
W=${BENCH_DIR:-/tmp/srtool-bench}
mkdir -p "$W"
export ONNXRUNTIME_SHARED_LIBRARY_PATH=${ONNXRUNTIME_SHARED_LIBRARY_PATH:-$(scripts/fetch_ort.sh --print-path)}
[ -f "$W/r18.onnx" ] || /usr/bin/python3 scripts/export_resnet18.py "$W/r18.onnx" >/dev/null
[ -f "$W/r18_train.onnx" ] || /usr/bin/python3 scripts/export_resnet18.py "$W/r18_train.onnx" --train-export >/dev/null
[ -x "${TIME:-/usr/bin/time}" ] || { echo "bench.sh: needs GNU time at /usr/bin/time (apt-get install time) or TIME=path" >&2; exit 1; }
export SRTOOL_BENCH_MODEL=$W/r18.onnx SRTOOL_BENCH_TRAIN_MODEL=$W/r18_train.onnx SRTOOL_BENCH_THREADS=$T
go test -c -o "$W/ort.test" ./ort/ >/dev/null
go test -c -o "$W/diffmodel.test" ./diffmodel/ >/dev/null
go test -c -o "$W/autodiff.test" ./autodiff/ >/dev/null
for r in $(seq 1 "$ROUNDS"); do
	/usr/bin/python3 scripts/bench_pytorch.py "$T" --repeats 10 --warmup 3 > "$W/torch_$r.json"
	(cd ort && "$W/ort.test" -test.run '^$' -test.bench 'Forward' -test.benchtime 10x) > "$W/go_ort_$r.txt"
	(cd diffmodel && "$W/diffmodel.test" -test.run '^$' -test.bench 'PGD10' -test.benchtime 10x) > "$W/go_dm_$r.txt"
	(cd diffmodel && "$W/diffmodel.test" -test.run '^$' -test.bench 'InputGradient' -test.benchtime 10x) > "$W/go_dmig_$r.txt"
	(cd autodiff && "$W/autodiff.test" -test.run '^$' -test.bench 'InputGradient' -test.benchtime 10x) > "$W/go_ad_$r.txt"
	# The train step as `srtool train` runs it (Trainer.Step + SGD update), in
	# its own process so that its peak RSS is its own.
	(cd diffmodel && ${TIME:-/usr/bin/time} -f "peak_rss_kib %M" "$W/diffmodel.test" -test.run '^$' -test.bench 'TrainStep' -test.benchtime 10x) > "$W/go_train_$r.txt" 2>&1
done
/usr/bin/python3 - "$W" "$ROUNDS" <<'PY'
import json, re, statistics, sys
w, rounds = sys.argv[1], int(sys.argv[2])
def go(path, name):
    for line in open(path):
        if line.startswith("Benchmark" + name):
            m = re.search(r"([0-9.]+) images/s", line)
            if m:
                return float(m.group(1))
    return None
rows = {"forward": ("go_ort", "Forward", "forward_img_s"),
        "input grad (attacks' Classifier, NCHWc-lowered)": ("go_dmig", "InputGradient", "input_grad_img_s"),
        "input grad (autodiff graph, standard ops)": ("go_ad", "InputGradient", "input_grad_img_s"),
        "PGD-10": ("go_dm", "PGD10", "pgd10_img_s"), "train step": ("go_train", "TrainStep", "train_step_img_s")}
print("| phase | round | srtool img/s | PyTorch img/s | ratio | load (1 min) |")
print("|---|---|---|---|---|---|")
summary = {}
for phase, (f, bench, key) in rows.items():
    for r in range(1, rounds + 1):
        t = json.load(open(f"{w}/torch_{r}.json"))
        g = go(f"{w}/{f}_{r}.txt", bench)
        if g is None:
            continue
        ratio = g / t[key]
        summary.setdefault(phase, []).append(ratio)
        print(f"| {phase} | {r} | {g:.1f} | {t[key]:.1f} | {ratio:.2f} | {t['loadavg_1m_start_end'][0]} |")
print()
print("| phase | median ratio srtool/PyTorch |")
print("|---|---|")
for phase, v in summary.items():
    print(f"| {phase} | {statistics.median(v):.2f} |")
t = json.load(open(f"{w}/torch_1.json"))
print(f"\nPyTorch peak RSS {t['peak_rss_mib']} MiB; {t['cpu']}, {t['nproc']} CPUs, torch {t['torch']}, {t['threads']} threads")
for r in range(1, rounds + 1):
    for line in open(f"{w}/go_train_{r}.txt"):
        if line.startswith("peak_rss_kib"):
            kib = int(line.split()[1])
            tr = json.load(open(f"{w}/torch_{r}.json"))
            print(f"round {r}: srtool train-step process peak RSS {kib / 1024:.0f} MiB = {kib / 1024 / tr['peak_rss_mib']:.2f}x PyTorch's {tr['peak_rss_mib']} MiB")
PY
