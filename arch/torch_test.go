package arch

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/semirobust/srtool/npy"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
)

var ortOnce struct {
	sync.Once
	err error
}

// needORT skips the test in a build without cgo; a cgo build without a
// loadable ONNX Runtime library fails (make test fetches it first).
func needORT(t *testing.T) {
	t.Helper()
	ortOnce.Do(func() { ortOnce.err = ort.Init("") })
	if errors.Is(ortOnce.err, ort.ErrUnavailable) {
		t.Skipf("built without cgo: %v", ortOnce.err)
	}
	if ortOnce.err != nil {
		t.Fatalf("ONNX Runtime unavailable (run `make ort`): %v", ortOnce.err)
	}
}

// TestMatchesPyTorch loads the state_dict of each small PyTorch model written
// by testdata/gen.py (with its mu/sigma normalisation buffers where it has
// them) into the model Build returns for the same configuration
// and compares ONNX Runtime's logits with PyTorch's eval-mode logits.
func TestMatchesPyTorch(t *testing.T) {
	files, err := filepath.Glob("testdata/*.npz")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/*.npz (%v); run testdata/gen.py", err)
	}
	needORT(t)
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".npz"), func(t *testing.T) {
			arrays, err := npy.ReadNPZ(path)
			if err != nil {
				t.Fatal(err)
			}
			var meta struct {
				Arch    string    `json:"arch"`
				In      [3]int    `json:"in"`
				Classes int       `json:"classes"`
				Width   int       `json:"width"`
				Mean    []float32 `json:"mean"`
				Std     []float32 `json:"std"`
			}
			if err := json.Unmarshal(arrays["meta"].Data, &meta); err != nil {
				t.Fatalf("meta: %v", err)
			}
			xu8 := arrays["x_u8"]
			x := make([]float32, len(xu8.Data))
			for i, k := range xu8.Data {
				x[i] = float32(k) / 255
			}
			cfg := Config{In: meta.In, Classes: meta.Classes, Width: meta.Width, Seed: 1}
			if meta.Mean != nil {
				cfg.Normalize = &Normalization{Mean: meta.Mean, Std: meta.Std}
			}
			compareWithTorch(t, meta.Arch, cfg, arrays, x, xu8.Shape)
		})
	}
}

// TestMatchesRepoFixtures does the same with the trained-BN models of the
// repository's testdata/models (made by testdata/gen_models.py from
// scripts/torch_models.py): resnet10_cifar is kuangliu's [1,1,1,1] ResNet at
// width 8, wrn16_1 RobustBench's WRN-16-1 at base width 8.
func TestMatchesRepoFixtures(t *testing.T) {
	needORT(t)
	for _, c := range []struct{ golden, arch string }{
		{"resnet10_cifar", "resnet-small"},
		{"wrn16_1", "wrn-16-1"},
	} {
		t.Run(c.golden, func(t *testing.T) {
			arrays, err := npy.ReadNPZ(filepath.Join("..", "testdata", "models", c.golden+"_golden.npz"))
			if err != nil {
				t.Fatalf("repository fixture unavailable: %v", err)
			}
			compareWithTorch(t, c.arch, Config{Width: 8}, arrays, arrays["x"].Float32(), arrays["x"].Shape)
		})
	}
}

// compareWithTorch builds arch with cfg, replaces every initializer by
// arrays["param/<name>"] (which must cover them exactly), runs x through ONNX
// Runtime and compares with arrays["logits"].
func compareWithTorch(t *testing.T, arch string, cfg Config, arrays map[string]*npy.Array, x []float32, xShape []int) {
	t.Helper()
	m, err := Build(arch, cfg)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var missing []string
	for _, init := range m.Graph().GetInitializer() {
		a, ok := arrays["param/"+init.GetName()]
		if !ok {
			missing = append(missing, init.GetName())
			continue
		}
		seen["param/"+init.GetName()] = true
		if !equalDims(a.Shape, init.GetDims()) {
			t.Errorf("%s: PyTorch shape %v, ONNX %v", init.GetName(), a.Shape, init.GetDims())
			continue
		}
		if err := onnxio.SetFloat32s(init, a.Float32()); err != nil {
			t.Fatal(err)
		}
	}
	var extra []string
	for k := range arrays {
		if strings.HasPrefix(k, "param/") && !seen[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	if len(missing)+len(extra) > 0 {
		t.Fatalf("initializers without a PyTorch value: %v; PyTorch tensors without an initializer: %v", missing, extra)
	}

	shape := make([]int64, len(xShape))
	for i, d := range xShape {
		shape[i] = int64(d)
	}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewSession(b, ort.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Run(context.Background(), map[string]ort.Tensor{"input": {Shape: shape, Float32: x}}, []string{"logits"})
	if err != nil {
		t.Fatal(err)
	}
	got, want := out["logits"], arrays["logits"]
	if !equalDims(want.Shape, got.Shape) {
		t.Fatalf("logits shape %v; want %v (PyTorch)", got.Shape, want.Shape)
	}
	var maxDiff, maxAbs float64
	for i, w := range want.Float32() {
		maxDiff = max(maxDiff, math.Abs(float64(got.Float32[i])-float64(w)))
		maxAbs = max(maxAbs, math.Abs(float64(w)))
	}
	t.Logf("max |ORT − PyTorch| = %.3g over logits up to %.3g", maxDiff, maxAbs)
	if maxDiff > 1e-4 || maxAbs < 1e-3 {
		t.Errorf("max |ORT − PyTorch| = %.3g over logits up to %.3g; want ≤ 1e-4 (torch 1.13 reference)", maxDiff, maxAbs)
	}
}

func equalDims(a []int, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if int64(a[i]) != b[i] {
			return false
		}
	}
	return true
}
