# srtool build, test and benchmark entry points. See README.md, "Install" and "Development".
#
# ONNX Runtime 1.30 (CPU build) is fetched once into the per-user cache by
# scripts/fetch_ort.sh; ONNXRUNTIME_SHARED_LIBRARY_PATH, when set, wins (point
# it at the GPU build's libonnxruntime.so.1 for --device cuda).

GO ?= go
# The library tests and benchmarks run on: the variable if set, else the cache.
ORT_LIB := $(or $(ONNXRUNTIME_SHARED_LIBRARY_PATH),$(shell scripts/fetch_ort.sh --print-path))
ORT_ENV := ONNXRUNTIME_SHARED_LIBRARY_PATH=$(ORT_LIB)

.PHONY: all ort build test test-golden test-cluster bench fuzz demo

all: ort build

# Fetch and verify ONNX Runtime unless the cache (or the variable) already has it.
ort:
	scripts/fetch_ort.sh

# The version every JSON report records (run.version): the commit, "-dirty"
# when the tree has changes.
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo devel)

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/srtool ./cmd/srtool

test: ort
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	@outside=$$(git grep -nE '(\.\./shared|/work/shared)/' -- ':!.ci' ':!Makefile' 2>/dev/null || true); \
		if [ -n "$$outside" ]; then echo "the repository reads paths outside it:"; echo "$$outside"; exit 1; fi
	$(GO) vet ./...
	$(ORT_ENV) $(GO) test -timeout 30m ./...
	CGO_ENABLED=0 $(GO) build ./...
	CGO_ENABLED=0 $(GO) test ./ort/

# Results must not move when code is reorganised: a fixed set of commands with
# fixed seeds (make demo's job, eval, attack, mi, finetune, train, bound, a
# semirobust sweep) compared with the reports saved in testdata/golden
# (scripts/golden_reports.sh; --update rewrites them when a change of results
# is intended and explained).
test-golden: ort build
	$(ORT_ENV) scripts/golden_reports.sh

# Sharded runs on a real one-node Slurm (installs slurm-wlm and munge when
# missing; needs root): array jobs with --shard auto, a merge job with
# --dependency=afterok, merged reports compared with unsharded runs.
test-cluster: ort build
	$(ORT_ENV) scripts/slurm_e2e.sh

# Benchmarks; ort's BenchmarkForward needs SRTOOL_BENCH_MODEL=path/to/model.onnx
# (and optionally SRTOOL_BENCH_THREADS, default 2).
bench: ort
	$(ORT_ENV) $(GO) test -run '^$$' -bench . -benchmem ./...

# Every Go fuzz target of the module, found by scripts/fuzz.sh (go test -list
# '^Fuzz' in each package), one after another for FUZZTIME each, with the
# executions, new inputs and crashers per target: make fuzz FUZZTIME=5m.
FUZZTIME ?= 30s
fuzz: ort
	$(ORT_ENV) FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

# The main job on the small models and data shipped in testdata/demo: a
# normally trained (f) and a PGD-trained (f*) Fashion-MNIST ResNet made by
# scripts/train_demo_models.sh, 3000 training and 1000 test images
# (scripts/make_demo_data.py). Layers, a split, clean and robust accuracy,
# then the paper's experiment (Algorithm 1 with K = 4, ε = 0.1) into demo-out/.
DEMO_OUT  ?= demo-out
demo: ort build
	bin/srtool demo --dir testdata/demo -o $(DEMO_OUT)
