package npy

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// lyingZip returns an archive with one entry, name, holding body but
// declaring declared uncompressed bytes (stored or deflated).
func lyingZip(t testing.TB, name string, method uint16, body []byte, declared uint64) []byte {
	t.Helper()
	raw := body
	if method == zip.Deflate {
		var b bytes.Buffer
		fw, _ := flate.NewWriter(&b, flate.BestCompression)
		fw.Write(body)
		fw.Close()
		raw = b.Bytes()
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateRaw(&zip.FileHeader{
		Name: name, Method: method, CRC32: crc32.ChecksumIEEE(body),
		CompressedSize64: uint64(len(raw)), UncompressedSize64: declared,
	})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(raw)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Issue 12: an NPZ entry whose declared size lies (128 GiB for a 128-byte
// stored entry) made ReadNPZ allocate what the npy header inside claimed,
// since the declared size was trusted as the stream's length.
func TestReadNPZLyingEntrySize(t *testing.T) {
	const declared = 1 << 37
	// (2^35 − 64) float32 values: just under the declared size with the header.
	hdr := header(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (34359738304,), }")
	cases := []struct {
		name string
		b    []byte
	}{
		{"stored", lyingZip(t, "x.npy", zip.Store, hdr, declared)},
		{"deflated", lyingZip(t, "x.npy", zip.Deflate, append(hdr, make([]byte, 4096)...), declared)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "lie.npz")
			if err := os.WriteFile(p, c.b, 0o644); err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := ReadNPZ(p)
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatal("ReadNPZ succeeded; want an error")
			}
			if !strings.Contains(err.Error(), "x.npy") || !strings.Contains(err.Error(), p) {
				t.Errorf("error %q does not name the archive and the entry", err)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20 {
				t.Errorf("ReadNPZ of a %d-byte archive allocated %d bytes", len(c.b), got)
			}
		})
	}
}

// A zip bomb: a deflated entry that really expands 1000-fold is read
// within what it declares, and one that declares more than DEFLATE can
// produce is refused before reading.
func TestReadNPZBomb(t *testing.T) {
	arr := encode(t, FromUint8(make([]byte, 1<<22), 1<<22))
	ok := lyingZip(t, "x.npy", zip.Deflate, arr, uint64(len(arr)))
	if m, err := ReadNPZFrom(bytes.NewReader(ok), int64(len(ok))); err != nil || m["x"].Len() != 1<<22 {
		t.Fatalf("honest 4 MiB deflated entry: %v", err)
	}
	lie := lyingZip(t, "x.npy", zip.Deflate, arr, 1<<50)
	if _, err := ReadNPZFrom(bytes.NewReader(lie), int64(len(lie))); err == nil || !strings.Contains(err.Error(), "DEFLATE") {
		t.Errorf("entry declaring 1 PiB: err = %v; want a DEFLATE-ratio error", err)
	}
}

// Huge shapes in NPY headers are refused before allocation, whether the
// stream length is known (files) or not.
func TestReadHugeShapes(t *testing.T) {
	for _, shape := range []string{
		"(1099511627776,)",                              // 2^40 bytes of u1, header only
		"(4611686018427387904, 4)",                      // product overflows int64
		"(3037000500, 3037000500)",                      // product just over 2^63
		"(0, 4611686018427387904, 4611686018427387904)", // empty but absurd
		"(-1,)",
		"(99999999999999999999,)",
	} {
		b := header(1, "{'descr': '|u1', 'fortran_order': False, 'shape': "+shape+", }")
		p := filepath.Join(t.TempDir(), "a.npy")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		a, err := ReadFile(p)
		if err == nil && a.Len() != 0 {
			t.Errorf("shape %s: ReadFile accepted %d elements from a %d-byte file", shape, a.Len(), len(b))
		}
		if a, err := Read(bytes.NewReader(b)); err == nil && a.Len() != 0 {
			t.Errorf("shape %s: Read accepted %d elements from %d bytes", shape, a.Len(), len(b))
		}
	}
}

// FuzzReadNPZ feeds whole .npz archives to ReadNPZFrom; whatever it
// accepts must hold well-formed arrays. The seed corpus
// (testdata/fuzz/FuzzReadNPZ) holds stored and deflated archives and ones
// whose entry sizes lie.
func FuzzReadNPZ(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ReadNPZFrom(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		for k, a := range m {
			if err := a.Check(); err != nil {
				t.Fatalf("array %s: %v", k, err)
			}
			a.Float32()
		}
	})
}
