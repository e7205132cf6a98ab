package onnxio

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/semirobust/srtool/onnxio/onnxpb"
)

// fixtureModel is the small PGD-trained Fashion-MNIST ResNet shared by the project.
const fixtureModel = "../testdata/fixtures/attacks/fmnist_rn_w8_pgd.onnx"

// tinyModel builds Y = Relu(Conv(X, W)) with a dynamic batch.
func tinyModel(t *testing.T) *Model {
	t.Helper()
	return buildTiny()
}

func tinyModelBytes() ([]byte, error) { return buildTiny().Encode() }

func buildTiny() *Model {
	g := &onnxpb.GraphProto{Name: "tiny"}
	g.Input = []*onnxpb.ValueInfoProto{ValueInfo("x", Float, Shape{Sym("batch"), D(1), D(5), D(5)})}
	b := NewBuilder(g, "")
	w := make([]float32, 2*1*3*3)
	for i := range w {
		w[i] = float32(i%5) - 2
	}
	g.Initializer = append(g.Initializer, FloatTensor("w", []int64{2, 1, 3, 3}, w))
	c := b.Op1("Conv", []string{"x", "w"}, AttrInts("pads", 1, 1, 1, 1))
	y := b.Op1("Relu", []string{c})
	g.Output = []*onnxpb.ValueInfoProto{ValueInfo(y, Float, nil)}
	return &Model{Proto: &onnxpb.ModelProto{IrVersion: 8, Graph: g, OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: 17}}}}
}

func TestRoundTripKeepsEveryField(t *testing.T) {
	raw, err := os.ReadFile(fixtureModel)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	// Append a field number no ONNX release uses, as a newer exporter might.
	withUnknown := protowire.AppendTag(append([]byte(nil), raw...), 999, protowire.BytesType)
	withUnknown = protowire.AppendBytes(withUnknown, []byte("from-the-future"))
	m2, err := Decode(withUnknown)
	if err != nil {
		t.Fatalf("decode with unknown field: %v", err)
	}
	enc, err := m2.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(enc, []byte("from-the-future")) {
		t.Errorf("re-encoded model lost the unknown field")
	}
	back, err := Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(back.Proto, m2.Proto) {
		t.Errorf("decode(encode(m)) differs from m")
	}
	enc1, _ := m.Encode()
	if m1, _ := Decode(enc1); !proto.Equal(m1.Proto, m.Proto) {
		t.Errorf("round trip of the fixture changed the model")
	}
	if got := len(m.Graph().GetInitializer()); got == 0 {
		t.Errorf("fixture has %d initializers; want > 0", got)
	}
}

func TestWriteIsAtomicAndReadable(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m.onnx")
	m := tinyModel(t)
	if err := Write(p, m); err != nil {
		t.Fatal(err)
	}
	got, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got.Proto, m.Proto) {
		t.Errorf("Read(Write(m)) differs")
	}
	if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("written model mode = %v, %v; want 0644", st.Mode().Perm(), err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("folder holds %d entries after Write; want only the model (no temp files)", len(ents))
	}
	// Writing into a missing folder fails and leaves nothing.
	if err := Write(filepath.Join(dir, "missing", "m.onnx"), m); err == nil {
		t.Errorf("Write into a missing folder succeeded")
	}
}

func TestBadInput(t *testing.T) {
	raw, err := os.ReadFile(fixtureModel)
	if err != nil {
		t.Fatal(err)
	}
	good := tinyModel(t)
	enc := func(m *Model) []byte {
		b, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	opset99 := good.Clone()
	opset99.Proto.OpsetImport[0].Version = 99
	noOpset := good.Clone()
	noOpset.Proto.OpsetImport = nil
	missingInit := good.Clone()
	missingInit.Graph().Initializer = nil
	redefined := good.Clone()
	redefined.Graph().Node[1].Output[0] = redefined.Graph().Node[0].Output[0]
	badSize := good.Clone()
	badSize.Graph().Initializer[0].Dims = []int64{3, 1, 3, 3}
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "empty input"},
		{"not onnx", []byte("this is a text file, not a model\n"), "not an ONNX model"},
		{"truncated", raw[:len(raw)/2], "not an ONNX model"},
		{"unknown opset", enc(opset99), "unsupported ai.onnx opset 99"},
		{"no opset", enc(noOpset), "no default-domain"},
		{"missing initializer", enc(missingInit), "missing initializer"},
		{"redefined tensor", enc(redefined), "redefines"},
		{"bad initializer size", enc(badSize), "raw_data has"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode(c.data)
			if err == nil {
				t.Fatalf("Decode succeeded; want error containing %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error = %q; want it to contain %q", err, c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans several lines: %q", err)
			}
		})
	}
}

func TestExternalData(t *testing.T) {
	dir := t.TempDir()
	m := tinyModel(t)
	w := m.Graph().Initializer[0]
	data, err := Float32s(w)
	if err != nil {
		t.Fatal(err)
	}
	// Store the weight in an external file at offset 16.
	blob := append(make([]byte, 16), FloatTensor("w", w.Dims, data).RawData...)
	if err := os.WriteFile(filepath.Join(dir, "weights.bin"), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	ext := func(loc string) *Model {
		c := m.Clone()
		t := c.Graph().Initializer[0]
		t.RawData = nil
		t.DataLocation = onnxpb.TensorProto_EXTERNAL
		t.ExternalData = []*onnxpb.StringStringEntryProto{{Key: "location", Value: loc}, {Key: "offset", Value: "16"}, {Key: "length", Value: "72"}}
		return c
	}
	write := func(name string, c *Model) string {
		p := filepath.Join(dir, name)
		b, err := c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	got, err := Read(write("ok.onnx", ext("weights.bin")))
	if err != nil {
		t.Fatalf("Read with external data: %v", err)
	}
	gw, _ := Float32s(got.Graph().Initializer[0])
	for i := range data {
		if gw[i] != data[i] {
			t.Fatalf("external weight[%d] = %v; want %v", i, gw[i], data[i])
		}
	}
	// Path traversal and absolute paths are refused.
	outside := filepath.Join(filepath.Dir(dir), "secret.bin")
	os.WriteFile(outside, blob, 0o644)
	defer os.Remove(outside)
	for _, loc := range []string{"../secret.bin", "/etc/passwd", "sub/../../secret.bin"} {
		_, err := Read(write("bad.onnx", ext(loc)))
		if !errors.Is(err, ErrExternalPath) {
			t.Errorf("location %q: err = %v; want ErrExternalPath", loc, err)
		}
	}
	// A symbolic link inside the folder that points outside is refused too.
	if err := os.Symlink(outside, filepath.Join(dir, "link.bin")); err == nil {
		if _, err := Read(write("bad.onnx", ext("link.bin"))); !errors.Is(err, ErrExternalPath) {
			t.Errorf("symlink escaping the folder: err = %v; want ErrExternalPath", err)
		}
	}
	// A model from memory cannot resolve external data.
	b, _ := ext("weights.bin").Encode()
	if _, err := Decode(b); err == nil || !strings.Contains(err.Error(), "from memory") {
		t.Errorf("Decode of external-data model: err = %v; want a from-memory error", err)
	}
	// Missing file and short file.
	if _, err := Read(write("bad.onnx", ext("nope.bin"))); err == nil {
		t.Errorf("missing external file accepted")
	}
	os.WriteFile(filepath.Join(dir, "short.bin"), blob[:40], 0o644)
	if _, err := Read(write("bad.onnx", ext("short.bin"))); err == nil {
		t.Errorf("short external file accepted")
	}
}

func TestTensorDecoding(t *testing.T) {
	want := []float32{1, -2.5, 0, 65504}
	half := []uint16{0x3c00, 0xc100, 0x0000, 0x7bff}
	raw16 := make([]byte, 8)
	for i, h := range half {
		raw16[2*i], raw16[2*i+1] = byte(h), byte(h>>8)
	}
	cases := []struct {
		name string
		t    *onnxpb.TensorProto
	}{
		{"float_data", &onnxpb.TensorProto{DataType: Float, Dims: []int64{4}, FloatData: want}},
		{"raw float", FloatTensor("r", []int64{2, 2}, want)},
		{"double_data", &onnxpb.TensorProto{DataType: Double, Dims: []int64{4}, DoubleData: []float64{1, -2.5, 0, 65504}}},
		{"raw float16", &onnxpb.TensorProto{DataType: Float16, Dims: []int64{4}, RawData: raw16}},
		{"int32 float16", &onnxpb.TensorProto{DataType: Float16, Dims: []int64{4}, Int32Data: []int32{0x3c00, 0xc100, 0, 0x7bff}}},
	}
	for _, c := range cases {
		got, err := Float32s(c.t)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s: element %d = %v; want %v", c.name, i, got[i], want[i])
			}
		}
	}
	iv := []int64{-1, 0, 1 << 40}
	for _, tp := range []*onnxpb.TensorProto{
		{DataType: Int64, Dims: []int64{3}, Int64Data: iv},
		Int64Tensor("i", []int64{3}, iv),
	} {
		got, err := Int64s(tp)
		if err != nil || got[0] != -1 || got[2] != 1<<40 {
			t.Errorf("Int64s = %v, %v; want %v", got, err, iv)
		}
	}
	if _, err := Float32s(&onnxpb.TensorProto{DataType: Float, Dims: []int64{3}, FloatData: []float32{1}}); err == nil {
		t.Errorf("3-element tensor with 1 value accepted")
	}
	if _, err := Int64s(FloatTensor("f", []int64{1}, []float32{1})); err == nil {
		t.Errorf("Int64s of a float tensor accepted")
	}
}

func TestBuilderFreshNames(t *testing.T) {
	m := tinyModel(t)
	b := NewBuilder(m.Graph(), "")
	seen := map[string]bool{}
	for _, n := range m.Graph().Node {
		for _, o := range n.Output {
			seen[o] = true
		}
		seen[n.Name] = true
	}
	for i := 0; i < 100; i++ {
		n := b.Fresh("relu")
		if seen[n] {
			t.Fatalf("Fresh returned %q twice or a name already in the graph", n)
		}
		seen[n] = true
	}
}

func FuzzDecode(f *testing.F) {
	// Small seeds keep the fuzzer's minimisation fast; the 300 kB fixture is
	// covered by TestBadInput's truncation case.
	raw, err := tinyModelBytes()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add(raw[:len(raw)/2])
	f.Add([]byte{})
	f.Add([]byte("\x08\x08\x3a\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		// Anything accepted must index, infer and re-encode without panicking.
		if _, err := NewIndex(m.Graph()); err != nil {
			return
		}
		InferShapes(m)
		if _, err := m.Encode(); err != nil {
			t.Errorf("accepted model does not re-encode: %v", err)
		}
	})
}
