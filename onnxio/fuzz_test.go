package onnxio

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadExternal decodes a model whose initializers may live in an
// external-data file w.bin in the model's folder; the fuzzer varies both
// the model and w.bin. The seed corpus (testdata/fuzz/FuzzReadExternal)
// holds the tiny model with its weight in w.bin, valid and with lying
// offsets and lengths.
func FuzzReadExternal(f *testing.F) {
	// One folder per fuzzing process (its inputs run one at a time); w.bin
	// is rewritten only when the data changes.
	dir := f.TempDir()
	ext := filepath.Join(dir, "w.bin")
	var last []byte
	f.Fuzz(func(t *testing.T, model, data []byte) {
		if last == nil || !bytes.Equal(data, last) {
			if err := os.WriteFile(ext, data, 0o644); err != nil {
				t.Fatal(err)
			}
			last = append(last[:0:0], data...)
		}
		m, err := decode(model, dir)
		if err != nil {
			return
		}
		// Whatever is accepted decodes, indexes, infers and re-encodes
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
