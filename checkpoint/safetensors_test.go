package checkpoint

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// rawSafetensors builds a file from a header string and a data buffer.
func rawSafetensors(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

func TestSafetensorsRoundTrip(t *testing.T) {
	in := map[string]Tensor{
		"f32":    FromFloat32([]int64{2, 3}, []float32{1, 2, 3, 4, 5, 6}),
		"f16":    {DType: F16, Shape: []int64{2}, Data: []byte{0x00, 0x3c, 0x00, 0xc0}}, // 1, -2
		"bf16":   {DType: BF16, Shape: []int64{1}, Data: []byte{0x80, 0x3f}},            // 1
		"f64":    {DType: F64, Shape: []int64{1}, Data: binary.LittleEndian.AppendUint64(nil, 0x3ff8000000000000)},
		"i64":    {DType: I64, Shape: []int64{}, Data: binary.LittleEndian.AppendUint64(nil, 1<<40)},
		"empty":  {DType: F32, Shape: []int64{0, 4}, Data: []byte{}},
		"scalar": FromFloat32(nil, []float32{7}),
	}
	b, err := EncodeSafetensors(in, map[string]string{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	if n := binary.LittleEndian.Uint64(b); n%8 != 0 {
		t.Errorf("header length %d is not padded to 8", n)
	}
	out, meta, err := DecodeSafetensors(b)
	if err != nil {
		t.Fatal(err)
	}
	if meta["k"] != "v" || len(out) != len(in) {
		t.Fatalf("decoded %d tensors, metadata %v", len(out), meta)
	}
	for k, w := range in {
		g := out[k]
		if g.DType != w.DType || !slices.Equal(g.Shape, w.Shape) && len(w.Shape)+len(g.Shape) > 0 || string(g.Data) != string(w.Data) {
			t.Errorf("%s = %+v; want %+v", k, g, w)
		}
	}
	f16, _ := out["f16"].Float32s()
	bf16, _ := out["bf16"].Float32s()
	f64, _ := out["f64"].Float32s()
	i64, _ := out["i64"].Int64s()
	if !slices.Equal(f16, []float32{1, -2}) || bf16[0] != 1 || f64[0] != 1.5 || i64[0] != 1<<40 {
		t.Errorf("decoded values f16 %v bf16 %v f64 %v i64 %v", f16, bf16, f64, i64)
	}
	if _, err := out["i64"].Float32s(); err == nil {
		t.Error("Float32s of an I64 tensor gave no error")
	}
	if _, err := EncodeSafetensors(map[string]Tensor{"x": {DType: F32, Shape: []int64{3}, Data: make([]byte, 8)}}, nil); err == nil {
		t.Error("encoding a tensor with too little data gave no error")
	}
	if _, err := EncodeSafetensors(map[string]Tensor{"__metadata__": FromFloat32(nil, []float32{1})}, nil); err == nil {
		t.Error("encoding a tensor named __metadata__ gave no error")
	}
}

func TestSafetensorsPythonFile(t *testing.T) {
	ts, meta, err := ReadSafetensors("testdata/plain.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if meta["source"] != "checkpoint/testdata/gen.py" || ts["bn1.num_batches_tracked"].DType != I64 {
		t.Errorf("metadata %v, num_batches_tracked %v", meta, ts["bn1.num_batches_tracked"].DType)
	}
	// Our encoder writes the same bytes as the hand-written Python one.
	b, err := EncodeSafetensors(ts, meta)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile("testdata/plain.safetensors")
	if string(b) != string(want) {
		t.Error("EncodeSafetensors differs from gen.py's file")
	}
}

func TestSafetensorsErrors(t *testing.T) {
	four := make([]byte, 4)
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"short", []byte{1, 2, 3}, "shorter than"},
		{"header past end", rawSafetensors(`{}`, nil)[:9], "exceeds the file"},
		{"huge header", binary.LittleEndian.AppendUint64(nil, 1<<40), "exceeds"},
		{"not an object", rawSafetensors(`[]`, nil), "not a JSON object"},
		{"bad json", rawSafetensors(`{"a":`, nil), "header"},
		{"trailing", rawSafetensors(`{} x`, nil), "after the JSON"},
		{"duplicate", rawSafetensors(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, four), "duplicate key"},
		{"dtype", rawSafetensors(`{"a":{"dtype":"C64","shape":[1],"data_offsets":[0,4]}}`, four), "unsupported dtype"},
		{"no shape", rawSafetensors(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, four), "no shape"},
		{"negative dim", rawSafetensors(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, four), "negative"},
		{"offsets", rawSafetensors(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}`, four), "data_offsets"},
		{"past buffer", rawSafetensors(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}}`, four), "outside"},
		{"size", rawSafetensors(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, four), "needs 2 elements"},
		{"overflow", rawSafetensors(`{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]}}`, four), "too large"},
		{"hole", rawSafetensors(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}`, four), "hole"},
		{"overlap", rawSafetensors(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}`, four), "overlap"},
		{"uncovered", rawSafetensors(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}`, four), "cover"},
		{"metadata", rawSafetensors(`{"__metadata__":{"a":1}}`, nil), "__metadata__"},
	}
	for _, c := range cases {
		_, _, err := DecodeSafetensors(c.b)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v; want one containing %q", c.name, err, c.want)
		}
	}
}

func TestWriteSafetensorsAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "w.safetensors")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := map[string]Tensor{"x": {DType: "X", Data: nil}}
	if err := WriteSafetensors(p, bad, nil); err == nil {
		t.Fatal("writing an invalid tensor gave no error")
	}
	if b, _ := os.ReadFile(p); string(b) != "old" {
		t.Error("a failed write changed the file")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("a failed write left %d files", len(ents))
	}
}

func FuzzSafetensors(f *testing.F) {
	b, _ := EncodeSafetensors(map[string]Tensor{
		"a": FromFloat32([]int64{2}, []float32{1, 2}),
		"b": {DType: BF16, Shape: []int64{1, 1}, Data: []byte{0x80, 0x3f}},
	}, map[string]string{"k": "v"})
	f.Add(b)
	f.Add(rawSafetensors(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}  `, make([]byte, 4)))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, meta, err := DecodeSafetensors(b)
		if err != nil {
			return
		}
		for k, x := range ts {
			if err := x.Check(); err != nil {
				t.Fatalf("decoded tensor %q fails Check: %v", k, err)
			}
		}
		// What decodes must re-encode and decode to the same tensors.
		again, err := EncodeSafetensors(ts, meta)
		if err != nil {
			t.Fatal(err)
		}
		ts2, _, err := DecodeSafetensors(again)
		if err != nil || len(ts2) != len(ts) {
			t.Fatalf("re-decoding: %v", err)
		}
	})
}

// The header codec on its own, as streaming writers and readers use it,
// makes the same file as EncodeSafetensors and reads back the same layout.
func TestSafetensorsHeaderStreaming(t *testing.T) {
	ts := map[string]Tensor{
		"b": FromFloat32([]int64{3}, []float32{1, 2, 3}),
		"a": {DType: BF16, Shape: []int64{1, 2}, Data: []byte{0x80, 0x3f, 0, 0}},
	}
	want, err := EncodeSafetensors(ts, map[string]string{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	entries := []SafetensorsEntry{{Name: "a", DType: BF16, Shape: []int64{1, 2}}, {Name: "b", DType: F32, Shape: []int64{3}}}
	h, err := EncodeSafetensorsHeader(entries, map[string]string{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	got := append(append(h, ts["a"].Data...), ts["b"].Data...)
	if string(got) != string(want) {
		t.Errorf("header + data =\n%q\nwant EncodeSafetensors's\n%q", got, want)
	}
	if entries[0].Begin != 0 || entries[0].End != 4 || entries[1].Begin != 4 || entries[1].End != 16 {
		t.Errorf("EncodeSafetensorsHeader set ranges %+v; want [0,4) and [4,16)", entries)
	}
	r := strings.NewReader(string(got))
	back, meta, err := ReadSafetensorsHeader(r, int64(len(got)))
	if err != nil || meta["k"] != "v" || len(back) != 2 || back[1].Name != "b" || back[1].Begin != 4 {
		t.Fatalf("ReadSafetensorsHeader = %+v, %v, %v; want a then b", back, meta, err)
	}
	if r.Len() != 16 {
		t.Errorf("ReadSafetensorsHeader left %d bytes unread; want the 16 data bytes", r.Len())
	}
	for _, bad := range [][]SafetensorsEntry{
		{{Name: "x", DType: "F8", Shape: []int64{1}}},
		{{Name: "x", DType: F32, Shape: []int64{-1}}},
		{{Name: "x", DType: F32, Shape: []int64{1 << 62}}},
		{{Name: "x", DType: F32}, {Name: "x", DType: F32}},
		{{Name: "__metadata__", DType: F32}},
	} {
		if _, err := EncodeSafetensorsHeader(bad, nil); err == nil {
			t.Errorf("EncodeSafetensorsHeader(%+v) succeeded; want an error", bad)
		}
	}
}
