package npy

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// header builds a .npy preamble by hand, the way NumPy lays it out, so the
// tests do not depend on Write.
func header(version byte, dict string) []byte {
	prelen := 10
	if version > 1 {
		prelen = 12
	}
	total := prelen + len(dict) + 1
	dict += strings.Repeat(" ", (64-total%64)%64) + "\n"
	b := []byte{0x93, 'N', 'U', 'M', 'P', 'Y', version, 0}
	if version == 1 {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(dict)))
	} else {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(dict)))
	}
	return append(b, dict...)
}

func encode(t testing.TB, a *Array) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, a); err != nil {
		t.Fatalf("Write(%s %v): %v", a.DType, a.Shape, err)
	}
	return buf.Bytes()
}

func TestRoundTripDTypes(t *testing.T) {
	le := binary.LittleEndian
	cases := []struct {
		dtype string
		data  []byte
		want  []float64
	}{
		{"b1", []byte{0, 1, 1}, []float64{0, 1, 1}},
		{"u1", []byte{0, 7, 255}, []float64{0, 7, 255}},
		{"i1", []byte{0x80, 0xff, 0x7f}, []float64{-128, -1, 127}},
		{"i2", le.AppendUint16(le.AppendUint16(le.AppendUint16(nil, 0x8000), 0xffff), 300), []float64{-32768, -1, 300}},
		{"u2", le.AppendUint16(le.AppendUint16(le.AppendUint16(nil, 0xffff), 1), 300), []float64{65535, 1, 300}},
		{"i4", le.AppendUint32(le.AppendUint32(le.AppendUint32(nil, 0x80000000), 0xffffffff), 7), []float64{-2147483648, -1, 7}},
		{"u4", le.AppendUint32(le.AppendUint32(le.AppendUint32(nil, 0xffffffff), 0), 7), []float64{4294967295, 0, 7}},
		{"i8", le.AppendUint64(le.AppendUint64(le.AppendUint64(nil, 1<<63), math.MaxUint64), 7), []float64{-(1 << 63), -1, 7}},
		{"u8", le.AppendUint64(le.AppendUint64(le.AppendUint64(nil, 1<<40), 0), 7), []float64{1 << 40, 0, 7}},
		{"f2", le.AppendUint16(le.AppendUint16(le.AppendUint16(nil, 0x3c00), 0xc000), 0x3800), []float64{1, -2, 0.5}},
		{"f4", le.AppendUint32(le.AppendUint32(le.AppendUint32(nil, math.Float32bits(1.5)), math.Float32bits(-0.25)), math.Float32bits(3)), []float64{1.5, -0.25, 3}},
		{"f8", le.AppendUint64(le.AppendUint64(le.AppendUint64(nil, math.Float64bits(1e300)), math.Float64bits(-0.1)), math.Float64bits(3)), []float64{1e300, -0.1, 3}},
	}
	for _, c := range cases {
		t.Run(c.dtype, func(t *testing.T) {
			in := &Array{DType: c.dtype, Shape: []int{3}, Data: c.data}
			got, err := Read(bytes.NewReader(encode(t, in)))
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if !reflect.DeepEqual(got, in) {
				t.Fatalf("Read(Write(a)) = %+v; want %+v", got, in)
			}
			if f := got.Float64(); !reflect.DeepEqual(f, c.want) {
				t.Errorf("Float64() = %v; want %v", f, c.want)
			}
			f32 := got.Float32()
			for i, w := range c.want {
				if f32[i] != float32(w) {
					t.Errorf("Float32()[%d] = %v; want %v", i, f32[i], float32(w))
				}
			}
			if got.IsFloat() != (c.dtype[0] == 'f') {
				t.Errorf("IsFloat() = %v for %s", got.IsFloat(), c.dtype)
			}
		})
	}
}

func TestInt64(t *testing.T) {
	le := binary.LittleEndian
	cases := []struct {
		name    string
		a       *Array
		want    []int64
		wantErr string
	}{
		{"i8 extremes", FromInt64([]int64{math.MinInt64, -1, math.MaxInt64}, 3), []int64{math.MinInt64, -1, math.MaxInt64}, ""},
		{"u8 below 2^63 is exact", &Array{DType: "u8", Shape: []int{1}, Data: le.AppendUint64(nil, 1<<62+1)}, []int64{1<<62 + 1}, ""},
		{"u8 beyond int64", &Array{DType: "u8", Shape: []int{2}, Data: le.AppendUint64(le.AppendUint64(nil, 1), 1<<63)}, nil, "element 1"},
		{"i4", &Array{DType: "i4", Shape: []int{2}, Data: le.AppendUint32(le.AppendUint32(nil, 0xfffffffe), 9)}, []int64{-2, 9}, ""},
		{"u1", FromUint8([]uint8{0, 200}, 2), []int64{0, 200}, ""},
		{"integral floats", FromFloat32([]float32{-3, 0, 9}, 3), []int64{-3, 0, 9}, ""},
		{"fraction", FromFloat64([]float64{1, 2.5}, 2), nil, "element 1 is 2.5"},
		{"NaN", FromFloat64([]float64{math.NaN()}, 1), nil, "element 0"},
		{"2^63 overflows", FromFloat64([]float64{1 << 63}, 1), nil, "not an int64"},
		{"-2^63 fits", FromFloat64([]float64{-(1 << 63)}, 1), []int64{math.MinInt64}, ""},
	}
	for _, c := range cases {
		got, err := c.a.Int64()
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: Int64() error = %v; want one containing %q", c.name, err, c.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: Int64() = %v, %v; want %v", c.name, got, err, c.want)
		}
	}
}

// TestWriteMatchesNumPy checks the exact bytes of numpy.save(np.arange(3)).
func TestWriteMatchesNumPy(t *testing.T) {
	got := encode(t, FromInt64([]int64{0, 1, 2}, 3))
	want := header(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }")
	for i := range int64(3) {
		want = binary.LittleEndian.AppendUint64(want, uint64(i))
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Write(arange(3)) = %q; want %q (numpy.save)", got, want)
	}
	if len(got)-24 != 128 {
		t.Errorf("data starts at byte %d; want 128 (64-byte aligned, as NumPy)", len(got)-24)
	}
}

func TestShapes(t *testing.T) {
	cases := []struct {
		name  string
		a     *Array
		shape string
	}{
		{"scalar", FromFloat64([]float64{2.5}), "()"},
		{"1-D", FromFloat32([]float32{1, 2, 3, 4, 5}, 5), "(5,)"},
		{"empty 1-D", FromFloat32(nil, 0), "(0,)"},
		{"empty 2-D", FromUint8(nil, 2, 0), "(2, 0)"},
		{"4-D", FromUint8(make([]uint8, 24), 1, 2, 3, 4), "(1, 2, 3, 4)"},
	}
	for _, c := range cases {
		b := encode(t, c.a)
		if !bytes.Contains(b, []byte("'shape': "+c.shape+", }")) {
			t.Errorf("%s: header %q does not hold shape %s", c.name, b[10:], c.shape)
		}
		got, err := Read(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: Read: %v", c.name, err)
		}
		if !reflect.DeepEqual(got.Shape, c.a.Shape) || !bytes.Equal(got.Data, c.a.Data) || got.Len() != c.a.Len() {
			t.Errorf("%s: Read = shape %v, %d bytes; want %v, %d bytes", c.name, got.Shape, len(got.Data), c.a.Shape, len(c.a.Data))
		}
	}
	if n := FromFloat64([]float64{1}).Len(); n != 1 {
		t.Errorf("scalar Len() = %d; want 1", n)
	}
}

func TestReadBigEndian(t *testing.T) {
	be := binary.BigEndian
	cases := []struct {
		descr string
		data  []byte
		want  []float64
	}{
		{">i2", be.AppendUint16(be.AppendUint16(nil, 0xfffe), 0x0102), []float64{-2, 258}},
		{">u4", be.AppendUint32(be.AppendUint32(nil, 0x01020304), 5), []float64{0x01020304, 5}},
		{">i8", be.AppendUint64(be.AppendUint64(nil, math.MaxUint64), 1<<40), []float64{-1, 1 << 40}},
		{">f2", be.AppendUint16(be.AppendUint16(nil, 0x3c00), 0xc400), []float64{1, -4}},
		{">f4", be.AppendUint32(be.AppendUint32(nil, math.Float32bits(0.75)), math.Float32bits(-8)), []float64{0.75, -8}},
		{">f8", be.AppendUint64(be.AppendUint64(nil, math.Float64bits(math.Pi)), math.Float64bits(-1e-300)), []float64{math.Pi, -1e-300}},
		{"|u1", []byte{9, 250}, []float64{9, 250}},
		{"=i4", binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, 3), 0xffffffff), []float64{3, -1}},
	}
	for _, c := range cases {
		b := append(header(1, "{'descr': '"+c.descr+"', 'fortran_order': False, 'shape': (2,), }"), c.data...)
		a, err := Read(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: Read: %v", c.descr, err)
		}
		if a.DType != c.descr[1:] {
			t.Errorf("%s: DType = %q; want %q", c.descr, a.DType, c.descr[1:])
		}
		if got := a.Float64(); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: Float64() = %v; want %v", c.descr, got, c.want)
		}
		// Written back little-endian, the values survive.
		back, err := Read(bytes.NewReader(encode(t, a)))
		if err != nil || !reflect.DeepEqual(back.Float64(), c.want) {
			t.Errorf("%s: rewritten = %v, %v; want %v", c.descr, back.Float64(), err, c.want)
		}
	}
}

func TestReadFortran(t *testing.T) {
	// C-order values are 100*i + 10*j + k for shape (2, 3, 4); Fortran order
	// stores them with the first index varying fastest.
	shape := []int{2, 3, 4}
	var want, fdata []int64
	for i := range 2 {
		for j := range 3 {
			for k := range 4 {
				want = append(want, int64(100*i+10*j+k))
			}
		}
	}
	for k := range 4 {
		for j := range 3 {
			for i := range 2 {
				fdata = append(fdata, int64(100*i+10*j+k))
			}
		}
	}
	for _, descr := range []string{"<i8", ">i8"} {
		var order binary.AppendByteOrder = binary.LittleEndian
		if descr[0] == '>' {
			order = binary.BigEndian
		}
		b := header(1, "{'descr': '"+descr+"', 'fortran_order': True, 'shape': (2, 3, 4), }")
		for _, v := range fdata {
			b = order.AppendUint64(b, uint64(v))
		}
		a, err := Read(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: Read: %v", descr, err)
		}
		got, _ := a.Int64()
		if !reflect.DeepEqual(a.Shape, shape) || !reflect.DeepEqual(got, want) {
			t.Errorf("%s Fortran: Read = %v %v; want %v %v", descr, a.Shape, got, shape, want)
		}
	}
	// A Fortran-order vector is the same as a C-order one.
	b := append(header(1, "{'descr': '|u1', 'fortran_order': True, 'shape': (3,), }"), 1, 2, 3)
	a, err := Read(bytes.NewReader(b))
	if err != nil || !bytes.Equal(a.Data, []byte{1, 2, 3}) {
		t.Errorf("Fortran 1-D: Read = %v, %v; want [1 2 3]", a, err)
	}
}

func TestReadVersions(t *testing.T) {
	for _, v := range []byte{1, 2, 3} {
		b := append(header(v, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"),
			binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, math.Float32bits(1)), math.Float32bits(2))...)
		a, err := Read(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("version %d: Read: %v", v, err)
		}
		if got := a.Float32(); !reflect.DeepEqual(got, []float32{1, 2}) {
			t.Errorf("version %d: Float32() = %v; want [1 2]", v, got)
		}
	}
	// Python 2 era headers wrote long dimensions as 3L.
	b := append(header(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (1L, 2L), }"), 5, 6)
	if a, err := Read(bytes.NewReader(b)); err != nil || !reflect.DeepEqual(a.Shape, []int{1, 2}) {
		t.Errorf("shape (1L, 2L): Read = %v, %v; want shape [1 2]", a, err)
	}
}

func TestWriteLongHeaderUsesVersion2(t *testing.T) {
	shape := make([]int, 22000) // 22000 × "1, " pass 64 KiB
	for i := range shape {
		shape[i] = 1
	}
	a := FromUint8([]uint8{42}, shape...)
	b := encode(t, a)
	if b[6] != 2 {
		t.Fatalf("format version = %d; want 2 for a %d-byte header", b[6], len(b))
	}
	if (len(b)-1)%64 != 0 {
		t.Errorf("data starts at %d; want a multiple of 64", len(b)-1)
	}
	got, err := Read(bytes.NewReader(b))
	if err != nil || len(got.Shape) != len(shape) || got.Data[0] != 42 {
		t.Errorf("Read(version 2) = %d dims, %v; want %d dims", len(got.Shape), err, len(shape))
	}
}

// TestReadConsumesOneArray reads two arrays written back to back, as
// repeated numpy.save calls on one file handle produce.
func TestReadConsumesOneArray(t *testing.T) {
	var buf bytes.Buffer
	first := FromFloat32([]float32{1, 2}, 2)
	second := FromInt64([]int64{7}, 1, 1)
	if err := Write(&buf, first); err != nil {
		t.Fatal(err)
	}
	if err := Write(&buf, second); err != nil {
		t.Fatal(err)
	}
	for i, want := range []*Array{first, second} {
		got, err := Read(&buf)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("array %d: Read = %v, %v; want %v", i, got, err, want)
		}
	}
	if _, err := Read(&buf); err == nil {
		t.Error("Read at end of stream: no error")
	}
}

func TestReadErrors(t *testing.T) {
	dict := func(d string) []byte { return header(1, d) }
	valid := append(dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }"), make([]byte, 16)...)
	v2 := header(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }")
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "reading magic"},
		{"short magic", []byte("\x93NUM"), "reading magic"},
		{"bad magic", []byte("PK\x03\x04xxxxxxxxxxxxxxxxxx"), "bad magic"},
		{"version 4", []byte("\x93NUMPY\x04\x00\x10\x00"), "unsupported format version 4.0"},
		{"no header length", []byte("\x93NUMPY\x01\x00\x10"), "header length"},
		{"header length too large", []byte("\x93NUMPY\x02\x00\xff\xff\xff\x7f"), "too large"},
		{"truncated header", valid[:40], "reading header"},
		{"header not a dict", dict("descr: <f4"), "malformed header"},
		{"no descr", dict("{'fortran_order': False, 'shape': (2,), }"), "no string descr"},
		{"structured descr", dict("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }"), "no string descr"},
		{"complex", dict("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }"), "unsupported dtype"},
		{"unicode", dict("{'descr': '<U3', 'fortran_order': False, 'shape': (2,), }"), "unsupported dtype"},
		{"bad byte order", dict("{'descr': '!f4', 'fortran_order': False, 'shape': (2,), }"), "unsupported dtype"},
		{"empty descr", dict("{'descr': '', 'fortran_order': False, 'shape': (2,), }"), "malformed descr"},
		{"no fortran_order", dict("{'descr': '<f4', 'shape': (2,), }"), "fortran_order"},
		{"no shape", dict("{'descr': '<f4', 'fortran_order': False, }"), "no shape"},
		{"unclosed shape", dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2, }"), "malformed shape"},
		{"bad dimension", dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }"), "bad dimension"},
		{"negative dimension", dict("{'descr': '<f4', 'fortran_order': False, 'shape': (-2, -2), }"), "negative dimension"},
		{"huge shape", dict("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000, 1000000000), }"), "too large"},
		{"overflowing dimension", dict("{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,), }"), "bad dimension"},
		{"truncated data", valid[:len(valid)-1], "data truncated"},
		{"no data", valid[:len(valid)-16], "data truncated"},
		{"truncated v2 data", v2, "data truncated"},
	}
	for _, c := range cases {
		a, err := Read(bytes.NewReader(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Read = %v, %v; want an error containing %q", c.name, a, err, c.want)
		}
	}
}

func TestReadFileErrorsNamePath(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.npy")
	b := encode(t, FromFloat32(make([]float32, 100), 10, 10))
	if err := os.WriteFile(path, b[:len(b)-3], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadFile(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "needs 400 bytes, stream has 397") {
		t.Errorf("ReadFile(truncated) error = %v; want one naming %s and the missing bytes", err, path)
	}
	if _, err := ReadFile(filepath.Join(dir, "missing.npy")); err == nil {
		t.Error("ReadFile(missing) = nil error")
	}
}

func TestWriteRejectsBadArrays(t *testing.T) {
	cases := []struct {
		name string
		a    *Array
		want string
	}{
		{"nil", nil, "nil array"},
		{"unknown dtype", &Array{DType: "c8", Shape: []int{1}, Data: make([]byte, 8)}, "unsupported dtype"},
		{"short data", &Array{DType: "f4", Shape: []int{2}, Data: make([]byte, 7)}, "needs 8"},
		{"negative dims", &Array{DType: "u1", Shape: []int{-1, -2}, Data: make([]byte, 2)}, "negative dimension"},
	}
	for _, c := range cases {
		if err := Write(io.Discard, c.a); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Write error = %v; want one containing %q", c.name, err, c.want)
		}
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.npy")
	a := FromFloat32([]float32{1, 2, 3}, 3)
	if err := WriteFile(path, a); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("new file mode = %v; want 0644", fi.Mode().Perm())
	}
	bad := &Array{DType: "f4", Shape: []int{9}, Data: nil}
	if err := WriteFile(path, bad); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("WriteFile(bad array) error = %v; want one naming %s", err, path)
	}
	got, err := ReadFile(path)
	if err != nil || !reflect.DeepEqual(got, a) {
		t.Errorf("after failed overwrite: ReadFile = %v, %v; want the old array", got, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries after a failed write; want 1 (no temporary files)", len(entries))
	}
	if err := WriteFile(filepath.Join(dir, "no", "such", "dir.npy"), a); err == nil {
		t.Error("WriteFile into a missing folder: nil error")
	}
}

func TestNPZ(t *testing.T) {
	dir := t.TempDir()
	arrays := map[string]*Array{
		"x": FromUint8([]uint8{1, 2, 3, 4, 5, 6}, 2, 1, 3),
		"y": FromInt64([]int64{0, 9}, 2),
		"s": FromFloat64([]float64{0.5}),
	}
	for _, c := range []struct {
		name  string
		write func(string, map[string]*Array) error
	}{{"stored", WriteNPZ}, {"deflated", WriteNPZCompressed}} {
		path := filepath.Join(dir, c.name+".npz")
		if err := c.write(path, arrays); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got, err := ReadNPZ(path)
		if err != nil {
			t.Fatalf("%s: ReadNPZ: %v", c.name, err)
		}
		if !reflect.DeepEqual(got, arrays) {
			t.Errorf("%s: ReadNPZ = %v; want %v", c.name, got, arrays)
		}
		zr, err := zip.OpenReader(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range zr.File {
			want := map[string]uint16{"stored": zip.Store, "deflated": zip.Deflate}[c.name]
			if f.Method != want {
				t.Errorf("%s: entry %s method %d; want %d", c.name, f.Name, f.Method, want)
			}
		}
		zr.Close()
	}
}

// TestReadNPZDeflatedByZip reads an archive written directly with
// archive/zip, as numpy.savez_compressed lays it out, with an extra non-array
// entry that must be skipped.
func TestReadNPZDeflatedByZip(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range map[string][]byte{
		"x.npy":      encode(t, FromFloat32([]float32{0.25, 0.5}, 1, 2)),
		"y.npy":      encode(t, FromInt64([]int64{3}, 1)),
		"README.txt": []byte("not an array"),
	} {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "d.npz")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := ReadNPZ(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || !reflect.DeepEqual(m["x"].Float32(), []float32{0.25, 0.5}) {
		t.Errorf("ReadNPZ = %v; want x=[0.25 0.5] and y only", m)
	}
}

func TestReadNPZErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	zipOf := func(method uint16, files ...[2]string) []byte {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for _, f := range files {
			w, _ := zw.CreateHeader(&zip.FileHeader{Name: f[0], Method: method})
			w.Write([]byte(f[1]))
		}
		zw.Close()
		return buf.Bytes()
	}
	good := zipOf(zip.Deflate, [2]string{"x.npy", string(encode(t, FromFloat64(make([]float64, 50), 50)))})
	corrupt := bytes.Clone(good)
	corrupt[60] ^= 0xff // inside the deflated x.npy
	cases := []struct {
		name string
		path string
		want string
	}{
		{"not a zip", write("a.npz", []byte("\x93NUMPY plain npy")), "not a readable zip archive"},
		{"truncated zip", write("b.npz", good[:len(good)-30]), "not a readable zip archive"},
		{"bad array inside", write("c.npz", zipOf(zip.Store, [2]string{"x.npy", "\x93NUMPY\x01\x00garbage"})), "x.npy"},
		{"corrupt deflate", write("d.npz", corrupt), "x.npy"},
		{"duplicate", write("e.npz", zipOf(zip.Store, [2]string{"x.npy", string(encode(t, FromUint8(nil, 0)))}, [2]string{"x.npy", string(encode(t, FromUint8(nil, 0)))})), "duplicate"},
		{"missing", filepath.Join(dir, "nope.npz"), "nope.npz"},
	}
	for _, c := range cases {
		m, err := ReadNPZ(c.path)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: ReadNPZ = %v, %v; want an error containing %q", c.name, m, err, c.want)
		}
		if err != nil && !strings.Contains(err.Error(), c.path) {
			t.Errorf("%s: error %q does not name the file", c.name, err)
		}
	}
}

const fixtures = "../testdata/fixtures"

func fixture(t *testing.T, rel string) string {
	t.Helper()
	p := filepath.Join(fixtures, rel)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("fixture %s missing from the repository: %v", p, err)
	}
	return p
}

// TestFixtureNPY reads a file written by numpy.save and checks that Write
// reproduces it byte for byte.
func TestFixtureNPY(t *testing.T) {
	p := fixture(t, "edge/case0_x.npy")
	a, err := ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if a.DType != "f4" || !reflect.DeepEqual(a.Shape, []int{1000, 1}) {
		t.Fatalf("%s: %s %v; want f4 [1000 1]", p, a.DType, a.Shape)
	}
	for i, v := range a.Float32() {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("%s: element %d is %v", p, i, v)
		}
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := encode(t, a); !bytes.Equal(got, raw) {
		t.Errorf("Write(ReadFile(%s)) differs from the file numpy wrote", p)
	}
}

// TestFixtureNPZ reads an archive written by numpy.savez_compressed.
func TestFixtureNPZ(t *testing.T) {
	p := fixture(t, "attacks/fmnist_test_5000_5300.npz")
	m, err := ReadNPZ(p)
	if err != nil {
		t.Fatal(err)
	}
	x, y := m["x"], m["y"]
	if x == nil || y == nil || len(m) != 2 {
		t.Fatalf("%s: keys %v; want x and y", p, m)
	}
	if x.DType != "u1" || !reflect.DeepEqual(x.Shape, []int{300, 1, 28, 28}) {
		t.Errorf("%s: x is %s %v; want u1 [300 1 28 28]", p, x.DType, x.Shape)
	}
	if y.DType != "i8" || !reflect.DeepEqual(y.Shape, []int{300}) {
		t.Errorf("%s: y is %s %v; want i8 [300]", p, y.DType, y.Shape)
	}
	labels, err := y.Int64()
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range labels {
		if l < 0 || l > 9 {
			t.Fatalf("%s: y[%d] = %d; want a Fashion-MNIST class 0..9", p, i, l)
		}
	}
}

// FuzzRead checks that Read never panics and that whatever it accepts is
// well formed and survives Write and Read unchanged.
func FuzzRead(f *testing.F) {
	f.Add(encode(f, FromFloat32([]float32{1, -2, 3.5}, 3)))
	f.Add(encode(f, FromInt64([]int64{1, 2, 3, 4}, 2, 2)))
	f.Add(encode(f, FromUint8([]uint8{1}, 1, 1, 1, 1)))
	f.Add(encode(f, FromFloat64([]float64{7})))
	f.Add(append(header(1, "{'descr': '>f2', 'fortran_order': True, 'shape': (2, 2), }"), 1, 2, 3, 4, 5, 6, 7, 8))
	f.Add(append(header(2, "{'descr': '<i2', 'fortran_order': False, 'shape': (3, 1), }"), 1, 0, 2, 0, 3, 0))
	f.Add(header(3, "{'descr': '|b1', 'fortran_order': False, 'shape': (0,), }"))
	f.Add(header(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }"))
	f.Add([]byte("\x93NUMPY\x01\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := Read(bytes.NewReader(b))
		if err != nil {
			return
		}
		if err := a.Check(); err != nil {
			t.Fatalf("Read returned a malformed array: %v", err)
		}
		a.Float32()
		a.Int64()
		back, err := Read(bytes.NewReader(encode(t, a)))
		if err != nil {
			t.Fatalf("Read(Write(a)): %v", err)
		}
		if !reflect.DeepEqual(back, a) {
			t.Fatalf("Read(Write(a)) = %+v; want %+v", back, a)
		}
	})
}
