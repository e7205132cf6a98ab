package checkpoint

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/semirobust/srtool/npy"
	"github.com/semirobust/srtool/onnxio"
)

func modelPath(name string) string { return filepath.Join("..", "testdata", "models", name) }

func readModel(t *testing.T, name string) *onnxio.Model {
	t.Helper()
	m, err := onnxio.Read(modelPath(name))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// goldenParams returns the param/<name> arrays of a golden npz (PyTorch's values).
func goldenParams(t *testing.T, name string) map[string]*npy.Array {
	t.Helper()
	g, err := npy.ReadNPZ(modelPath(name))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*npy.Array{}
	for k, v := range g {
		if p, ok := strings.CutPrefix(k, "param/"); ok {
			out[p] = v
		}
	}
	return out
}

func initValues(t *testing.T, m *onnxio.Model, name string) []float32 {
	t.Helper()
	init := m.Initializer(name)
	if init == nil {
		t.Fatalf("no initializer %q", name)
	}
	v, err := onnxio.Float32s(init)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestImportFixtures imports every PyTorch-made checkpoint (checkpoint/testdata/gen.py)
// into resnet10_cifar_train.onnx and compares each initializer with the golden npz.
func TestImportFixtures(t *testing.T) {
	golden := goldenParams(t, "resnet10_cifar_golden.npz")
	cases := []struct {
		file  string
		dtype DType
		rtol  float64 // rounding of the stored type
		atol  float64 // its subnormal spacing
	}{
		{"plain.pt", F32, 0, 0},
		{"wrapped.pt", F32, 0, 0}, // module. prefix, strided and offset views
		{"half.pt", F16, 1.0 / 2048, 0x1p-25},
		{"legacy_bf16.pt", BF16, 1.0 / 256, 0},
		{"plain.safetensors", F32, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			sd, err := Read(filepath.Join("testdata", c.file))
			if err != nil {
				t.Fatal(err)
			}
			if got := sd["linear.weight"].DType; got != c.dtype {
				t.Errorf("linear.weight dtype = %s; want %s", got, c.dtype)
			}
			m := readModel(t, "resnet10_cifar_train.onnx")
			rep, err := Import(m, sd, ImportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Loaded) != len(golden) || len(rep.Untied) != 0 {
				t.Errorf("loaded %d, untied %v; want %d, none", len(rep.Loaded), rep.Untied, len(golden))
			}
			for name, want := range golden {
				got := initValues(t, m, name)
				w := want.Float32()
				if len(got) != len(w) {
					t.Fatalf("%s: %d values; want %d", name, len(got), len(w))
				}
				for i := range w {
					if d := math.Abs(float64(got[i] - w[i])); d > c.rtol*math.Abs(float64(w[i]))+c.atol {
						t.Fatalf("%s[%d] = %g; want %g (PyTorch, rtol %g)", name, i, got[i], w[i], c.rtol)
					}
				}
			}
			if err := m.Validate(); err != nil {
				t.Errorf("model invalid after import: %v", err)
			}
		})
	}
}

func TestReadStridedViews(t *testing.T) {
	plain, err := ReadPyTorch("testdata/plain.pt")
	if err != nil {
		t.Fatal(err)
	}
	wrapped, err := ReadPyTorch("testdata/wrapped.pt")
	if err != nil {
		t.Fatal(err)
	}
	// linear.weight has strides (1, 10), conv1.weight is permuted, BN tensors are
	// slices of one storage: all must equal the contiguous plain copies.
	for _, k := range []string{"linear.weight", "conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"} {
		a, b := plain[k], wrapped[k]
		if !slices.Equal(a.Shape, b.Shape) || !bytes.Equal(a.Data, b.Data) {
			t.Errorf("%s from the strided view differs from the contiguous tensor", k)
		}
	}
	if _, ok := plain["bn1.num_batches_tracked"]; ok {
		t.Error("num_batches_tracked was not dropped")
	}
	if _, ok := wrapped["module.conv1.weight"]; ok {
		t.Error("module. prefix was not stripped")
	}
}

func TestReadTiny(t *testing.T) {
	for _, f := range []string{"tiny.pt", "tiny_legacy.pt"} {
		sd, err := ReadPyTorch(filepath.Join("testdata", f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		a, _ := sd["a"].Float32s()
		if !slices.Equal(sd["a"].Shape, []int64{3, 2}) || !slices.Equal(a, []float32{0, 3, 1, 4, 2, 5}) {
			t.Errorf("%s: a = %v %v; want [3 2] [0 3 1 4 2 5] (transposed view)", f, sd["a"].Shape, a)
		}
		b, _ := sd["b"].Float32s()
		if sd["b"].DType != F16 || !slices.Equal(b, []float32{2, 3, 4}) {
			t.Errorf("%s: b = %s %v; want F16 [2 3 4] (offset 2)", f, sd["b"].DType, b)
		}
		n, _ := sd["n"].Int64s()
		if len(sd["n"].Shape) != 0 || !slices.Equal(n, []int64{3}) {
			t.Errorf("%s: n = %v %v; want scalar 3", f, sd["n"].Shape, n)
		}
	}
}

func TestExportRoundTrip(t *testing.T) {
	m := readModel(t, "resnet10_cifar_train.onnx")
	ex, err := Export(m)
	if err != nil {
		t.Fatal(err)
	}
	golden := goldenParams(t, "resnet10_cifar_golden.npz")
	if len(ex) != len(golden) {
		t.Errorf("Export gave %d tensors; want the %d state_dict entries", len(ex), len(golden))
	}
	for k := range golden {
		if _, ok := ex[k]; !ok {
			t.Errorf("Export lacks %s", k)
		}
	}
	path := filepath.Join(t.TempDir(), "w.safetensors")
	if err := WriteSafetensors(path, ex, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	back, meta, err := ReadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	if meta["format"] != "pt" {
		t.Errorf("metadata = %v", meta)
	}
	// Import into a copy with every parameter zeroed, then compare bytes.
	z := m.Clone()
	for _, init := range z.Graph().GetInitializer() {
		if init.GetDataType() == onnxio.Float {
			_ = onnxio.SetFloat32s(init, make([]float32, onnxio.NumElements(init)))
		}
	}
	if _, err := Import(z, back, ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	for k := range ex {
		if !slices.Equal(initValues(t, z, k), initValues(t, m, k)) {
			t.Errorf("%s changed in the round trip", k)
		}
	}
	again, err := Export(z)
	if err != nil {
		t.Fatal(err)
	}
	b1, _ := EncodeSafetensors(ex, nil)
	b2, _ := EncodeSafetensors(again, nil)
	if !bytes.Equal(b1, b2) {
		t.Error("export → safetensors → import → export is not the identity")
	}
}

func TestExportSkipsShapeConstants(t *testing.T) {
	// wrn16_1's head reshapes with a constant shape; resnet10's Pad reads constants.
	for _, name := range []string{"wrn16_1_train.onnx", "resnet10_cifar_train.onnx", "resnet10_imagenet_train.onnx"} {
		m := readModel(t, name)
		ex, err := Export(m)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		golden := goldenParams(t, strings.Replace(name, "_train.onnx", "_golden.npz", 1))
		var extra []string
		for k := range ex {
			if _, ok := golden[k]; !ok {
				extra = append(extra, k)
			}
		}
		if len(extra) > 0 || len(ex) != len(golden) {
			t.Errorf("%s: Export has %d tensors, %d in PyTorch's state_dict; extra %v", name, len(ex), len(golden), extra)
		}
	}
}

func TestImportMismatch(t *testing.T) {
	base, err := ReadPyTorch("testdata/plain.pt")
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(map[string]Tensor)) map[string]Tensor {
		sd := make(map[string]Tensor, len(base))
		for k, v := range base {
			sd[k] = v
		}
		f(sd)
		return sd
	}
	cases := []struct {
		name                        string
		sd                          map[string]Tensor
		opt                         ImportOptions
		missing, unexpected, shapes []string
	}{
		{"missing", edit(func(sd map[string]Tensor) { delete(sd, "bn1.bias") }), ImportOptions{}, []string{"bn1.bias"}, nil, nil},
		{"unexpected", edit(func(sd map[string]Tensor) { sd["extra.weight"] = FromFloat32([]int64{1}, []float32{1}) }), ImportOptions{}, nil, []string{"extra.weight"}, nil},
		{"shape", edit(func(sd map[string]Tensor) { sd["linear.bias"] = FromFloat32([]int64{5, 2}, make([]float32, 10)) }), ImportOptions{}, nil, nil,
			[]string{"linear.bias (checkpoint F32 [5 2] vs model [10])"}},
		{"integer", edit(func(sd map[string]Tensor) {
			sd["linear.bias"] = Tensor{DType: I64, Shape: []int64{10}, Data: make([]byte, 80)}
		}), ImportOptions{}, nil, nil,
			[]string{"linear.bias (checkpoint I64 [10] vs model [10])"}},
		{"all three", edit(func(sd map[string]Tensor) {
			delete(sd, "conv1.weight")
			delete(sd, "bn1.weight")
			sd["fc.weight"] = sd["linear.weight"]
			sd["linear.weight"] = FromFloat32([]int64{64, 10}, make([]float32, 640))
		}), ImportOptions{}, []string{"bn1.weight", "conv1.weight"}, []string{"fc.weight"}, []string{"linear.weight (checkpoint F32 [64 10] vs model [10 64])"}},
		{"shape even when relaxed", edit(func(sd map[string]Tensor) {
			delete(sd, "conv1.weight")
			sd["linear.bias"] = FromFloat32([]int64{1}, []float32{0})
		}), ImportOptions{AllowMissing: true, AllowUnexpected: true}, nil, nil, []string{"linear.bias (checkpoint F32 [1] vs model [10])"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := readModel(t, "resnet10_cifar_train.onnx")
			before, _ := m.Encode()
			_, err := Import(m, c.sd, c.opt)
			var me *MismatchError
			if !errors.As(err, &me) {
				t.Fatalf("Import error = %v; want *MismatchError", err)
			}
			if !slices.Equal(me.Missing, c.missing) || !slices.Equal(me.Unexpected, c.unexpected) || !slices.Equal(me.Shape, c.shapes) {
				t.Errorf("got missing %v unexpected %v shape %v; want %v %v %v", me.Missing, me.Unexpected, me.Shape, c.missing, c.unexpected, c.shapes)
			}
			after, _ := m.Encode()
			if !bytes.Equal(before, after) {
				t.Error("a failed Import changed the model")
			}
		})
	}

	// Relaxed: the same gaps become a report.
	sd := edit(func(sd map[string]Tensor) {
		delete(sd, "bn1.bias")
		sd["extra"] = FromFloat32(nil, []float32{1})
	})
	m := readModel(t, "resnet10_cifar_train.onnx")
	rep, err := Import(m, sd, ImportOptions{AllowMissing: true, AllowUnexpected: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Missing, []string{"bn1.bias"}) || !slices.Equal(rep.Unexpected, []string{"extra"}) || len(rep.Loaded) != len(base)-1 {
		t.Errorf("report = missing %v unexpected %v loaded %d", rep.Missing, rep.Unexpected, len(rep.Loaded))
	}
}

func TestImportOtherArchitecture(t *testing.T) {
	sd, err := ReadPyTorch("testdata/plain.pt") // kuangliu ResNet names
	if err != nil {
		t.Fatal(err)
	}
	m := readModel(t, "wrn16_1_train.onnx") // RobustBench WRN names
	_, err = Import(m, sd, ImportOptions{})
	var me *MismatchError
	if !errors.As(err, &me) || len(me.Missing) == 0 || len(me.Unexpected) == 0 {
		t.Fatalf("Import error = %v; want missing and unexpected names", err)
	}
	msg := err.Error()
	for _, want := range []string{"missing from the checkpoint (block1.layer.0.bn1.bias", "unexpected in the checkpoint (layer1.0.bn1.bias", "bn1.bias (checkpoint F32 [8] vs model [32])", "more)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if len(msg) > 2000 {
		t.Errorf("error is %d characters; the lists should be truncated", len(msg))
	}
}

func TestFoldedBN(t *testing.T) {
	for _, name := range []string{"resnet10_cifar_eval.onnx", "wrn16_1_eval.onnx", "fresh_tiny_eval.onnx"} {
		m := readModel(t, name)
		_, err := Export(m)
		if !errors.Is(err, ErrFoldedBN) || !strings.Contains(err.Error(), "training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False") {
			t.Errorf("%s: Export error = %v; want ErrFoldedBN with the re-export advice", name, err)
		}
		if _, err := Import(m, map[string]Tensor{}, ImportOptions{AllowMissing: true}); !errors.Is(err, ErrFoldedBN) {
			t.Errorf("%s: Import error = %v; want ErrFoldedBN", name, err)
		}
	}
}

// fresh_tiny_train.onnx has 40 BN tensors stored as Identity(another initializer).
func TestDedupUntie(t *testing.T) {
	m := readModel(t, "fresh_tiny_train.onnx")
	golden := goldenParams(t, "fresh_tiny_golden.npz")
	identities := func(m *onnxio.Model) int {
		n := 0
		for _, nd := range m.Graph().GetNode() {
			if nd.GetOpType() == "Identity" {
				n++
			}
		}
		return n
	}
	if identities(m) != 40 {
		t.Fatalf("fixture has %d Identity nodes; want 40", identities(m))
	}
	ex, err := Export(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(ex) != len(golden) {
		t.Errorf("Export gave %d names; PyTorch's state_dict has %d", len(ex), len(golden))
	}
	for k, g := range golden {
		v, err := ex[k].Float32s()
		if err != nil || !slices.Equal(v, g.Float32()) {
			t.Errorf("Export[%s] = %v (%v); want PyTorch's %v", k, v, err, g.Float32())
		}
	}

	// Equal values keep the ties.
	rep, err := Import(m, ex, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Untied) != 0 || identities(m) != 40 {
		t.Errorf("same values: untied %v, %d Identity nodes; want none, 40", rep.Untied, identities(m))
	}

	// A different value for one alias unties only that alias.
	const alias, root = "layer4.0.bn2.running_var", "layer4.0.bn1.weight"
	changed := func(sd map[string]Tensor, name string, v float32) map[string]Tensor {
		out := map[string]Tensor{}
		for k, t := range sd {
			out[k] = t
		}
		vals := make([]float32, sd[name].NumElements())
		for i := range vals {
			vals[i] = v + float32(i)
		}
		out[name] = FromFloat32(sd[name].Shape, vals)
		return out
	}
	want := changed(ex, alias, 2)
	rep, err = Import(m, want, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Untied, []string{alias}) || identities(m) != 39 {
		t.Errorf("untied %v, %d Identity nodes; want [%s], 39", rep.Untied, identities(m), alias)
	}
	checkExport(t, m, want)

	// A new value for the shared initializer unties every alias that keeps the old one.
	m = readModel(t, "fresh_tiny_train.onnx")
	want = changed(ex, root, 3)
	rep, err = Import(m, want, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Untied) == 0 {
		t.Error("no alias of the changed initializer was untied")
	}
	checkExport(t, m, want)
	if err := m.Validate(); err != nil {
		t.Errorf("model invalid after untying: %v", err)
	}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := onnxio.Decode(b); err != nil {
		t.Errorf("untied model does not decode: %v", err)
	}
}

// checkExport checks that the model now exports exactly want.
func checkExport(t *testing.T, m *onnxio.Model, want map[string]Tensor) {
	t.Helper()
	got, err := Export(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("Export has %d names; want %d", len(got), len(want))
	}
	for k, w := range want {
		wv, _ := w.Float32s()
		gv, err := got[k].Float32s()
		if err != nil || !slices.Equal(gv, wv) {
			t.Errorf("after Import, %s = %v; want %v", k, gv, wv)
		}
	}
}

func TestCorruptFiles(t *testing.T) {
	for _, f := range []string{"plain.pt", "half.pt", "legacy_bf16.pt", "plain.safetensors", "tiny.pt", "tiny_legacy.pt"} {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		cuts := []int{0, 1, 7, 8, 20, 100, len(b) / 3, len(b) / 2, len(b) - 100, len(b) - 1}
		for _, n := range cuts {
			if n < 0 || n >= len(b) {
				continue
			}
			p := filepath.Join(dir, "cut")
			if err := os.WriteFile(p, b[:n], 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := Read(p); err == nil {
				t.Errorf("%s truncated to %d bytes: no error", f, n)
			}
		}
		// Flipped bytes must give an error or a result, never a panic.
		for i := 0; i < len(b); i += max(1, len(b)/200) {
			c := bytes.Clone(b)
			c[i] ^= 0xff
			if strings.HasSuffix(f, ".safetensors") {
				_, _, _ = DecodeSafetensors(c)
			} else {
				_, _ = DecodePyTorch(c)
			}
		}
	}
	if _, err := Read(filepath.Join("testdata", "nonexistent.pt")); err == nil {
		t.Error("reading a missing file gave no error")
	}
}

func TestStateDictLookup(t *testing.T) {
	// Protocol-2 pickles written by hand (pickletools notation in comments).
	cases := []struct {
		name, pkl, wantErr string
	}{
		// {'epoch': 1, 'optimizer': {}}
		{"no state_dict", "\x80\x02}q\x00(X\x05\x00\x00\x00epochK\x01X\t\x00\x00\x00optimizer}u.", "the dict holds epoch (int), optimizer (dict)"},
		// {'model': 3}
		{"wrapper not a dict", "\x80\x02}(X\x05\x00\x00\x00modelK\x03u.", "model (int)"},
		// [1]
		{"a list", "\x80\x02]K\x01a.", "holds a list, not a dict"},
		// {}
		{"empty", "\x80\x02}.", "empty dict"},
		// {'last': {'a': 1}}: RobustBench's Andriushchenko2020/Kireev2021 wrapper is followed
		{"last wrapper", "\x80\x02}(X\x04\x00\x00\x00last}(X\x01\x00\x00\x00aK\x01uu.", "last: no state_dict found"},
	}
	for _, c := range cases {
		obj, _, err := unpickle([]byte(c.pkl), findClass, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		_, err = StateDict(obj)
		if err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%s: error %v; want one containing %q", c.name, err, c.wantErr)
		}
	}
}

func TestNormalize(t *testing.T) {
	x := FromFloat32(nil, []float32{1})
	got := Normalize(map[string]Tensor{"module.module.a": x, "module.module.bn.num_batches_tracked": x, "module.module.b.c": x})
	if len(got) != 2 || got["a"].Data == nil || got["b.c"].Data == nil {
		t.Errorf("Normalize = %v; want keys a, b.c", got)
	}
	got = Normalize(map[string]Tensor{"module.a": x, "b": x})
	if _, ok := got["module.a"]; !ok {
		t.Error("Normalize stripped module. although not every key has it")
	}
}

// TestImportUnexpectedPatterns: only names matching a pattern (glob or
// prefix) are ignored, every one listed; others stay a mismatch.
func TestImportUnexpectedPatterns(t *testing.T) {
	m := readModel(t, "resnet10_cifar_train.onnx")
	base, err := Export(m)
	if err != nil {
		t.Fatal(err)
	}
	sd := map[string]Tensor{}
	for k, v := range base {
		sd[k] = v
	}
	one := FromFloat32([]int64{1}, []float32{1})
	sd["sub_block1.layer.0.conv1.weight"] = one
	sd["sub_block1.layer.0.bn1.bias"] = one
	sd["mu"] = one
	for _, tc := range []struct {
		patterns   []string
		ignored    []string
		unexpected []string
	}{
		{[]string{"sub_block1.*"}, []string{"sub_block1.layer.0.bn1.bias", "sub_block1.layer.0.conv1.weight"}, []string{"mu"}},
		{[]string{"sub_block1."}, []string{"sub_block1.layer.0.bn1.bias", "sub_block1.layer.0.conv1.weight"}, []string{"mu"}},
		{[]string{"sub_block1.", "mu"}, []string{"mu", "sub_block1.layer.0.bn1.bias", "sub_block1.layer.0.conv1.weight"}, nil},
		{[]string{"*.bias"}, nil, []string{"mu", "sub_block1.layer.0.conv1.weight"}}, // * spans dots (path.Match stops only at "/")
	} {
		rep, err := Import(readModel(t, "resnet10_cifar_train.onnx"), sd, ImportOptions{UnexpectedPatterns: tc.patterns})
		var me *MismatchError
		switch {
		case tc.unexpected == nil:
			if err != nil || !slices.Equal(rep.Unexpected, tc.ignored) {
				t.Errorf("%v: report %v, %v; want ignored %v", tc.patterns, rep, err, tc.ignored)
			}
		case errors.As(err, &me):
			if !slices.Equal(me.Unexpected, tc.unexpected) {
				t.Errorf("%v: unexpected %v; want %v", tc.patterns, me.Unexpected, tc.unexpected)
			}
		default:
			t.Errorf("%v: error %v; want a mismatch", tc.patterns, err)
		}
	}
	if _, err := Import(m, sd, ImportOptions{UnexpectedPatterns: []string{"[x"}}); err == nil || !strings.Contains(err.Error(), `pattern "[x"`) {
		t.Errorf("malformed glob: %v", err)
	}
}
