package runs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/internal/option"
)

// The demo's Fashion-MNIST model and test data (testdata/demo/README.md).
var (
	demoModel = filepath.Join("..", "testdata", "demo", "fmnist_robust.onnx")
	demoData  = "npz:" + filepath.Join("..", "testdata", "demo", "fmnist_test_1000.npz")
)

func TestLoadModelNormalization(t *testing.T) {
	plain, err := LoadModel(demoModel, "", "")
	if err != nil {
		t.Fatal(err)
	}
	norm, err := LoadModel(demoModel, "0.5", "1/4")
	if err != nil {
		t.Fatal(err)
	}
	if len(norm.Graph().Node) <= len(plain.Graph().Node) {
		t.Errorf("--mean/--std added no node: %d nodes, %d without", len(norm.Graph().Node), len(plain.Graph().Node))
	}
	for _, tc := range []struct{ mean, std, want string }{
		{"x", "", `--mean: "x" is not a number`},
		{"", "1/0", `--std: "1/0" is not a number or fraction`},
	} {
		if _, err := LoadModel(demoModel, tc.mean, tc.std); err == nil || err.Error() != tc.want || !errors.Is(err, option.Err) {
			t.Errorf("LoadModel(mean %q, std %q) = %v; want %q wrapping option.Err", tc.mean, tc.std, err, tc.want)
		}
	}
	if _, err := LoadModel("nowhere.onnx", "x", ""); err == nil || errors.Is(err, option.Err) {
		t.Errorf("a missing model: %v; want a read error, not an option error", err)
	}
}

func TestCheckThreads(t *testing.T) {
	if err := CheckThreads(0); err != nil {
		t.Errorf("CheckThreads(0) = %v", err)
	}
	if err := CheckThreads(-1); err == nil || !strings.HasPrefix(err.Error(), "--threads -1 is outside 0..") || !errors.Is(err, option.Err) {
		t.Errorf("CheckThreads(-1) = %v; want an option error", err)
	}
}

func TestCheckModelData(t *testing.T) {
	m, err := LoadModel(demoModel, "", "")
	if err != nil {
		t.Fatal(err)
	}
	d, err := dataset.Load(demoData, dataset.Options{Split: "test", N: 8})
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckModelData(m, demoModel, d); err != nil {
		t.Errorf("CheckModelData: %v", err)
	}
	d.Y[0] = 10 // Fashion-MNIST has classes 0..9
	if err := CheckModelData(m, demoModel, d); err == nil {
		t.Error("CheckModelData accepts a label outside the classes")
	}
}

func TestWriteTrained(t *testing.T) {
	m, err := LoadModel(demoModel, "0.5", "0.25")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out, st := filepath.Join(dir, "m.onnx"), filepath.Join(dir, "m.safetensors")
	path, digests, err := WriteTrained(m, out, st, demoModel, false)
	if err != nil || path != out+PartialSuffix || len(digests) != 2 {
		t.Fatalf("unfinished: %q, %v, %v; want %s and two digests", path, digests, err, out+PartialSuffix)
	}
	path, digests, err = WriteTrained(m, out, "", demoModel, true)
	if err != nil || path != out || len(digests) != 1 {
		t.Fatalf("finished: %q, %v, %v; want %s and one digest", path, digests, err, out)
	}
	if _, err := os.Stat(out + PartialSuffix); !os.IsNotExist(err) {
		t.Errorf("a finished run left %s (%v)", out+PartialSuffix, err)
	}
	back, err := LoadModel(out, "", "")
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := LoadModel(demoModel, "", "")
	if len(back.Graph().Node) != len(plain.Graph().Node) {
		t.Errorf("written model has %d nodes; want %d (the normalisation stripped)", len(back.Graph().Node), len(plain.Graph().Node))
	}
}

func TestModelSHA256(t *testing.T) {
	m, err := LoadModel(demoModel, "", "")
	if err != nil {
		t.Fatal(err)
	}
	a, err := ModelSHA256(m)
	if err != nil || len(a) != 64 {
		t.Fatalf("ModelSHA256 = %q, %v; want 64 hex digits", a, err)
	}
	n, _ := LoadModel(demoModel, "0.5", "0.5")
	if b, _ := ModelSHA256(n); b == a {
		t.Error("the normalised model has the plain model's digest")
	}
}
