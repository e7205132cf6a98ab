#!/usr/bin/env bash
# Trains the two small Fashion-MNIST models `make demo` ships (testdata/demo/):
# f (normal training) and f* (PGD adversarial training, L∞ ε = 0.1), both from
# the same `srtool init` starting point, with srtool itself. Needs Debian's
# dataset-fashion-mnist. Run from the repository root after `make build`:
#
#   scripts/train_demo_models.sh [OUTDIR]   # default testdata/demo
set -euo pipefail
OUT=${1:-testdata/demo}
FM=fashion-mnist:/usr/share/datasets/fashion-mnist
S=bin/srtool
mkdir -p "$OUT"
$S init --arch resnet-small --in 1,28,28 --width 8 --seed 1 -o "$OUT/init.onnx"
# f: normal training, 20 000 training images, 4 epochs, cosine schedule.
$S train "$OUT/init.onnx" --data $FM --n 20000 --epochs 4 --lr 0.05 --schedule cosine \
	--eval-n 1000 --threads 2 --seed 1 -o "$OUT/fmnist_normal.onnx" --json "$OUT/train_normal.json"
# f*: PGD-5 adversarial training (ε 0.1, step 0.025), same data, 5 epochs.
$S train "$OUT/init.onnx" --data $FM --n 20000 --epochs 5 --lr 0.05 --schedule cosine \
	--adv pgd --adv-eps 0.1 --adv-alpha 0.025 --adv-steps 5 \
	--eval-attack pgd --eps 0.1 --steps 10 --alpha 0.025 --eval-n 500 --threads 2 --seed 1 \
	-o "$OUT/fmnist_robust.onnx" --json "$OUT/train_robust.json"
rm -f "$OUT/init.onnx"
