package checkpoint

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// Protocol-2 pickle pieces, for checkpoints built in the test.
func pStr(s string) string {
	return "X" + string(binary.LittleEndian.AppendUint32(nil, uint32(len(s)))) + s
}

func pInt(n int64) string {
	if n >= -1<<31 && n < 1<<31 {
		return "J" + string(binary.LittleEndian.AppendUint32(nil, uint32(int32(n))))
	}
	return "\x8a\x08" + string(binary.LittleEndian.AppendUint64(nil, uint64(n)))
}

func pTuple(v ...int64) string {
	s := "("
	for _, x := range v {
		s += pInt(x)
	}
	return s + "t"
}

// pTensor is _rebuild_tensor_v2 of a float32 view (offset, size, stride)
// of storage key, declared to hold numel elements.
func pTensor(key string, numel, offset int64, size, stride []int64) string {
	return "ctorch._utils\n_rebuild_tensor_v2\n(" +
		"(" + pStr("storage") + "ctorch\nFloatStorage\n" + pStr(key) + pStr("cpu") + pInt(numel) + "tQ" +
		pInt(offset) + pTuple(size...) + pTuple(stride...) + "\x89ccollections\nOrderedDict\n)RtR"
}

// pDict is a dict of the given key, value-pickle pairs.
func pDict(kv ...string) string {
	s := "}("
	for i := 0; i < len(kv); i += 2 {
		s += pStr(kv[i]) + kv[i+1]
	}
	return s + "u"
}

// ptZip is a torch.save zip archive: m/data.pkl and the storage records
// (stored, as torch writes them).
func ptZip(t testing.TB, pkl string, records map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	names := []string{"m/data.pkl"}
	for k := range records {
		names = append(names, "m/data/"+k)
	}
	slices.Sort(names[1:])
	for _, n := range names {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: n, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		if n == "m/data.pkl" {
			w.Write([]byte("\x80\x02" + pkl + "."))
		} else {
			w.Write(records[strings.TrimPrefix(n, "m/data/")])
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeTemp(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Issue 12: a state_dict that also held non-tensor entries (here an
// os.system global) was imported without a word. Load lists every entry it
// leaves out.
func TestLoadListsIgnoredEntries(t *testing.T) {
	w := pTensor("0", 2, 0, []int64{2}, []int64{1})
	rec := map[string][]byte{"0": make([]byte, 8)}
	cases := []struct {
		name string
		pkl  string
		path string
		want []string
	}{
		{"flat", pDict("w", w, "evil", "cposix\nsystem\n", "bn.num_batches_tracked", pTensor("0", 2, 0, []int64{}, []int64{}), "n", "K\x03"), "",
			[]string{"bn.num_batches_tracked (tensor): " + CounterReason, "evil (class posix.system): " + NotTensorReason, "n (int): " + NotTensorReason}},
		{"wrapped", pDict("epoch", "K\x07", "state_dict", pDict("w", w, "_extra", "cposix\nsystem\n("+pStr("rm -rf /")+"tR")), "state_dict",
			[]string{"epoch (int): " + OutsideReason, "state_dict/_extra (posix.system): " + NotTensorReason}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ck, err := Load(writeTemp(t, "c.pt", ptZip(t, c.pkl, rec)))
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := ck.Tensors["w"]; !ok || len(ck.Tensors) != 1 {
				t.Errorf("Tensors = %v; want w only", ck.Tensors)
			}
			var got []string
			for _, ig := range ck.Ignored {
				got = append(got, ig.String())
			}
			if !slices.Equal(got, c.want) || ck.Path != c.path {
				t.Errorf("Ignored = %q at %q;\nwant %q at %q", got, ck.Path, c.want, c.path)
			}
		})
	}
}

// Many views of one storage used to be copied out each in full, so a
// small file could ask for any amount of memory (here stride-0 views that
// expand one element to 2^24 each, 40 of them: 2.5 GiB from 2 kB).
func TestPyTorchOverlappingViewsBounded(t *testing.T) {
	var kv []string
	for i := range 40 {
		kv = append(kv, "t"+string(rune('A'+i)), pTensor("0", 1, 0, []int64{1 << 24}, []int64{0}))
	}
	b := ptZip(t, pDict(kv...), map[string][]byte{"0": make([]byte, 4)})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := DecodePyTorch(b)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "overlap") {
		t.Errorf("DecodePyTorch = %v; want an error about overlapping views", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 512<<20 {
		t.Errorf("DecodePyTorch of %d bytes allocated %d bytes", len(b), got)
	}
}

// Storage element counts, offsets, sizes and strides that do not fit the
// storage's record, or overflow, are refused.
func TestPyTorchStorageSizes(t *testing.T) {
	rec := map[string][]byte{"0": make([]byte, 16)}
	cases := []struct {
		name, pkl, want string
	}{
		{"numel beyond the record", pDict("w", pTensor("0", 1<<40, 0, []int64{4}, []int64{1})), "record"},
		{"numel overflows bytes", pDict("w", pTensor("0", 1<<62, 0, []int64{4}, []int64{1})), "record"},
		{"offset past the storage", pDict("w", pTensor("0", 4, 1<<62, []int64{1}, []int64{1})), "exceeds"},
		{"stride past the storage", pDict("w", pTensor("0", 4, 0, []int64{2}, []int64{1 << 61})), "exceeds"},
		{"size overflows", pDict("w", pTensor("0", 4, 0, []int64{1 << 32, 1 << 32}, []int64{0, 0})), "too large"},
		{"huge size of stride 0", pDict("w", pTensor("0", 4, 0, []int64{1 << 30}, []int64{0})), "expands"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodePyTorch(ptZip(t, c.pkl, rec))
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), `"w"`) {
				t.Errorf("err = %v; want one naming tensor \"w\" and containing %q", err, c.want)
			}
		})
	}
	// A record whose zip entry declares more bytes than it holds.
	b := ptZip(t, pDict("w", pTensor("0", 4, 0, []int64{4}, []int64{1})), rec)
	i := bytes.LastIndex(b, []byte("m/data/0"))       // in the central directory
	binary.LittleEndian.PutUint32(b[i-46+24:], 1<<31) // uncompressed size
	if _, err := DecodePyTorch(b); err == nil {
		t.Errorf("record declaring 2 GiB in 16 bytes accepted")
	}
}

// Safetensors headers whose length or offsets lie are refused before
// anything is allocated.
func TestSafetensorsLyingHeader(t *testing.T) {
	hdrN := func(n uint64, json string) []byte {
		return append(binary.LittleEndian.AppendUint64(nil, n), json...)
	}
	hdr := func(json string) []byte { return hdrN(uint64(len(json)), json) }
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"length 2^64−1", hdrN(1<<64-1, "{}"), "exceeds"},
		{"length past the file", hdrN(100, "{}"), "exceeds"},
		{"offsets past the buffer", hdr(`{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`), "outside"},
		{"offsets near 2^63", hdr(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[9223372036854775800,9223372036854775804]}}`), "outside"},
		{"shape product overflows", hdr(`{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`), "too large"},
		{"shape vs offsets", hdr(`{"w":{"dtype":"F32","shape":[1073741824],"data_offsets":[0,0]}}`), "needs"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(writeTemp(t, "w.safetensors", c.b))
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "w.safetensors") {
				t.Errorf("err = %v; want one naming the file and containing %q", err, c.want)
			}
		})
	}
}

// A pickle can push many references to one large string with one byte
// each (DUP, BINGET); the unpickler's error messages print such a tuple
// with %#v, so 130 kB made a 130 MB message and 1 GB of allocations, and
// 2 MB would make a terabyte. scanPickle refuses such expansion up front.
func TestPickleExpansionBomb(t *testing.T) {
	big := pStr(strings.Repeat("a", 64<<10))
	cases := map[string]string{
		"DUP":        "(" + big + strings.Repeat("2", 2000) + "t)R.",
		"BINGET":     "(" + big + "q\x00" + strings.Repeat("h\x00", 2000) + "t)R.",
		"GET line":   "(" + big + "p7\n" + strings.Repeat("g7\n", 2000) + "t)R.",
		"DUP at POP": "(" + big + "K\x010" + strings.Repeat("2", 2000) + "t)R.",
	}
	for name, body := range cases {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := DecodePyTorch(ptZip(t, strings.TrimSuffix(body, "."), nil))
		runtime.ReadMemStats(&after)
		if err == nil || !strings.Contains(err.Error(), "expansion") || len(err.Error()) > 1000 {
			t.Errorf("%s: err = %.200v (%d bytes); want a short expansion-bomb error", name, err, len(fmt.Sprint(err)))
		}
		if got := after.TotalAlloc - before.TotalAlloc; got > 32<<20 {
			t.Errorf("%s: decoding a %d-byte pickle allocated %d bytes", name, len(body), got)
		}
	}
}
