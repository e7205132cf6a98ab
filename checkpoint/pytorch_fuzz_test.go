package checkpoint

import (
	"archive/zip"
	"bytes"
	"os"
	"testing"
)

// FuzzPyTorch feeds whole torch.save files (zip and legacy) to the reader.
// The seed corpus (testdata/fuzz/FuzzPyTorch) adds a wrapped state_dict
// with a global among its entries.
func FuzzPyTorch(f *testing.F) {
	for _, p := range []string{"testdata/tiny.pt", "testdata/tiny_legacy.pt"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodePyTorch(b)
		if err != nil {
			return
		}
		for k, x := range c.Tensors {
			if err := x.Check(); err != nil {
				t.Fatalf("tensor %q fails Check: %v", k, err)
			}
		}
		for i := 1; i < len(c.Ignored); i++ {
			if c.Ignored[i-1].Key > c.Ignored[i].Key {
				t.Fatalf("Ignored not sorted: %v", c.Ignored)
			}
		}
	})
}

// FuzzPickle feeds the pickle reader directly (the data.pkl of tiny.pt as seed),
// with storages that always resolve, so the fuzzer reaches tensor rebuilding.
func FuzzPickle(f *testing.F) {
	b, err := os.ReadFile("testdata/tiny.pt")
	if err != nil {
		f.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		f.Fatal(err)
	}
	for _, zf := range zr.File {
		if bytes.HasSuffix([]byte(zf.Name), []byte("/data.pkl")) {
			d, err := readZipFile(zf, 1<<20)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(d)
		}
	}
	f.Add([]byte("\x80\x02}q\x00(X\x05\x00\x00\x00epochK\x01u."))
	f.Fuzz(func(t *testing.T, b []byte) {
		budget := materializeBudget(len(b))
		pl := func(pid any) (any, error) {
			cls, _, n, _, err := storageID(pid)
			if err != nil {
				return nil, err
			}
			if n > 1<<16 {
				n = 1 << 16
			}
			return &storage{dtype: cls.dtype, numel: n, data: make([]byte, n*int64(cls.dtype.Size())), budget: &budget}, nil
		}
		obj, _, err := unpickle(b, findClass, pl)
		if err != nil {
			return
		}
		sd, err := StateDict(obj)
		if err != nil {
			return
		}
		for k, x := range sd {
			if err := x.Check(); err != nil {
				t.Fatalf("tensor %q fails Check: %v", k, err)
			}
		}
	})
}

func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecodePyTorchErrors(t *testing.T) {
	// A storage record shorter than the pickle declares.
	tiny, err := os.ReadFile("testdata/tiny.pt")
	if err != nil {
		t.Fatal(err)
	}
	zr, _ := zip.NewReader(bytes.NewReader(tiny), int64(len(tiny)))
	short := map[string]string{}
	for _, f := range zr.File {
		d, _ := readZipFile(f, 1<<20)
		if bytes.HasSuffix([]byte(f.Name), []byte("/data/0")) {
			d = d[:len(d)-4]
		}
		short[f.Name] = string(d)
	}
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"text", []byte("hello"), "not a PyTorch checkpoint"},
		{"torchscript", zipOf(t, map[string]string{"m/data.pkl": "\x80\x02}.", "m/constants.pkl": "\x80\x02)."}), "TorchScript"},
		{"no data.pkl", zipOf(t, map[string]string{"m/other": "x"}), "no <name>/data.pkl"},
		{"missing storage", zipOf(t, map[string]string{"m/data.pkl": pickleWithStorage("9")}), "no record m/data/9"},
		{"short storage", zipOf(t, short), "holds"},
		{"no magic", []byte("\x80\x02K\x01."), "magic number"},
	}
	for _, c := range cases {
		_, err := DecodePyTorch(c.b)
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(c.want)) {
			t.Errorf("%s: error %v; want one containing %q", c.name, err, c.want)
		}
	}
}

// pickleWithStorage is {'w': _rebuild_tensor_v2(storage key, 0, (1,), (1,), False, OrderedDict())}.
func pickleWithStorage(key string) string {
	return "\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n(" +
		"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX" + string(rune(len(key))) + "\x00\x00\x00" + key + "X\x03\x00\x00\x00cpuK\x01tQ" +
		"K\x00K\x01\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtRs."
}
