//go:build cgo

package semirobust

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/checkpoint"
	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/diffmodel"
	"github.com/semirobust/srtool/hessian"
	"github.com/semirobust/srtool/npy"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
)

const (
	demoRobust    = "../testdata/demo/fmnist_robust.onnx"
	demoNormal    = "../testdata/demo/fmnist_normal.onnx"
	demoTest      = "npz:../testdata/demo/fmnist_test_1000.npz"
	hessianGolden = "../testdata/hessian/fmnist_robust_hvp.npz"
)

// hessianFixture is the setting of testdata/gen_hessian.py: f* of the demo,
// BN in eval mode, the first 64 test images, the tail of 4 weight layers.
type hessianFixture struct {
	golden    map[string]*npy.Array
	part      analyzer.Partition
	values    map[string][]float32
	x         []float32
	y         []int64
	dim       int
	tail, all flatParams
}

func loadHessianFixture(t *testing.T) *hessianFixture {
	t.Helper()
	g, err := npy.ReadNPZ(hessianGolden)
	if err != nil {
		t.Fatal(err)
	}
	m, err := onnxio.Read(demoRobust)
	if err != nil {
		t.Fatal(err)
	}
	an, err := analyzer.Analyze(m)
	if err != nil {
		t.Fatal(err)
	}
	cut, err := an.CutTail(4)
	if err != nil {
		t.Fatal(err)
	}
	f := &hessianFixture{golden: g, part: an.Partition(cut), values: map[string][]float32{}}
	ts, err := checkpoint.Export(m)
	if err != nil {
		t.Fatal(err)
	}
	for n, tt := range ts {
		if f.values[n], err = tt.Float32s(); err != nil {
			t.Fatal(err)
		}
	}
	d, err := dataset.Load(demoTest, dataset.Options{N: 64})
	if err != nil {
		t.Fatal(err)
	}
	f.x, f.y, f.dim = d.X, d.Y, d.C*d.H*d.W
	// The script orders each group's parameters by name.
	tail := slices.Sorted(slices.Values(f.part.TailParams))
	all := slices.Sorted(slices.Values(append(slices.Clone(f.part.HeadParams), f.part.TailParams...)))
	if f.tail, err = newFlatParams(tail, f.values); err != nil {
		t.Fatal(err)
	}
	if f.all, err = newFlatParams(all, f.values); err != nil {
		t.Fatal(err)
	}
	for _, grp := range []struct {
		prefix string
		names  []string
	}{{"hv_tail/", tail}, {"hv_all/", all}} {
		var keys []string
		for k := range g {
			if name, ok := strings.CutPrefix(k, grp.prefix); ok {
				keys = append(keys, name)
			}
		}
		slices.Sort(keys)
		if !slices.Equal(keys, grp.names) {
			t.Fatalf("%s parameters of the fixture %v; srtool's partition has %v", grp.prefix, keys, grp.names)
		}
	}
	return f
}

// gradient returns the finite-difference operator of one parameter group at
// f*, with the default step, on the gate-frozen model (or f* itself).
func (f *hessianFixture) gradient(t *testing.T, fp flatParams, frozen bool) (*hessian.FiniteDiff, func()) {
	t.Helper()
	m, err := onnxio.Read(demoRobust)
	if err != nil {
		t.Fatal(err)
	}
	if frozen {
		if m, _, err = hessian.FreezeGates(m); err != nil {
			t.Fatal(err)
		}
	}
	tr, _, _, err := diffmodel.NewTrainer(m, ort.Options{}, diffmodel.TrainerOptions{Trainable: fp.names})
	if err != nil {
		t.Fatal(err)
	}
	return &hessian.FiniteDiff{Grad: trainerGradient(tr, fp, f.x, f.y, f.dim, 64), W: fp.flatten(f.values)}, func() { tr.Close() }
}

// hv is PyTorch's H v of a group, laid out as fp.
func (f *hessianFixture) hv(group string, fp flatParams) []float32 {
	var out []float32
	for _, n := range fp.names {
		out = append(out, f.golden["hv_"+group+"/"+n].Float32()...)
	}
	return out
}

// direction is the script's v: sin(2.399963 i + 0.3) over the group.
func direction(n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = math.Sin(2.399963*float64(i) + 0.3)
	}
	return v
}

func relErr64(got []float64, want []float32) float64 {
	var num, den float64
	for i, w := range want {
		d := got[i] - float64(w)
		num += d * d
		den += float64(w) * float64(w)
	}
	return math.Sqrt(num / den)
}

// TestHessianStepSweep prints the finite-difference error against PyTorch's
// double backward over a range of steps, plain and extrapolated, with the
// ReLU gates frozen and live (SRTOOL_HESSIAN_SWEEP=1; slow). It is how
// hessian.DefaultStep was chosen; cmd/srtool's TestBoundCommand checks
// hessian.DefaultLossChange through λmax.
func TestHessianStepSweep(t *testing.T) {
	if os.Getenv("SRTOOL_HESSIAN_SWEEP") == "" {
		t.Skip("set SRTOOL_HESSIAN_SWEEP=1 to sweep the finite-difference step")
	}
	f := loadHessianFixture(t)
	for _, grp := range []struct {
		name string
		fp   flatParams
	}{{"tail", f.tail}, {"all", f.all}} {
		want := f.hv(grp.name, grp.fp)
		for _, frozen := range []bool{true, false} {
			fd, done := f.gradient(t, grp.fp, frozen)
			for _, rich := range []bool{false, true} {
				for _, step := range []float64{3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5} {
					// A fresh operator with no bound on the step.
					fd := &hessian.FiniteDiff{Grad: fd.Grad, W: fd.W, Step: step, Richardson: rich, LossChange: 1e9}
					hv, err := fd.Product(context.Background(), direction(grp.fp.dim))
					if err != nil {
						t.Fatal(err)
					}
					fmt.Printf("%s frozen gates %v Richardson %v step %.0e: relative L2 error %.3g\n", grp.name, frozen, rich, step, relErr64(hv, want))
				}
			}
			done()
		}
	}
}

// TestBoundHVPMatchesPyTorch compares srtool's Hessian-vector products
// (finite differences of gradients on the gate-frozen model, the defaults of
// srtool bound) with PyTorch's double backward in float64
// (testdata/gen_hessian.py), for the tail block and for all parameters.
func TestBoundHVPMatchesPyTorch(t *testing.T) {
	f := loadHessianFixture(t)
	for _, grp := range []struct {
		name string
		fp   flatParams
	}{{"tail", f.tail}, {"all", f.all}} {
		want := f.hv(grp.name, grp.fp)
		fd, done := f.gradient(t, grp.fp, true)
		hv, err := fd.Product(context.Background(), direction(grp.fp.dim))
		done()
		if err != nil {
			t.Fatal(err)
		}
		if e := relErr64(hv, want); e > 1e-3 {
			t.Errorf("H_%s v: relative L2 error %.2g vs PyTorch's double backward; want ≤ 1e-3", grp.name, e)
		} else {
			t.Logf("H_%s v: relative L2 error %.2g vs PyTorch's double backward", grp.name, e)
		}
	}
	// Without frozen gates the central difference counts the ReLUs that flip
	// between w − hv and w + hv, and is off by far more than its step.
	fd, done := f.gradient(t, f.tail, false)
	defer done()
	fd.LossChange = 1e9 // the default step, unshortened
	hv, err := fd.Product(context.Background(), direction(f.tail.dim))
	if err != nil {
		t.Fatal(err)
	}
	if e := relErr64(hv, f.hv("tail", f.tail)); e < 0.1 {
		t.Errorf("live gates: relative error %.2g; the test expected the ReLU flips to show (> 0.1)", e)
	}
}
