#!/usr/bin/env bash
# The Fashion-MNIST semirobustness experiment of EXPERIMENTS.md: the shipped
# f and f* (scripts/train_demo_models.sh), fine-tuned on 4000 real training
# images from Debian's dataset-fashion-mnist, evaluated on the first 1000 test
# images, for A ∈ {clean, FGSM, PGD-10} and K ∈ {4, 12}, ε = 0.1.
#
#   scripts/run_experiment.sh [OUTDIR]     # default experiments/fmnist
set -euo pipefail
OUT=${1:-experiments/fmnist}
bin/srtool semirobust --normal testdata/demo/fmnist_normal.onnx --robust testdata/demo/fmnist_robust.onnx \
	--data fashion-mnist:/usr/share/datasets/fashion-mnist --n 4000 --eval-n 1000 --rho-n 1000 \
	--attacks none,fgsm,pgd --fb-layers 4,12 --epochs 8 --adv pgd --adv-eps 0.1 --adv-alpha 0.025 --adv-steps 5 \
	--eps 0.1 --steps 10 --alpha 0.025 --threads 2 --seed 1 -o "$OUT" --json "$OUT/semirobust.json"
