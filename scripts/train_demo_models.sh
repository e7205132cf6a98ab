#!/usr/bin/env bash
# Trains the two small Fashion-MNIST models `make demo` ships (testdata/demo/):
# f (normal training) and f* (PGD adversarial training, L∞ ε = 0.1), both from
# the same `srtool init` starting point, with srtool itself. Needs Debian's
# dataset-fashion-mnist. Run from the repository root after `make build`:
#
#   scripts/train_demo_models.sh [OUTDIR]   # default testdata/demo
#
# Variables: SEED (1: the shipped pair; another seed gives another pair from
# another initialisation and batch order, EXPERIMENTS.md's second pair is
# SEED=2), THREADS (2), S (the srtool binary, bin/srtool), DATA and EVAL_DATA
# (default Fashion-MNIST's train and test split; the first 20 000 training
# and 1 000 test images are used, so npz files holding those give the same
# data), PARALLEL=1 trains f and f* at the same time.
set -euo pipefail
OUT=${1:-testdata/demo}
SEED=${SEED:-1}
THREADS=${THREADS:-2}
S=${S:-bin/srtool}
DATA=${DATA:-fashion-mnist:/usr/share/datasets/fashion-mnist}
EVAL=()
if [[ -n ${EVAL_DATA:-} ]]; then EVAL=(--eval-data "$EVAL_DATA"); fi
mkdir -p "$OUT"
$S init --arch resnet-small --in 1,28,28 --width 8 --seed "$SEED" -o "$OUT/init.onnx"
# f: normal training, 20 000 training images, 4 epochs, cosine schedule.
normal() {
	$S train "$OUT/init.onnx" --data "$DATA" "${EVAL[@]}" --n 20000 --epochs 4 --lr 0.05 --schedule cosine \
		--eval-n 1000 --threads "$THREADS" --seed "$SEED" -o "$OUT/fmnist_normal.onnx" --json "$OUT/train_normal.json"
}
# f*: PGD-5 adversarial training (ε 0.1, step 0.025), same data, 5 epochs.
robust() {
	$S train "$OUT/init.onnx" --data "$DATA" "${EVAL[@]}" --n 20000 --epochs 5 --lr 0.05 --schedule cosine \
		--adv pgd --adv-eps 0.1 --adv-alpha 0.025 --adv-steps 5 \
		--eval-attack pgd --eps 0.1 --steps 10 --alpha 0.025 --eval-n 500 --threads "$THREADS" --seed "$SEED" \
		-o "$OUT/fmnist_robust.onnx" --json "$OUT/train_robust.json"
}
if [[ ${PARALLEL:-0} == 1 ]]; then
	normal &
	robust
	wait $!
else
	normal
	robust
fi
rm -f "$OUT/init.onnx"
