package zoo

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/semirobust/srtool/arch"
	"github.com/semirobust/srtool/checkpoint"
	"github.com/semirobust/srtool/npy"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
)

// fixtures is testdata/zoo, written by testdata/gen_zoo.py (torch 1.13).
const fixtures = "../testdata/zoo"

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

// fixture is one case of testdata/gen_zoo.py.
type fixture struct {
	ID         string    `json:"id"`
	Width      int       `json:"width"`
	Checkpoint string    `json:"checkpoint"`
	Tensors    int       `json:"tensors"`
	SubBlock1  int       `json:"sub_block1"`
	Mean       []float32 `json:"mean"`
	Std        []float32 `json:"std"`

	x       []float32 // x_u8 / 255
	xShape  []int64
	logits  []float32
	tensors map[string]checkpoint.Tensor
}

func loadFixture(t *testing.T, name string) *fixture {
	t.Helper()
	arrays, err := npy.ReadNPZ(filepath.Join(fixtures, name+".npz"))
	if err != nil {
		t.Fatalf("fixture %s (run testdata/gen_zoo.py): %v", name, err)
	}
	f := &fixture{}
	if err := json.Unmarshal(arrays["meta"].Data, f); err != nil {
		t.Fatalf("%s meta: %v", name, err)
	}
	xu8 := arrays["x_u8"]
	f.x = make([]float32, len(xu8.Data))
	for i, k := range xu8.Data {
		f.x[i] = float32(k) / 255
	}
	for _, d := range xu8.Shape {
		f.xShape = append(f.xShape, int64(d))
	}
	f.logits = arrays["logits"].Float32()
	if f.tensors, err = checkpoint.Read(filepath.Join(fixtures, name+".pt")); err != nil {
		t.Fatal(err)
	}
	return f
}

// run returns the model's logits on x.
func run(t *testing.T, m *onnxio.Model, x []float32, shape []int64) []float32 {
	t.Helper()
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
	return out["logits"].Float32
}

// relErr is ‖a − b‖₂ / ‖b‖₂ and the largest |a − b|.
func relErr(a, b []float32) (rel, maxAbs float64) {
	var num, den float64
	for i := range b {
		d := float64(a[i]) - float64(b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
		maxAbs = max(maxAbs, math.Abs(d))
	}
	return math.Sqrt(num / math.Max(den, 1e-30)), maxAbs
}

var fixtureNames = []string{"carmon2019unlabeled", "wong2020fast", "rice2020overfitting_l2", "rice2020overfitting_c100", "modas2021prime_c100"}

// TestImportMatchesPyTorch imports each fixture by its zoo ID, with nothing
// but the base width the fixture was shrunk to, and compares ONNX Runtime's
// logits on [0,1] inputs with PyTorch's.
func TestImportMatchesPyTorch(t *testing.T) {
	needORT(t)
	wantNorm := map[string]string{ // normalisation source per fixture
		"wong2020fast":             FromCheckpoint,
		"rice2020overfitting_l2":   FromTable, // saved without mu/sigma
		"rice2020overfitting_c100": FromCheckpoint,
		"modas2021prime_c100":      FromCheckpoint,
	}
	for _, name := range fixtureNames {
		t.Run(name, func(t *testing.T) {
			f := loadFixture(t, name)
			e, err := Lookup(f.ID)
			if err != nil {
				t.Fatal(err)
			}
			m, rep, err := Import(e, f.tensors, Options{Width: f.Width})
			if err != nil {
				t.Fatal(err)
			}
			got := run(t, m, f.x, f.xShape)
			rel, maxAbs := relErr(got, f.logits)
			t.Logf("%s: relative error %.2g, max |ORT − PyTorch| %.2g over %d logits", f.ID, rel, maxAbs, len(got))
			if rel > 1e-4 {
				t.Errorf("%s: ‖ORT − PyTorch‖/‖PyTorch‖ = %.3g; want ≤ 1e-4 (torch 1.13 reference)", f.ID, rel)
			}
			if len(rep.Dropped) != f.SubBlock1 {
				t.Errorf("dropped %d tensors %v; want the %d sub_block1.* tensors", len(rep.Dropped), rep.Dropped, f.SubBlock1)
			}
			for _, k := range rep.Dropped {
				if !strings.HasPrefix(k, "sub_block1.") {
					t.Errorf("dropped %q, which is not a sub_block1 tensor", k)
				}
			}
			src := ""
			if rep.Normalization != nil {
				src = rep.Normalization.Source
			}
			if src != wantNorm[name] {
				t.Errorf("normalisation source %q; want %q", src, wantNorm[name])
			}
			if f.Mean != nil && (!slices.Equal(rep.Normalization.Mean, f.Mean) || !slices.Equal(rep.Normalization.Std, f.Std)) {
				t.Errorf("normalisation %v / %v; want the checkpoint's %v / %v", rep.Normalization.Mean, rep.Normalization.Std, f.Mean, f.Std)
			}
			// The checkpoint's values win over the table's, and the report says so.
			if differs := name == "modas2021prime_c100"; rep.Normalization.DiffersFromTable() != differs {
				t.Errorf("DiffersFromTable() = %v; want %v (table %v/%v)", rep.Normalization.DiffersFromTable(), differs, e.Normalization.Mean, e.Normalization.Std)
			}
			if rep.Config.Width != f.Width || rep.Config.Classes != e.Classes {
				t.Errorf("config %+v; want width %d, %d classes", rep.Config, f.Width, e.Classes)
			}
		})
	}
}

// TestCheckpointWithoutNormalization shows why the normalisation belongs in
// the graph: the same weights without it give different logits.
func TestCheckpointWithoutNormalization(t *testing.T) {
	needORT(t)
	f := loadFixture(t, "wong2020fast")
	e, err := Lookup(f.ID)
	if err != nil {
		t.Fatal(err)
	}
	plain := e
	plain.Normalization = nil
	sd := clone(f.tensors)
	delete(sd, "mu")
	delete(sd, "sigma")
	m, _, err := Import(plain, sd, Options{Width: f.Width})
	if err != nil {
		t.Fatal(err)
	}
	if rel, _ := relErr(run(t, m, f.x, f.xShape), f.logits); rel < 0.01 {
		t.Errorf("without mu/sigma the logits are within %.3g of PyTorch's; the fixture does not exercise the normalisation", rel)
	}
}

// TestFixedNormalization: Hendrycks2019Using's forward computes 2x − 1 with
// no buffers; srtool's (x − 0.5)/0.5 must be the same function.
func TestFixedNormalization(t *testing.T) {
	needORT(t)
	f := loadFixture(t, "carmon2019unlabeled")
	e, err := Lookup("cifar10/Linf/Hendrycks2019Using")
	if err != nil {
		t.Fatal(err)
	}
	m, rep, err := Import(e, f.tensors, Options{Width: f.Width})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Normalization == nil || rep.Normalization.Source != FromTable {
		t.Fatalf("normalisation %+v; want mean/std 0.5 from the table", rep.Normalization)
	}
	carmon, err := Lookup(f.ID)
	if err != nil {
		t.Fatal(err)
	}
	ref, _, err := Import(carmon, f.tensors, Options{Width: f.Width})
	if err != nil {
		t.Fatal(err)
	}
	x2 := make([]float32, len(f.x))
	for i, v := range f.x {
		x2[i] = 2*v - 1
	}
	got, want := run(t, m, f.x, f.xShape), run(t, ref, x2, f.xShape)
	if !slices.Equal(got, want) {
		rel, _ := relErr(got, want)
		t.Errorf("Hendrycks2019Using(x) differs from the same WRN on 2x − 1 (relative %.3g); want bit-equal", rel)
	}
	// mu/sigma in such a checkpoint have no place: refused.
	sd := clone(f.tensors)
	sd["mu"] = checkpoint.FromFloat32([]int64{1, 3, 1, 1}, []float32{0.5, 0.5, 0.5})
	sd["sigma"] = checkpoint.FromFloat32([]int64{1, 3, 1, 1}, []float32{0.5, 0.5, 0.5})
	_, _, err = Import(e, sd, Options{Width: f.Width})
	var mis *MismatchError
	if !errors.As(err, &mis) || !slices.Equal(mis.Unexpected, []string{"mu", "sigma"}) || len(mis.Missing)+len(mis.Shape) > 0 {
		t.Errorf("Hendrycks2019Using with mu/sigma: %v; want a mismatch listing exactly mu and sigma as unexpected", err)
	}
}

func clone(sd map[string]checkpoint.Tensor) map[string]checkpoint.Tensor {
	out := make(map[string]checkpoint.Tensor, len(sd))
	for k, v := range sd {
		out[k] = v
	}
	return out
}

// TestImportRefuses: a checkpoint that does not fit the ID is refused with
// the complete lists of differences, never loaded partly.
func TestImportRefuses(t *testing.T) {
	wong := loadFixture(t, "wong2020fast")
	carmon := loadFixture(t, "carmon2019unlabeled")
	rice := loadFixture(t, "rice2020overfitting_l2")
	without := func(sd map[string]checkpoint.Tensor, names ...string) map[string]checkpoint.Tensor {
		out := clone(sd)
		for _, n := range names {
			delete(out, n)
		}
		return out
	}
	with := func(sd map[string]checkpoint.Tensor, name string, t checkpoint.Tensor) map[string]checkpoint.Tensor {
		out := clone(sd)
		out[name] = t
		return out
	}
	cases := []struct {
		name    string
		id      string
		sd      map[string]checkpoint.Tensor
		width   int
		missing []string // exact lists, or nil to check only counts
		unexp   []string
		shape   int
		nMiss   int
		nUnexp  int
		msg     string // substring of the error
	}{
		{name: "PreAct checkpoint for the BN-before-FC id", id: "cifar10/L2/Rice2020Overfitting", sd: wong.tensors, width: 2,
			missing: []string{"bn.bias", "bn.running_mean", "bn.running_var", "bn.weight"},
			msg:     "checkpoint looks like preact-resnet18 at base width 2 with 10 classes, with mu/sigma"},
		{name: "BN-before-FC checkpoint for the PreAct id", id: "cifar10/Linf/Wong2020Fast", sd: rice.tensors, width: 2,
			unexp: []string{"bn.bias", "bn.running_mean", "bn.running_var", "bn.weight"}},
		{name: "WRN checkpoint for a PreAct id", id: "cifar10/Linf/Wong2020Fast", sd: carmon.tensors, width: 1,
			nMiss: 85, nUnexp: 170, msg: "looks like wrn-28-10 at base width 1 with 10 classes"},
		{name: "one tensor missing", id: "cifar10/Linf/Wong2020Fast", sd: without(wong.tensors, "layer3.0.shortcut.0.weight"), width: 2,
			missing: []string{"layer3.0.shortcut.0.weight"}},
		{name: "one tensor too many", id: "cifar10/Linf/Wong2020Fast", sd: with(wong.tensors, "extra.weight", checkpoint.FromFloat32([]int64{1}, []float32{1})), width: 2,
			unexp: []string{"extra.weight"}},
		{name: "wrong width", id: "cifar10/Linf/Wong2020Fast", sd: wong.tensors, width: 4, shape: 85,
			msg: "conv1.weight (checkpoint F32 [2 3 3 3] vs model [4 3 3 3])"},
		{name: "full-size id, shrunken checkpoint", id: "cifar10/Linf/Carmon2019Unlabeled", sd: carmon.tensors, width: 0, shape: 129,
			msg: "base width 16): 129 with a different shape"},
		{name: "CIFAR-10 checkpoint for the CIFAR-100 id", id: "cifar100/Linf/Rice2020Overfitting", sd: rice.tensors, width: 2, shape: 2,
			msg: "linear.weight (checkpoint F32 [10 16] vs model [100 16])"},
		{name: "mu/sigma on a model that does not normalise", id: "cifar10/Linf/Carmon2019Unlabeled",
			sd: with(with(carmon.tensors, "mu", wong.tensors["mu"]), "sigma", wong.tensors["sigma"]), width: 1,
			unexp: []string{"mu", "sigma"}, msg: "does not normalise its input"},
		{name: "only mu", id: "cifar10/Linf/Wong2020Fast", sd: without(wong.tensors, "sigma"), width: 2,
			missing: []string{"sigma"}, msg: "only one of the mu/sigma"},
		{name: "mu of the wrong shape", id: "cifar10/Linf/Wong2020Fast", sd: with(wong.tensors, "mu", checkpoint.FromFloat32([]int64{3}, []float32{0.5, 0.5, 0.5})), width: 2,
			shape: 1, msg: "mu (checkpoint F32 [3] vs model [1 3 1 1])"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, err := Lookup(c.id)
			if err != nil {
				t.Fatal(err)
			}
			m, rep, err := Import(e, c.sd, Options{Width: c.width})
			var mis *MismatchError
			if !errors.As(err, &mis) {
				t.Fatalf("Import = %v, %v, %v; want a *MismatchError", m != nil, rep, err)
			}
			if m != nil || rep != nil {
				t.Errorf("a refused import returned a model or report")
			}
			t.Logf("%v", err)
			if c.missing != nil && !slices.Equal(mis.Missing, c.missing) || c.missing == nil && len(mis.Missing) != c.nMiss {
				t.Errorf("missing %v; want %v (%d)", mis.Missing, c.missing, c.nMiss)
			}
			if c.unexp != nil && !slices.Equal(mis.Unexpected, c.unexp) || c.unexp == nil && len(mis.Unexpected) != c.nUnexp {
				t.Errorf("unexpected %v; want %v (%d)", mis.Unexpected, c.unexp, c.nUnexp)
			}
			if len(mis.Shape) != c.shape {
				t.Errorf("%d shape differences %v; want %d", len(mis.Shape), mis.Shape, c.shape)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q; want it to contain %q", err, c.msg)
			}
			if strings.Contains(err.Error(), "mu/sigma normalisation buffers") && c.sd["mu"].Shape == nil {
				t.Errorf("error %q claims mu/sigma buffers the checkpoint does not have", err)
			}
			if !strings.Contains(err.Error(), "checkpoint does not fit "+c.id) {
				t.Errorf("error %q does not name the ID", err)
			}
		})
	}
}

// TestModelPrefix: "model." prefixes (Chen2020Efficient) are stripped by
// rule and counted.
func TestModelPrefix(t *testing.T) {
	f := loadFixture(t, "wong2020fast")
	sd := map[string]checkpoint.Tensor{}
	for k, v := range f.tensors {
		sd["model."+k] = v
	}
	e, err := Lookup(f.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, rep, err := Import(e, sd, Options{Width: f.Width})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Stripped != len(sd) {
		t.Errorf("stripped %d prefixes; want %d", rep.Stripped, len(sd))
	}
	sd["layer1.0.bn1.weight"] = sd["model.layer1.0.bn1.weight"]
	if _, _, err := Import(e, sd, Options{Width: f.Width}); err == nil || !strings.Contains(err.Error(), `both "layer1.0.bn1.weight" and "model.layer1.0.bn1.weight"`) {
		t.Errorf("colliding names: %v; want an error naming both", err)
	}
}

// TestTable checks the embedded table: provenance, unique IDs, consistent
// fields, and that every entry's architecture builds with its classes.
func TestTable(t *testing.T) {
	tab, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(tab.Source.Commit) || tab.Source.Version == "" {
		t.Errorf("source %+v; want a full commit hash and a version", tab.Source)
	}
	if len(tab.Models) < 60 {
		t.Errorf("%d models; want the ≥ 60 CIFAR WRN/ResNet/PreActResNet entries of RobustBench", len(tab.Models))
	}
	seen := map[string]bool{}
	archs := map[string]bool{}
	for _, e := range tab.Models {
		if seen[e.ID] {
			t.Errorf("%s listed twice", e.ID)
		}
		seen[e.ID] = true
		if e.ID != e.Dataset+"/"+e.ThreatModel+"/"+e.Name {
			t.Errorf("%s: dataset %q, threat %q, name %q", e.ID, e.Dataset, e.ThreatModel, e.Name)
		}
		if want := map[string]int{"cifar10": 10, "cifar100": 100}[e.Dataset]; e.Classes != want {
			t.Errorf("%s: %d classes; want %d", e.ID, e.Classes, want)
		}
		if e.CleanAcc == nil || e.RobustAcc() == nil {
			t.Errorf("%s: no clean or robust accuracy", e.ID)
		}
		if e.ThreatModel != "corruptions" && e.Eps == nil {
			t.Errorf("%s: eps %v", e.ID, e.Eps)
		}
		if nz := e.Normalization; nz != nil && (len(nz.Mean) != 3 || len(nz.Std) != 3) {
			t.Errorf("%s: normalisation %+v", e.ID, nz)
		}
		if e.SubBlock1 && !strings.HasPrefix(e.Arch, "wrn-") {
			t.Errorf("%s: sub_block1 on %s", e.ID, e.Arch)
		}
		archs[e.Arch] = true
		var norm *arch.Normalization
		if e.Normalization != nil {
			norm = &arch.Normalization{Mean: e.Normalization.Mean, Std: e.Normalization.Std}
		}
		if _, err := arch.Build(e.Arch, arch.Config{Classes: e.Classes, Width: 1, Normalize: norm}); err != nil {
			t.Errorf("%s: %v", e.ID, err)
		}
	}
	for _, a := range []string{"wrn-28-10", "wrn-34-10", "preact-resnet18", "preact-resnet18-bn", "resnet18"} {
		if !archs[a] {
			t.Errorf("no entry uses %s", a)
		}
	}
	for _, x := range tab.Excluded {
		if seen[x.ID] || x.Reason == "" {
			t.Errorf("excluded %+v: listed too, or no reason", x)
		}
	}
}

func TestLookup(t *testing.T) {
	cases := []struct {
		id, want, err string
	}{
		{id: "cifar10/Linf/Carmon2019Unlabeled", want: "cifar10/Linf/Carmon2019Unlabeled"},
		{id: "Carmon2019Unlabeled", want: "cifar10/Linf/Carmon2019Unlabeled"},
		{id: "cifar100/Rice2020Overfitting", want: "cifar100/Linf/Rice2020Overfitting"},
		{id: "Rice2020Overfitting", err: "ambiguous: it could be cifar10/Linf/Rice2020Overfitting, cifar10/L2/Rice2020Overfitting, cifar100/Linf/Rice2020Overfitting"},
		{id: "cifar10/Linf/Gowal2020Uncovering_70_16", err: "DMWideResNet"},
		{id: "carmon2019", err: "did you mean cifar10/Linf/Carmon2019Unlabeled?"},
		{id: "NoSuchModel", err: "not in srtool's RobustBench table"},
	}
	for _, c := range cases {
		e, err := Lookup(c.id)
		switch {
		case c.err == "" && (err != nil || e.ID != c.want):
			t.Errorf("Lookup(%q) = %q, %v; want %q", c.id, e.ID, err, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("Lookup(%q) = %q, %v; want an error containing %q", c.id, e.ID, err, c.err)
		}
	}
}
