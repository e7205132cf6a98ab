package onnxio

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/semirobust/srtool/onnxio/onnxpb"
)

// externalModel returns the tiny model with its weight w stored externally
// at loc with the given dims, offset and (when ≥ 0) length.
func externalModel(loc string, dims []int64, offset, length int64) *Model {
	m := buildTiny()
	w := m.Graph().Initializer[0]
	w.RawData = nil
	w.Dims = dims
	w.DataLocation = onnxpb.TensorProto_EXTERNAL
	w.ExternalData = []*onnxpb.StringStringEntryProto{{Key: "location", Value: loc}, {Key: "offset", Value: strconv.FormatInt(offset, 10)}}
	if length >= 0 {
		w.ExternalData = append(w.ExternalData, &onnxpb.StringStringEntryProto{Key: "length", Value: strconv.FormatInt(length, 10)})
	}
	return m
}

func writeModel(t *testing.T, dir string, m *Model) string {
	t.Helper()
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "m.onnx")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// readWithin runs Read in the background and fails the test if it has not
// returned within d (a hang), so a regression cannot stall the suite.
func readWithin(t *testing.T, path string, d time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := Read(path)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("Read(%s) still running after %v: it hangs", path, d)
		return nil
	}
}

// Issue 12: an external-data offset of 2^63 − 1000 overflowed the size
// check and made Read allocate the dims' 1 TiB (Go's fatal out of memory).
func TestExternalDataHugeOffset(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "w.bin"), make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		dims   []int64
		offset int64
		length int64
	}{
		{"offset near 2^63, 1 TiB of dims", []int64{1 << 38}, 1<<63 - 1000, -1},
		{"offset near 2^63, small dims", []int64{2, 1, 3, 3}, 1<<63 - 1000, -1},
		{"offset past the end", []int64{2, 1, 3, 3}, 4096, 72},
		{"1 TiB at offset 0", []int64{1 << 38}, 0, 1 << 40},
		{"int64 dims whose bytes overflow", []int64{1 << 61}, 0, -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeModel(t, dir, externalModel("w.bin", c.dims, c.offset, c.length))
			err := readWithin(t, p, 10*time.Second)
			if err == nil {
				t.Fatal("Read succeeded; want an error")
			}
			if !strings.Contains(err.Error(), `"w"`) {
				t.Errorf("error %q does not name the tensor", err)
			}
		})
	}
}

// Tensors that share one region of a small file must not add up to more
// bytes than the file holds: otherwise N such initializers cost N times the
// file in memory.
func TestExternalDataOverlapBounded(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "w.bin"), make([]byte, 72), 0o644); err != nil {
		t.Fatal(err)
	}
	m := externalModel("w.bin", []int64{2, 1, 3, 3}, 0, 72)
	for i := range 1000 {
		c := externalModel("w.bin", []int64{2, 1, 3, 3}, 0, 72).Graph().Initializer[0]
		c.Name = "copy" + strconv.Itoa(i)
		m.Graph().Initializer = append(m.Graph().Initializer, c)
	}
	err := readWithin(t, writeModel(t, dir, m), 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "overlapping") {
		t.Fatalf("Read = %v; want an overlapping-ranges error", err)
	}
}

// Issue 12: an external-data location that is a FIFO hung every command;
// a folder gave a confusing error. Non-regular files are refused.
func TestExternalDataNotRegular(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.bin")
	if err := mkfifo(fifo); err != nil {
		t.Skipf("cannot make a FIFO here: %v", err)
	}
	// If the reader does block on the FIFO, opening its write end lets it
	// go once the test is over.
	t.Cleanup(func() { unblockFIFO(fifo) })
	for _, loc := range []string{"fifo.bin", "sub"} {
		t.Run(loc, func(t *testing.T) {
			p := writeModel(t, dir, externalModel(loc, []int64{2, 1, 3, 3}, 0, 72))
			err := readWithin(t, p, 5*time.Second)
			if !errors.Is(err, ErrNotRegular) {
				t.Fatalf("Read = %v; want ErrNotRegular", err)
			}
			if !strings.Contains(err.Error(), loc) || !strings.Contains(err.Error(), `"w"`) {
				t.Errorf("error %q does not name the tensor and the location", err)
			}
		})
	}
	// The model path itself.
	err := readWithin(t, fifo, 5*time.Second)
	if !errors.Is(err, ErrNotRegular) {
		t.Fatalf("Read(FIFO) = %v; want ErrNotRegular", err)
	}
}

// A tensor of a type srtool never decodes, with dims of 2^40 elements and
// no data, made Float32s and Int64s allocate the dims before looking at
// the type.
func TestDecodeUnknownTypeHugeDims(t *testing.T) {
	tp := &onnxpb.TensorProto{Name: "s", DataType: int32(onnxpb.TensorProto_STRING), Dims: []int64{1 << 40}}
	if _, err := Float32s(tp); err == nil {
		t.Errorf("Float32s of a string tensor succeeded")
	}
	if _, err := Int64s(tp); err == nil {
		t.Errorf("Int64s of a string tensor succeeded")
	}
}
