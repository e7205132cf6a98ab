package dataset

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/semirobust/srtool/npy"
)

// pixel is the byte the generated files hold at pixel j of sample s.
func pixel(s, j int) byte { return byte(s*7 + j*3) }

func writeFile(t testing.TB, path string, b []byte) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// cifarBytes lays out records first..first+n-1 in the official binary
// format: the label bytes of each record, then 3072 pixel bytes.
func cifarBytes(first, n int, labels func(s int) []byte) []byte {
	var b []byte
	for s := first; s < first+n; s++ {
		b = append(b, labels(s)...)
		for j := range cifarPixels {
			b = append(b, pixel(s, j))
		}
	}
	return b
}

func cifar10Label(s int) []byte  { return []byte{byte(s % 10)} }
func cifar100Label(s int) []byte { return []byte{byte(s % 20), byte((s * 13) % 100)} }

// checkSamples checks that d holds generated samples first, first+1, … with
// the labels the generator gave them.
func checkSamples(t *testing.T, d *Dataset, first int, label func(s int) int64) {
	t.Helper()
	if err := d.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	for i := range d.Len() {
		x, y := d.Sample(i)
		s := first + i
		if y != label(s) {
			t.Fatalf("%s: label of sample %d = %d; want %d", d.Name, i, y, label(s))
		}
		for j, v := range x {
			if want := float32(pixel(s, j)) / 255; v != want {
				t.Fatalf("%s: sample %d pixel %d = %v; want %v", d.Name, i, j, v, want)
			}
		}
	}
}

// makeCIFAR10 writes a CIFAR-10 folder with train batches of 3, 2, 4, 1
// and 2 records (12 in all, numbered across the batches) and a test batch
// of 3 records numbered from 100.
func makeCIFAR10(t testing.TB, dir string) {
	s := 0
	for i, n := range []int{3, 2, 4, 1, 2} {
		writeFile(t, filepath.Join(dir, cifar10.train[i]), cifarBytes(s, n, cifar10Label))
		s += n
	}
	writeFile(t, filepath.Join(dir, "test_batch.bin"), cifarBytes(100, 3, cifar10Label))
}

func TestCIFAR10(t *testing.T) {
	dir := t.TempDir()
	makeCIFAR10(t, dir)
	nested := t.TempDir()
	makeCIFAR10(t, filepath.Join(nested, "cifar-10-batches-bin"))
	label := func(s int) int64 { return int64(s % 10) }
	cases := []struct {
		name  string
		dir   string
		opt   Options
		first int
		n     int
	}{
		{"test by default", dir, Options{}, 100, 3},
		{"test", dir, Options{Split: "test", N: 2}, 100, 2},
		{"train, all", dir, Options{Split: "train"}, 0, 12},
		{"train window across batches 1-3", dir, Options{Split: "train", Offset: 2, N: 6}, 2, 6},
		{"train window inside batch 3", dir, Options{Split: "train", Offset: 6, N: 2}, 6, 2},
		{"train N beyond the end", dir, Options{Split: "train", Offset: 10, N: 50}, 10, 2},
		{"archive folder", nested, Options{Split: "train", Offset: 9}, 9, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := LoadCIFAR10(c.dir, c.opt)
			if err != nil {
				t.Fatal(err)
			}
			if d.Len() != c.n || d.C != 3 || d.H != 32 || d.W != 32 || d.Classes != 10 {
				t.Fatalf("Len, C, H, W, Classes = %d, %d, %d, %d, %d; want %d, 3, 32, 32, 10", d.Len(), d.C, d.H, d.W, d.Classes, c.n)
			}
			if d.ClassNames[3] != "cat" {
				t.Errorf("ClassNames[3] = %q; want cat", d.ClassNames[3])
			}
			checkSamples(t, d, c.first, label)
		})
	}
	d, err := Load("cifar10:"+dir, Options{})
	if err != nil || d.Name != "cifar10:"+dir+" (test)" {
		t.Errorf("Load(cifar10:…) = %v, %v; want Name %q", d, err, "cifar10:"+dir+" (test)")
	}
}

func TestCIFAR100(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "train.bin"), cifarBytes(0, 5, cifar100Label))
	writeFile(t, filepath.Join(dir, "test.bin"), cifarBytes(50, 2, cifar100Label))
	fine := func(s int) int64 { return int64((s * 13) % 100) }
	d, err := LoadCIFAR100(dir, Options{Split: "train", Offset: 1})
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 4 || d.Classes != 100 || d.ClassNames != nil {
		t.Errorf("Len, Classes, ClassNames = %d, %d, %v; want 4, 100, nil", d.Len(), d.Classes, d.ClassNames)
	}
	checkSamples(t, d, 1, fine)

	names := make([]string, 100)
	for i := range names {
		names[i] = "class_" + string(rune('a'+i%26)) + string(rune('a'+i/26))
	}
	writeFile(t, filepath.Join(dir, "fine_label_names.txt"), []byte(strings.Join(names, "\n")+"\n"))
	d, err = Load("cifar100:"+dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkSamples(t, d, 50, fine)
	if !reflect.DeepEqual(d.ClassNames, names) {
		t.Errorf("ClassNames = %v; want those of fine_label_names.txt", d.ClassNames)
	}
}

func TestCIFARErrors(t *testing.T) {
	good := cifarBytes(0, 2, cifar10Label)
	badLabel := bytes.Clone(good)
	badLabel[3073] = 10 // label of record 1
	good100 := cifarBytes(0, 3, cifar100Label)
	badCoarse, badFine := bytes.Clone(good100), bytes.Clone(good100)
	badCoarse[2*3074] = 20
	badFine[3074+1] = 100
	cases := []struct {
		name  string
		file  string
		data  []byte
		load  func(string, Options) (*Dataset, error)
		opt   Options
		want  string
		noDir bool
	}{
		{"truncated record", "test_batch.bin", good[:len(good)-1], LoadCIFAR10, Options{}, "truncated record: 6145 bytes is 1 records and 3072 bytes", false},
		{"empty file", "test_batch.bin", nil, LoadCIFAR10, Options{}, "truncated record", false},
		{"label 10", "test_batch.bin", badLabel, LoadCIFAR10, Options{}, "record 1: label 10 out of range [0,10)", false},
		{"coarse label 20", "test.bin", badCoarse, LoadCIFAR100, Options{}, "record 2: label 20 out of range [0,20)", false},
		{"fine label 100", "test.bin", badFine, LoadCIFAR100, Options{}, "record 1: label 100 out of range [0,100)", false},
		{"CIFAR-10 file read as CIFAR-100", "test.bin", good, LoadCIFAR100, Options{}, "truncated record", false},
		{"missing split", "test_batch.bin", good, LoadCIFAR10, Options{Split: "train"}, "data_batch_1.bin", false},
		{"unknown split", "test_batch.bin", good, LoadCIFAR10, Options{Split: "val"}, `unknown split "val"`, false},
		{"offset beyond", "test_batch.bin", good, LoadCIFAR10, Options{Offset: 2}, "offset 2 leaves no samples of 2", false},
		{"negative n", "test_batch.bin", good, LoadCIFAR10, Options{N: -1}, "must not be negative", false},
	}
	for _, c := range cases {
		dir := t.TempDir()
		path := writeFile(t, filepath.Join(dir, c.file), c.data)
		_, err := c.load(dir, c.opt)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error = %v; want one containing %q", c.name, err, c.want)
			continue
		}
		if strings.Contains(c.want, "record") && !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %q does not name %s", c.name, err, path)
		}
	}
	if _, err := LoadCIFAR10(filepath.Join(t.TempDir(), "nothing"), Options{}); err == nil || !strings.Contains(err.Error(), "test_batch.bin") {
		t.Errorf("missing folder: error = %v; want one naming test_batch.bin", err)
	}
}

// idxBytes lays out an IDX file of unsigned bytes.
func idxBytes(dims []int, data []byte) []byte {
	b := []byte{0, 0, 0x08, byte(len(dims))}
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, uint32(d))
	}
	return append(b, data...)
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// mnistFiles returns an image file of n 4×3 images numbered from first and
// the matching label file (label s%10).
func mnistFiles(first, n int) (img, lbl []byte) {
	var px, l []byte
	for s := first; s < first+n; s++ {
		for j := range 12 {
			px = append(px, pixel(s, j))
		}
		l = append(l, byte(s%10))
	}
	return idxBytes([]int{n, 4, 3}, px), idxBytes([]int{n}, l)
}

func TestMNIST(t *testing.T) {
	label := func(s int) int64 { return int64(s % 10) }
	trainImg, trainLbl := mnistFiles(0, 7)
	testImg, testLbl := mnistFiles(200, 4)
	cases := []struct {
		name  string
		files map[string][]byte
		load  func(string, Options) (*Dataset, error)
		opt   Options
		first int
		n     int
	}{
		{"plain, test", map[string][]byte{"t10k-images-idx3-ubyte": testImg, "t10k-labels-idx1-ubyte": testLbl}, LoadMNIST, Options{}, 200, 4},
		{"gzip, train window", map[string][]byte{"train-images-idx3-ubyte.gz": gz(trainImg), "train-labels-idx1-ubyte.gz": gz(trainLbl)}, LoadFashionMNIST, Options{Split: "train", Offset: 2, N: 3}, 2, 3},
		{"gzip content, no .gz name", map[string][]byte{"train-images-idx3-ubyte": gz(trainImg), "train-labels-idx1-ubyte": trainLbl}, LoadMNIST, Options{Split: "train"}, 0, 7},
		{"dotted names", map[string][]byte{"t10k-images.idx3-ubyte": testImg, "t10k-labels.idx1-ubyte": testLbl}, LoadMNIST, Options{N: 1}, 200, 1},
		{"torchvision raw folder", map[string][]byte{"FashionMNIST/raw/t10k-images-idx3-ubyte": testImg, "FashionMNIST/raw/t10k-labels-idx1-ubyte": testLbl}, LoadFashionMNIST, Options{}, 200, 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, b := range c.files {
				writeFile(t, filepath.Join(dir, name), b)
			}
			d, err := c.load(dir, c.opt)
			if err != nil {
				t.Fatal(err)
			}
			if d.Len() != c.n || d.C != 1 || d.H != 4 || d.W != 3 || d.Classes != 10 || len(d.ClassNames) != 10 {
				t.Fatalf("Len, C, H, W, Classes = %d, %d, %d, %d, %d; want %d, 1, 4, 3, 10", d.Len(), d.C, d.H, d.W, d.Classes, c.n)
			}
			checkSamples(t, d, c.first, label)
		})
	}
}

func TestMNISTErrors(t *testing.T) {
	img, lbl := mnistFiles(0, 3)
	badLabels := bytes.Clone(lbl)
	badLabels[len(badLabels)-1] = 10
	corruptGz := gz(img)
	corruptGz[len(corruptGz)-6] ^= 0xff // the CRC-32 in the gzip trailer
	wrongType := bytes.Clone(img)
	wrongType[2] = 0x0d
	_, lbl2 := mnistFiles(0, 2)
	cases := []struct {
		name     string
		img, lbl []byte
		want     string
		bad      string // the file the error must name
	}{
		{"bad magic", append([]byte{1, 2}, img[2:]...), lbl, "bad magic number 0x01020803: not an IDX file", "images"},
		{"float elements", wrongType, lbl, "element type 0x0d is not unsigned byte (0x08)", "images"},
		{"no dimensions", []byte{0, 0, 8, 0}, lbl, "no dimensions", "images"},
		{"truncated header", img[:9], lbl, "truncated header", "images"},
		{"truncated data", img[:len(img)-1], lbl, "need 36 bytes of data, got 35", "images"},
		{"trailing bytes", append(bytes.Clone(img), 0), lbl, "trailing bytes", "images"},
		{"corrupt gzip", corruptGz, lbl, "checksum", "images"},
		{"truncated gzip", gz(img)[:20], lbl, "unexpected EOF", "images"},
		{"huge dimensions", idxBytes([]int{1 << 20, 1 << 20, 1 << 20}, nil), lbl, "exceed", "images"},
		{"label 10", img, badLabels, "label 10 of sample 2 out of range [0,10)", "labels"},
		{"mismatched counts", img, lbl2, "mismatched counts: 3 images but 2 labels", "labels"},
		{"labels as images", lbl, lbl, "want (N, H, W)", "images"},
		{"images as labels", img, img, "want (N)", "labels"},
	}
	for _, c := range cases {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "t10k-images-idx3-ubyte"), c.img)
		writeFile(t, filepath.Join(dir, "t10k-labels-idx1-ubyte"), c.lbl)
		_, err := LoadMNIST(dir, Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error = %v; want one containing %q", c.name, err, c.want)
			continue
		}
		if !strings.Contains(err.Error(), filepath.Join(dir, "t10k-"+c.bad)) {
			t.Errorf("%s: error %q does not name the %s file", c.name, err, c.bad)
		}
	}
	_, err := LoadFashionMNIST(t.TempDir(), Options{})
	if err == nil || !strings.Contains(err.Error(), "no t10k-images-idx3-ubyte[.gz]") {
		t.Errorf("empty folder: error = %v; want one naming t10k-images-idx3-ubyte", err)
	}
}

// npzOf writes x and y into an archive and returns its path.
func npzOf(t *testing.T, x, y *npy.Array) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "d.npz")
	if err := npy.WriteNPZ(path, map[string]*npy.Array{"x": x, "y": y}); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestNPZLayouts(t *testing.T) {
	const n, c, h, w = 5, 3, 4, 2
	// want[s][ch][y][x] = pixel(s, ch*h*w + y*w + x); build NCHW and NHWC bytes.
	var nchw, nhwc []byte
	for s := range n {
		for j := range c * h * w {
			nchw = append(nchw, pixel(s, j))
		}
		for y := range h {
			for x := range w {
				for ch := range c {
					nhwc = append(nhwc, pixel(s, ch*h*w+y*w+x))
				}
			}
		}
	}
	unit := make([]float32, len(nchw))
	for i, p := range nchw {
		unit[i] = float32(p) / 255
	}
	labels := []int64{0, 4, 1, 4, 2}
	label := func(s int) int64 { return labels[s] }
	cases := []struct {
		name    string
		x, y    *npy.Array
		opt     Options
		first   int
		wantN   int
		wantC   int
		classes int
	}{
		{"uint8 NCHW", npy.FromUint8(nchw, n, c, h, w), npy.FromInt64(labels, n), Options{}, 0, 5, 3, 5},
		{"uint8 NHWC", npy.FromUint8(nhwc, n, h, w, c), npy.FromInt64(labels, n), Options{Offset: 1, N: 3}, 1, 3, 3, 5},
		{"float32 NCHW", npy.FromFloat32(unit, n, c, h, w), npy.FromInt64(labels, n, 1), Options{Classes: 10}, 0, 5, 3, 10},
		{"float64 NCHW", npy.FromFloat64(f64(unit), n, c, h, w), npy.FromInt64(labels, n), Options{}, 0, 5, 3, 5},
		{"uint8 NHW", npy.FromUint8(nchw, n, c*h, w), npy.FromInt64(labels, n), Options{N: 2}, 0, 2, 1, 5},
		{"uint8 labels", npy.FromUint8(nchw, n, c, h, w), npy.FromUint8([]uint8{0, 4, 1, 4, 2}, n), Options{}, 0, 5, 3, 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := LoadNPZ(npzOf(t, tc.x, tc.y), tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			if d.Len() != tc.wantN || d.C != tc.wantC || d.C*d.H*d.W != c*h*w || d.Classes != tc.classes {
				t.Fatalf("Len, C, H, W, Classes = %d, %d, %d, %d, %d; want %d, %d, …, %d", d.Len(), d.C, d.H, d.W, d.Classes, tc.wantN, tc.wantC, tc.classes)
			}
			checkSamples(t, d, tc.first, label)
		})
	}

	// The same through two .npy files.
	dir := t.TempDir()
	xp, yp := filepath.Join(dir, "x.npy"), filepath.Join(dir, "y.npy")
	if err := npy.WriteFile(xp, npy.FromUint8(nhwc, n, h, w, c)); err != nil {
		t.Fatal(err)
	}
	if err := npy.WriteFile(yp, npy.FromInt64(labels, n)); err != nil {
		t.Fatal(err)
	}
	d, err := Load("npy:"+xp+","+yp, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.C != 3 || d.H != h || d.W != w || d.Name != "npy:"+xp+","+yp {
		t.Errorf("npy: C, H, W, Name = %d, %d, %d, %q", d.C, d.H, d.W, d.Name)
	}
	checkSamples(t, d, 0, label)
}

func f64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

func TestNPZErrors(t *testing.T) {
	px := make([]uint8, 2*1*2*2)
	y2 := npy.FromInt64([]int64{0, 1}, 2)
	normalized := npy.FromFloat32([]float32{-0.5, 0, 0.5, 1, 1.5, 2, 0, 0}, 2, 1, 2, 2)
	cases := []struct {
		name string
		x, y *npy.Array
		opt  Options
		want string
	}{
		{"mismatched counts", npy.FromUint8(px, 2, 1, 2, 2), npy.FromInt64([]int64{0, 1, 2}, 3), Options{}, "mismatched counts: x has 2 samples, y has 3"},
		{"float out of range", normalized, y2, Options{}, "sample 0 holds -0.5: pixels must lie in [0,1] (these span [-0.5, 2])"},
		{"NaN even when allowed", npy.FromFloat32([]float32{0, 0, 0, 0, 0, float32(math.NaN()), 0, 0}, 2, 1, 2, 2), y2, Options{AllowUnnormalized: true}, "sample 1 holds NaN"},
		{"Inf", npy.FromFloat64([]float64{0, 0, 0, math.Inf(1), 0, 0, 0, 0}, 2, 1, 2, 2), y2, Options{AllowUnnormalized: true}, "sample 0 holds +Inf"},
		{"negative label", npy.FromUint8(px, 2, 1, 2, 2), npy.FromInt64([]int64{0, -1}, 2), Options{}, "label -1 of sample 1 out of range"},
		{"label beyond Classes", npy.FromUint8(px, 2, 1, 2, 2), npy.FromInt64([]int64{0, 10}, 2), Options{Classes: 10}, "label 10 of sample 1 out of range [0,10)"},
		{"float labels", npy.FromUint8(px, 2, 1, 2, 2), npy.FromFloat32([]float32{0, 1}, 2), Options{}, "y has dtype f4"},
		{"one-hot labels", npy.FromUint8(px, 2, 1, 2, 2), npy.FromInt64([]int64{1, 0, 0, 1}, 2, 2), Options{}, "y has shape [2 2]"},
		{"2-D x", npy.FromUint8(px, 2, 4), y2, Options{}, "x has shape [2 4]"},
		{"int64 x", &npy.Array{DType: "i8", Shape: []int{2, 1, 1, 1}, Data: make([]byte, 16)}, y2, Options{}, "x has dtype i8"},
		{"empty images", npy.FromUint8(nil, 2, 0, 2, 2), y2, Options{}, "no pixels"},
		{"no samples", npy.FromUint8(nil, 0, 1, 2, 2), npy.FromInt64(nil, 0), Options{}, "no samples"},
		{"offset beyond", npy.FromUint8(px, 2, 1, 2, 2), y2, Options{Offset: 5}, "offset 5 leaves no samples of 2"},
	}
	for _, c := range cases {
		path := npzOf(t, c.x, c.y)
		_, err := LoadNPZ(path, c.opt)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error = %v; want one naming the file and containing %q", c.name, err, c.want)
		}
	}
	d, err := LoadNPZ(npzOf(t, normalized, y2), Options{AllowUnnormalized: true})
	if err != nil || d.X[0] != -0.5 || d.X[5] != 2 {
		t.Errorf("AllowUnnormalized: Load = %v, %v; want the values unchanged", d, err)
	}

	path := filepath.Join(t.TempDir(), "k.npz")
	if err := npy.WriteNPZ(path, map[string]*npy.Array{"images": npy.FromUint8(px, 2, 1, 2, 2), "y": y2}); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadNPZ(path, Options{}); err == nil || !strings.Contains(err.Error(), "want arrays x and y; the archive holds [images y]") {
		t.Errorf("missing x: error = %v", err)
	}
	if _, err := LoadNPZ(filepath.Join(t.TempDir(), "none.npz"), Options{}); err == nil {
		t.Error("missing file: nil error")
	}
}

func TestParseSpec(t *testing.T) {
	cases := []struct {
		in   string
		want Spec
		err  string
	}{
		{"cifar10:/data/c10", Spec{Format: "cifar10", Path: "/data/c10"}, ""},
		{"CIFAR100:c100", Spec{Format: "cifar100", Path: "c100"}, ""},
		{"mnist:m", Spec{Format: "mnist", Path: "m"}, ""},
		{"fashion-mnist:/usr/share/datasets/fashion-mnist", Spec{Format: "fashion-mnist", Path: "/usr/share/datasets/fashion-mnist"}, ""},
		{"fmnist:f", Spec{Format: "fashion-mnist", Path: "f"}, ""},
		{"npz:a:b.npz", Spec{Format: "npz", Path: "a:b.npz"}, ""},
		{"npy:x.npy,y.npy", Spec{Format: "npy", Path: "x.npy", Labels: "y.npy"}, ""},
		{"folder:imgs", Spec{Format: "folder", Path: "imgs"}, ""},
		{"data.npz", Spec{}, "has no format"},
		{"imagenet:/x", Spec{}, `unknown format "imagenet"`},
		{"npy:x.npy", Spec{}, "npy wants two files"},
		{"npy:x.npy,", Spec{}, "npy wants two files"},
		{"cifar10:", Spec{}, "has no path"},
	}
	for _, c := range cases {
		got, err := ParseSpec(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseSpec(%q) error = %v; want one containing %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseSpec(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
		if again, err := ParseSpec(got.String()); err != nil || again != got {
			t.Errorf("ParseSpec(%q.String()) = %+v, %v; want %+v", c.in, again, err, got)
		}
	}
}

func TestDatasetMethods(t *testing.T) {
	d := &Dataset{X: []float32{0, 0.1, 0.2, 0.3, 0.4, 0.5}, Y: []int64{2, 0, 1}, C: 1, H: 1, W: 2, Classes: 3, Name: "t"}
	if d.Len() != 3 || d.Dim() != 2 {
		t.Fatalf("Len, Dim = %d, %d; want 3, 2", d.Len(), d.Dim())
	}
	x, y := d.Sample(1)
	if !slices.Equal(x, []float32{0.2, 0.3}) || y != 0 {
		t.Errorf("Sample(1) = %v, %d; want [0.2 0.3], 0", x, y)
	}
	if x = append(x, 9); d.X[4] != 0.4 {
		t.Error("appending to a Sample overwrote the next sample")
	}
	s := d.Slice(1, 3)
	if s.Len() != 2 || !slices.Equal(s.X, d.X[2:]) || !slices.Equal(s.Y, []int64{0, 1}) {
		t.Errorf("Slice(1, 3) = %v %v", s.X, s.Y)
	}
	sub := d.Subset([]int{2, 0})
	if !slices.Equal(sub.X, []float32{0.4, 0.5, 0, 0.1}) || !slices.Equal(sub.Y, []int64{1, 2}) {
		t.Errorf("Subset([2 0]) = %v %v", sub.X, sub.Y)
	}
	sub.X[0] = 7
	if d.X[4] == 7 {
		t.Error("Subset shares storage")
	}
	bad := []struct {
		name string
		d    Dataset
		want string
	}{
		{"label", Dataset{X: make([]float32, 2), Y: []int64{3}, C: 1, H: 1, W: 2, Classes: 3}, "label 3 of sample 0 is out of range [0,3)"},
		{"count", Dataset{X: make([]float32, 3), Y: []int64{0}, C: 1, H: 1, W: 2, Classes: 3}, "3 pixel values for 1 labels"},
		{"size", Dataset{C: 0, H: 1, W: 1}, "not positive"},
		{"names", Dataset{X: make([]float32, 2), Y: []int64{0}, C: 1, H: 1, W: 2, Classes: 3, ClassNames: []string{"a"}}, "1 class names for 3 classes"},
		{"NaN", Dataset{X: []float32{0, float32(math.NaN())}, Y: []int64{0}, C: 1, H: 1, W: 2, Classes: 3}, "pixel 1 of sample 0 is NaN"},
	}
	for _, c := range bad {
		if err := c.d.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%s) = %v; want an error containing %q", c.name, err, c.want)
		}
	}
}

func TestWriteNPZRoundTrip(t *testing.T) {
	dir := t.TempDir()
	makeCIFAR10(t, dir)
	d, err := LoadCIFAR10(dir, Options{Split: "train"})
	if err != nil {
		t.Fatal(err)
	}
	adv := d.Subset([]int{0, 1, 2})
	adv.X[5] += 1e-3 // no longer some p/255
	for _, c := range []struct {
		name  string
		d     *Dataset
		dtype string
	}{{"pixels", d, "u1"}, {"perturbed", adv, "f4"}} {
		path := filepath.Join(dir, c.name+".npz")
		if err := c.d.WriteNPZ(path); err != nil {
			t.Fatal(err)
		}
		m, err := npy.ReadNPZ(path)
		if err != nil {
			t.Fatal(err)
		}
		if m["x"].DType != c.dtype || !slices.Equal(m["x"].Shape, []int{c.d.Len(), 3, 32, 32}) {
			t.Errorf("%s: x is %s %v; want %s [%d 3 32 32]", c.name, m["x"].DType, m["x"].Shape, c.dtype, c.d.Len())
		}
		back, err := LoadNPZ(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(back.X, c.d.X) || !slices.Equal(back.Y, c.d.Y) || back.C != 3 {
			t.Errorf("%s: LoadNPZ(WriteNPZ(d)) differs from d", c.name)
		}
	}
	bad := &Dataset{X: make([]float32, 3), Y: []int64{0}, C: 1, H: 1, W: 2, Classes: 1}
	if err := bad.WriteNPZ(filepath.Join(dir, "bad.npz")); err == nil {
		t.Error("WriteNPZ(inconsistent dataset): nil error")
	}
}

func TestErrNoSamplesIsWrapped(t *testing.T) {
	_, err := LoadNPZ(npzOf(t, npy.FromUint8(nil, 0, 1, 1, 1), npy.FromInt64(nil, 0)), Options{})
	if !errors.Is(err, errNoSamples) {
		t.Errorf("empty archive: error = %v; want errNoSamples", err)
	}
}
