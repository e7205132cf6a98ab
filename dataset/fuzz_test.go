package dataset

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/semirobust/srtool/npy"
)

// FuzzIDX checks that the IDX reader never panics and that what it accepts
// is consistent: the data holds exactly the bytes the dimensions need.
func FuzzIDX(f *testing.F) {
	img, lbl := mnistFiles(0, 3)
	f.Add(img)
	f.Add(lbl)
	f.Add(gz(img))
	f.Add(img[:len(img)-1])
	f.Add([]byte{0, 0, 8, 0})
	f.Add(idxBytes([]int{0, 28, 28}, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		dims, data, err := readIDXMaybeGzip(bufio.NewReader(bytes.NewReader(b)), int64(len(b)))
		if err != nil {
			return
		}
		n := 1
		for _, d := range dims {
			n *= d
		}
		if len(dims) == 0 || len(data) != n {
			t.Fatalf("dims %v with %d data bytes", dims, len(data))
		}
	})
}

// FuzzCIFAR feeds arbitrary files, split in two at an arbitrary point, to
// both CIFAR layouts with arbitrary windows, and checks that what is
// accepted is a valid Dataset of the requested size. Records are 3 KB, so
// minimizing a new input takes long: run it with -fuzzminimizetime=2s.
func FuzzCIFAR(f *testing.F) {
	two := cifarBytes(0, 2, cifar10Label)
	f.Add(two, 3073, 0, 0)
	f.Add(two, 0, 1, 1)
	f.Add(cifarBytes(0, 3, cifar100Label), 3074, 1, 1)
	f.Add(two[:100], 50, 0, 0)
	f.Add([]byte{10}, 0, 0, 5)
	f.Fuzz(func(t *testing.T, b []byte, cut, offset, n int) {
		cut = min(max(cut, 0), len(b))
		files := []cifarFile{
			{path: "a.bin", size: int64(cut), r: bytes.NewReader(b[:cut])},
			{path: "b.bin", size: int64(len(b) - cut), r: bytes.NewReader(b[cut:])},
		}
		for _, l := range []*cifarLayout{cifar10, cifar100} {
			d, err := decodeCIFARSplit(files, l, Options{Offset: offset, N: n})
			if err != nil {
				continue
			}
			if err := d.Validate(); err != nil {
				t.Fatalf("%s: accepted an invalid dataset: %v", l.format, err)
			}
			total := len(b) / l.record()
			want := total - offset
			if n > 0 {
				want = min(want, n)
			}
			if d.Len() != want {
				t.Fatalf("%s: Len() = %d for %d records, offset %d, n %d; want %d", l.format, d.Len(), total, offset, n, want)
			}
		}
	})
}

// FuzzFolderImage loads an image folder holding a valid 4×3 gray PNG and
// the fuzzed file, as a .png or a .jpg: LoadFolder must return a valid
// Dataset or an error, never panic or allocate what a lying header claims.
// The seed corpus (testdata/fuzz/FuzzFolderImage) holds valid PNGs and
// JPEGs and ones whose headers claim huge sizes.
func FuzzFolderImage(f *testing.F) {
	// One folder per fuzzing process (its inputs run one at a time), so an
	// input costs one file write.
	dir := f.TempDir()
	writeFile(f, filepath.Join(dir, "one", "a.png"), pngBytes(f, grayImage(0, 4, 3)))
	f.Fuzz(func(t *testing.T, b []byte, jpg bool) {
		png, jpeg := filepath.Join(dir, "two", "b.png"), filepath.Join(dir, "two", "b.jpg")
		if jpg {
			png, jpeg = jpeg, png
		}
		os.Remove(jpeg)
		writeFile(t, png, b)
		d, err := LoadFolder(dir, Options{})
		if err != nil {
			return
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("accepted an invalid dataset: %v", err)
		}
		if d.Len() != 2 || d.W != 4 || d.H != 3 {
			t.Fatalf("Len, W, H = %d, %d, %d; want 2, 4, 3", d.Len(), d.W, d.H)
		}
	})
}

// FuzzFromArrays decodes fuzzed .npy streams for x and y and makes a
// Dataset of them with a fuzzed window: whatever FromArrays accepts must be
// valid. (Whole .npz archives are FuzzReadNPZ's part, in npy.) The seed
// corpus (testdata/fuzz/FuzzFromArrays) holds NCHW, NHWC and 3-D uint8 and
// float arrays with their labels.
func FuzzFromArrays(f *testing.F) {
	f.Fuzz(func(t *testing.T, xb, yb []byte, offset, n, classes int) {
		x, err := npy.Read(bytes.NewReader(xb))
		if err != nil {
			return
		}
		y, err := npy.Read(bytes.NewReader(yb))
		if err != nil {
			return
		}
		d, err := FromArrays(x, y, Options{Offset: offset, N: n, Classes: classes})
		if err != nil {
			return
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("accepted an invalid dataset: %v", err)
		}
	})
}
