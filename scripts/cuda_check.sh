#!/usr/bin/env bash
# cuda_check.sh — checks srtool's CUDA path on a machine with an NVIDIA GPU.
#
#   scripts/cuda_check.sh SRTOOL ORTLIB OUTDIR
#
# SRTOOL is a built bin/srtool, ORTLIB the CPU build of libonnxruntime 1.30
# that `make` fetches (scripts/fetch_ort.sh --print-path), OUTDIR where the
# log and reports go. Run from the repository root (it reads testdata/demo).
#
# 1. With the CPU build, --device cuda must fail with one line naming what is
#    missing, exit status 1, and no report written.
# 2. It looks for ONNX Runtime's CUDA provider libraries
#    (libonnxruntime_providers_cuda.so with libonnxruntime_providers_shared.so)
#    anywhere on the machine. ONNX Runtime loads them from beside
#    libonnxruntime.so through its provider bridge, so a provider of the same
#    release (1.30) placed beside the core library enables --device cuda.
#    With one found, it runs eval, PGD and the demo's finetune on cuda and on
#    the CPU and prints both, to be compared (cuDNN's algorithm choice makes
#    CUDA results differ from the CPU's in the last bits, not in accuracy).
set -u
if [ $# -ne 3 ]; then
	echo "usage: $0 SRTOOL ORTLIB OUTDIR" >&2
	exit 2
fi
srtool=$1 ortlib=$2 out=$3
mkdir -p "$out"
demo=testdata/demo
model=$demo/fmnist_robust.onnx
data=npz:$demo/fmnist_test_1000.npz

echo "== machine"
nvidia-smi -L 2>&1
nvidia-smi --query-gpu=driver_version,memory.total --format=csv,noheader 2>&1
python3 - <<'EOF' 2>&1
try:
    import onnxruntime as o
    print("python onnxruntime", o.__version__, o.get_available_providers(), o.__file__)
except Exception as e:
    print("python onnxruntime:", e)
try:
    import torch
    print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())
except Exception as e:
    print("torch:", e)
EOF

echo "== 1. CPU build, --device cuda"
ONNXRUNTIME_SHARED_LIBRARY_PATH=$ortlib "$srtool" eval --data "$data" --device cuda \
	--json "$out/cpu_build_cuda.json" "$model" >"$out/step1.stdout" 2>"$out/step1.stderr"
echo "exit status $? (want 1); stderr lines: $(wc -l <"$out/step1.stderr") (want 1); report written: $([ -e "$out/cpu_build_cuda.json" ] && echo yes || echo no) (want no)"
cat "$out/step1.stderr"

echo "== 2. CUDA provider libraries on this machine"
found=$(find / -xdev -name 'libonnxruntime_providers_cuda.so*' 2>/dev/null | head -5)
echo "${found:-none}"
provider=$(echo "$found" | head -1)
if [ -z "$provider" ]; then
	echo "no CUDA provider of ONNX Runtime here: the GPU path cannot be run on this machine"
	exit 0
fi
dir=$(dirname "$provider")
gpu=/tmp/srtool-ort-gpu
mkdir -p $gpu
cp "$ortlib" $gpu/libonnxruntime.so.1.30.0
cp "$provider" $gpu/libonnxruntime_providers_cuda.so
cp "$dir"/libonnxruntime_providers_shared.so $gpu/ 2>/dev/null || echo "no libonnxruntime_providers_shared.so beside $provider"
# CUDA, cuBLAS and cuDNN from the pip wheels (nvidia-*), when the system has none.
libs=$(python3 -c 'import nvidia, os; r=nvidia.__path__[0]; print(":".join(os.path.join(r,d,"lib") for d in sorted(os.listdir(r)) if os.path.isdir(os.path.join(r,d,"lib"))))' 2>/dev/null)
export LD_LIBRARY_PATH=${libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
echo "provider needs:"; ldd $gpu/libonnxruntime_providers_cuda.so | grep -E "cuda|cublas|cudnn|not found"
export ONNXRUNTIME_SHARED_LIBRARY_PATH=$gpu/libonnxruntime.so.1.30.0

for dev in cpu cuda; do
	echo "== 2. eval on $dev"
	/usr/bin/time -f "%e s wall" "$srtool" eval --data "$data" --device $dev --json "$out/eval_$dev.json" "$model" 2>&1
	echo "== 2. pgd-20, ε=0.1, 512 points, on $dev"
	/usr/bin/time -f "%e s wall" "$srtool" attack --data "$data" -n 512 --attacks pgd --eps 0.1 --steps 20 \
		--device $dev --json "$out/pgd_$dev.json" "$model" 2>&1
done
echo "== 2. the demo's whole job on cuda (Algorithm 1, K = 4, 3 epochs)"
/usr/bin/time -f "%e s wall" "$srtool" demo --dir $demo -o "$out/demo_cuda" --device cuda --epochs 3 2>&1 | tail -25
