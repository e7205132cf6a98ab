#!/usr/bin/env bash
# Results must not move when the code is reorganised (issue 13): this script
# runs a fixed set of srtool commands with fixed seeds on the shipped demo
# models and data, and compares every JSON report (times, speeds, memory, the
# version and the run fingerprint that hashes it are dropped by
# scripts/reportdiff) and every array, model or
# per-sample file byte for byte with the reports saved in testdata/golden.
#
#   scripts/golden_reports.sh            compare (exit 1 on any difference)
#   scripts/golden_reports.sh --update   rewrite testdata/golden from this tree
#
# Needs bin/srtool (make build) and ONNXRUNTIME_SHARED_LIBRARY_PATH; `make
# test-golden` provides both. Runs in about a minute and a half on 2 cores.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
golden="$repo/testdata/golden"
update=false
[ "${1:-}" = "--update" ] && update=true
bin="$repo/bin/srtool"
[ -x "$bin" ] || { echo "golden: $bin missing; run make build" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
ln -s "$repo/testdata" testdata
demo=testdata/demo
test="npz:$demo/fmnist_test_1000.npz"
train="npz:$demo/fmnist_train_3000.npz"
mkdir -p out
(cd "$repo" && go build -o "$work/reportdiff" ./scripts/reportdiff)
run() { echo "golden: srtool $*" >&2; "$bin" "$@" >/dev/null 2>out/last.err || { cat out/last.err >&2; echo "golden: srtool $1 failed" >&2; exit 1; }; }

# make demo's whole job (its reports: attack.json, semirobust.json, run/report.json).
run demo --dir "$demo" -o out/demo --epochs 3
run eval "$demo/fmnist_robust.onnx" --data "$test" --n 300 --threads 2 --json out/eval.json --save-logits out/eval_logits.npy
run attack "$demo/fmnist_robust.onnx" --data "$test" --n 24 --threads 2 --seed 7 --eps 0.1 \
	--attack fgsm,pgd,apgd-ce,apgd-t,fab-t,square --steps 10 \
	--json out/attack.json --per-sample out/attack.jsonl --save-adv out/attack_adv.npy
run attack "$demo/fmnist_robust.onnx" --data "$test" --n 24 --threads 2 --seed 7 --eps 0.1 \
	--attack fgsm,pgd --convention adv-acc --json out/attack_advacc.json
run mi "$demo/fmnist_robust.onnx" --data "$test" --n 400 --threads 2 --seed 3 --fb-layers 3 --json out/mi_model.json
run mi -x testdata/fixtures/edge/case0_x.npy -y testdata/fixtures/edge/case0_y.npy --seed 3 --json out/mi_arrays.json
run finetune "$demo/fmnist_robust.onnx" --tail-from "$demo/fmnist_normal.onnx" --fb-layers 3 \
	--data "$train" --n 512 --eval-data "$test" --eval-n 200 --threads 2 --seed 5 \
	--epochs 2 --target 100 --adv pgd --adv-eps 0.1 --adv-steps 3 --eval-attack pgd --eps 0.1 --steps 5 \
	--rho-every-epoch --rho-n 300 -o out/finetuned.onnx --json out/finetune.json
run train "$demo/fmnist_normal.onnx" --data "$train" --n 512 --eval-data "$test" --eval-n 200 --threads 2 --seed 5 \
	--epochs 1 --eval-attack none -o out/trained.onnx --json out/train.json
run bound --robust "$demo/fmnist_robust.onnx" --finetuned out/finetuned.onnx --fb-layers 3 \
	--data "$test" --n 128 --threads 2 --seed 2 --max-iter 20 --json out/bound.json
run semirobust --normal "$demo/fmnist_normal.onnx" --robust "$demo/fmnist_robust.onnx" \
	--data "$train" --n 600 --eval-data "$test" --eval-n 300 --rho-n 300 --attacks pgd --fb-layers 2-3 --trials 2 \
	--epochs 2 --adv pgd --adv-eps 0.1 --adv-steps 3 --eps 0.1 --steps 5 --threads 2 --seed 4 \
	--dependence edge,corr,sensitivity --untrained-fb -o out/sweep --json out/sweep.json

reports=(demo/attack.json demo/semirobust.json demo/run/report.json eval.json attack.json attack_advacc.json
	mi_model.json mi_arrays.json finetune.json train.json bound.json sweep.json)
binaries=(eval_logits.npy attack.jsonl attack_adv.npy finetuned.onnx trained.onnx
	sweep/semirobust_pgd_K2.onnx sweep/semirobust_pgd_K3.onnx demo/run/semirobust_pgd_K4.onnx)

if $update; then
	rm -rf "$golden" && mkdir -p "$golden"
	for r in "${reports[@]}"; do
		"$work/reportdiff" -normalize "out/$r" >"$golden/$(echo "$r" | tr / _)"
	done
	(cd out && sha256sum "${binaries[@]}") >"$golden/SHA256SUMS"
	echo "golden: wrote $golden" >&2
	exit 0
fi
status=0
for r in "${reports[@]}"; do
	"$work/reportdiff" "$golden/$(echo "$r" | tr / _)" "out/$r" || status=1
done
(cd out && sha256sum --quiet -c "$golden/SHA256SUMS") || status=1
[ $status = 0 ] && echo "golden: every report and file is identical to testdata/golden" >&2
exit $status
