# srtool build, test and benchmark entry points. See DESIGN.md "Setup, tests, CI".
#
# ONNX Runtime 1.30 (CPU build) is fetched once into the per-user cache by
# scripts/fetch_ort.sh; ONNXRUNTIME_SHARED_LIBRARY_PATH, when set, wins (point
# it at the GPU build's libonnxruntime.so.1 for --device cuda).

GO ?= go
# The library tests and benchmarks run on: the variable if set, else the cache.
ORT_LIB := $(or $(ONNXRUNTIME_SHARED_LIBRARY_PATH),$(shell scripts/fetch_ort.sh --print-path))
ORT_ENV := ONNXRUNTIME_SHARED_LIBRARY_PATH=$(ORT_LIB)

.PHONY: all ort build test bench demo

all: ort build

# Fetch and verify ONNX Runtime unless the cache (or the variable) already has it.
ort:
	scripts/fetch_ort.sh

build:
	$(GO) build -o bin/srtool ./cmd/srtool

test: ort
	$(GO) vet ./...
	$(ORT_ENV) $(GO) test ./...
	CGO_ENABLED=0 $(GO) build ./...
	CGO_ENABLED=0 $(GO) test ./ort/

# Benchmarks; ort's BenchmarkForward needs SRTOOL_BENCH_MODEL=path/to/model.onnx
# (and optionally SRTOOL_BENCH_THREADS, default 2).
bench: ort
	$(ORT_ENV) $(GO) test -run '^$$' -bench . -benchmem ./...

# The main job on the small models and data shipped in testdata/demo: a
# normally trained (f) and a PGD-trained (f*) Fashion-MNIST ResNet made by
# scripts/train_demo_models.sh, 3000 training and 1000 test images
# (scripts/make_demo_data.py). Layers, a split, clean and robust accuracy,
# then the paper's experiment (Algorithm 1 with K = 4, ε = 0.1) into demo-out/.
DEMO      := testdata/demo
DEMO_OUT  ?= demo-out
DEMO_ARGS := --eps 0.1 --steps 10 --alpha 0.025 --threads 2 --seed 1
demo: ort build
	bin/srtool layers $(DEMO)/fmnist_robust.onnx
	bin/srtool split $(DEMO)/fmnist_robust.onnx --fb-layers 4 -o $(DEMO_OUT)/split
	bin/srtool eval $(DEMO)/fmnist_normal.onnx --data npz:$(DEMO)/fmnist_test_1000.npz
	bin/srtool attack $(DEMO)/fmnist_robust.onnx --data npz:$(DEMO)/fmnist_test_1000.npz --n 500 \
		--attack fgsm,pgd $(DEMO_ARGS) --json $(DEMO_OUT)/attack.json
	bin/srtool semirobust --normal $(DEMO)/fmnist_normal.onnx --robust $(DEMO)/fmnist_robust.onnx \
		--data npz:$(DEMO)/fmnist_train_3000.npz --eval-data npz:$(DEMO)/fmnist_test_1000.npz --eval-n 500 --rho-n 500 \
		--attacks pgd --fb-layers 4 --epochs 10 --adv pgd --adv-eps 0.1 --adv-alpha 0.025 --adv-steps 5 \
		$(DEMO_ARGS) -o $(DEMO_OUT)/run --json $(DEMO_OUT)/semirobust.json
	@echo "demo report: $(DEMO_OUT)/run/report.md"
