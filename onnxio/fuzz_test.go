package onnxio

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadExternal reads a model whose initializers may live in an
// external-data file w.bin beside it; the fuzzer varies both files. The
// seed corpus (testdata/fuzz/FuzzReadExternal) holds the tiny model with
// its weight in w.bin, valid and with lying offsets and lengths.
func FuzzReadExternal(f *testing.F) {
	f.Fuzz(func(t *testing.T, model, data []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, "m.onnx")
		if err := os.WriteFile(p, model, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "w.bin"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := Read(p)
		if err != nil {
			return
		}
		// Whatever Read accepts decodes, indexes, infers and re-encodes
		// without panicking.
		for _, tp := range m.Graph().GetInitializer() {
			Float32s(tp)
			Int64s(tp)
		}
		if _, err := NewIndex(m.Graph()); err != nil {
			return
		}
		InferShapes(m)
		if _, err := m.Encode(); err != nil {
			t.Errorf("accepted model does not re-encode: %v", err)
		}
	})
}
