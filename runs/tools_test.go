package runs

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/semirobust/srtool/arch"
	"github.com/semirobust/srtool/checkpoint"
	"github.com/semirobust/srtool/estimators"
)

// TestInitLayersSplit: a fresh ResNet is written, listed and split; the
// reports agree with each other and name the files written.
func TestInitLayersSplit(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "m.onnx")
	var w bytes.Buffer
	ir, err := Init(InitOptions{Arch: "resnet-small", Config: arch.Config{In: [3]int{1, 8, 8}, Classes: 3, Width: 4, Seed: 1}, Out: model, JSON: filepath.Join(dir, "init.json")}, &w)
	if err != nil {
		t.Fatal(err)
	}
	lr, err := Layers(context.Background(), LayersOptions{Model: model}, &w)
	if err != nil {
		t.Fatal(err)
	}
	if len(lr.Layers) != ir.Layers || lr.Params != ir.Params || len(lr.Cuts) != ir.Layers-1 {
		t.Errorf("layers: %d layers, %d params, %d cuts; init said %d layers, %d params", len(lr.Layers), lr.Params, len(lr.Cuts), ir.Layers, ir.Params)
	}
	sr, err := Split(context.Background(), SplitOptions{Model: model, FbLayers: 2, OutDir: filepath.Join(dir, "split")}, &w)
	if err != nil {
		t.Fatal(err)
	}
	if sr.At != ir.Layers-2 || sr.FbLayers != 2 || len(sr.SHA256) != 2 || len(sr.Cut) == 0 {
		t.Errorf("split: at %d, fb %d, %d digests, cut %v; want at %d, fb 2, 2 digests", sr.At, sr.FbLayers, len(sr.SHA256), sr.Cut, ir.Layers-2)
	}
	for _, p := range []string{sr.Head, sr.Tail} {
		if _, err := os.Stat(p); err != nil {
			t.Error(err)
		}
	}
	if !strings.Contains(w.String(), "cut tensors:") {
		t.Errorf("output %q", w.String())
	}
}

// TestWeightsRoundTrip: export then import into another initialisation
// loads every tensor.
func TestWeightsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.onnx"), filepath.Join(dir, "b.onnx")
	cfg := arch.Config{In: [3]int{1, 8, 8}, Classes: 3, Width: 4, Seed: 1}
	var w bytes.Buffer
	if _, err := Init(InitOptions{Arch: "resnet-small", Config: cfg, Out: a}, &w); err != nil {
		t.Fatal(err)
	}
	cfg.Seed = 2
	if _, err := Init(InitOptions{Arch: "resnet-small", Config: cfg, Out: b}, &w); err != nil {
		t.Fatal(err)
	}
	st := filepath.Join(dir, "a.safetensors")
	er, err := WeightsExport(a, WeightsOptions{Out: st}, &w)
	if err != nil {
		t.Fatal(err)
	}
	ir, err := WeightsImport(b, WeightsOptions{From: st, Out: filepath.Join(dir, "c.onnx"), Import: checkpoint.ImportOptions{}}, &w)
	if err != nil {
		t.Fatal(err)
	}
	if len(ir.Loaded) != len(er.Tensors) || len(ir.Ignored) != 0 {
		t.Errorf("imported %d of %d tensors, ignored %v", len(ir.Loaded), len(er.Tensors), ir.Ignored)
	}
}

// TestMIArraysAuthorsEDGE: MIArrays reproduces the authors' EDGE on the
// fixtures (testdata/fixtures/edge, made by the script next to them).
func TestMIArraysAuthorsEDGE(t *testing.T) {
	const dir = "../testdata/fixtures/edge"
	var cases struct {
		Cases []struct {
			Case int     `json:"case"`
			Ref  float64 `json:"edge_reference_bits"`
		} `json:"cases"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	est, err := estimators.New("edge", []byte(`{"RNG":"reference","Deterministic":true}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases.Cases[:2] {
		x := filepath.Join(dir, "case"+string(rune('0'+c.Case))+"_x.npy")
		rep, err := MIArrays(context.Background(), MIArrayOptions{Estimator: est, Units: "bits", X: x, Y: strings.Replace(x, "_x", "_y", 1)}, &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(rep.MI-c.Ref) > 1e-6 {
			t.Errorf("case %d: MI = %.9f bits; want %.9f (authors' EDGE)", c.Case, rep.MI, c.Ref)
		}
	}
	_, err = MIArrays(context.Background(), MIArrayOptions{Estimator: est, X: filepath.Join(dir, "case0_x.npy"), Y: filepath.Join(dir, "case2_y.npy")}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "rows") {
		t.Errorf("mismatched rows: %v", err)
	}
}
