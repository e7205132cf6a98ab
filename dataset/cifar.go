package dataset

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/semirobust/srtool/onnxio"
)

// cifarLayout describes the binary record of one CIFAR version
// (https://www.cs.toronto.edu/~kriz/cifar.html, "binary version").
type cifarLayout struct {
	format   string
	sub      string // the folder the official archive unpacks to
	labelMax []int  // bound of each label byte: CIFAR-100 has coarse then fine
	class    int    // which label byte is the class
	train    []string
	test     []string
}

const cifarPixels = 3 * 32 * 32

func (l *cifarLayout) record() int { return len(l.labelMax) + cifarPixels }

var cifar10 = &cifarLayout{
	format:   "cifar10",
	sub:      "cifar-10-batches-bin",
	labelMax: []int{10},
	train:    []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"},
	test:     []string{"test_batch.bin"},
}

var cifar100 = &cifarLayout{
	format:   "cifar100",
	sub:      "cifar-100-binary",
	labelMax: []int{20, 100},
	class:    1,
	train:    []string{"train.bin"},
	test:     []string{"test.bin"},
}

// cifar10Names are the CIFAR-10 classes in label order (batches.meta.txt).
var cifar10Names = []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}

// LoadCIFAR10 reads CIFAR-10 in the official binary layout: dir holds
// data_batch_1.bin … data_batch_5.bin (train, 50000 images) and
// test_batch.bin (test, 10000), or is the folder the archive unpacks into
// (dir/cifar-10-batches-bin). Each record is one label byte and 3072 pixel
// bytes (the red, green and blue 32×32 planes).
func LoadCIFAR10(dir string, opt Options) (*Dataset, error) {
	d, err := loadCIFAR(dir, cifar10, opt)
	if err != nil {
		return nil, err
	}
	d.ClassNames = append([]string(nil), cifar10Names...)
	return d, nil
}

// LoadCIFAR100 reads CIFAR-100 in the official binary layout: dir holds
// train.bin (50000 images) and test.bin (10000), or is the folder the
// archive unpacks into (dir/cifar-100-binary). Each record is a coarse label
// byte, a fine label byte and 3072 pixel bytes; labels are the 100 fine
// classes, named from fine_label_names.txt when that file is present.
func LoadCIFAR100(dir string, opt Options) (*Dataset, error) {
	d, err := loadCIFAR(dir, cifar100, opt)
	if err != nil {
		return nil, err
	}
	p := filepath.Join(cifarRoot(dir, cifar100), "fine_label_names.txt")
	b, err := onnxio.ReadRegular(p, 1<<20)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("cifar100: %w", err)
	default:
		if names := strings.Fields(string(b)); len(names) == 100 {
			d.ClassNames = names
		}
	}
	return d, nil
}

// cifarRoot returns dir, or the archive's folder inside it when dir itself
// holds none of the files.
func cifarRoot(dir string, l *cifarLayout) string {
	for _, f := range append(append([]string(nil), l.test...), l.train...) {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return dir
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, l.sub)); err == nil && fi.IsDir() {
		return filepath.Join(dir, l.sub)
	}
	return dir
}

// cifarFile is one file of a split: its path (for messages), size and
// contents.
type cifarFile struct {
	path string
	size int64
	r    io.ReaderAt
}

func loadCIFAR(dir string, l *cifarLayout, opt Options) (*Dataset, error) {
	split, err := opt.split()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", l.format, err)
	}
	root := cifarRoot(dir, l)
	names := l.test
	if split == "train" {
		names = l.train
	}
	files := make([]cifarFile, len(names))
	for i, name := range names {
		path := filepath.Join(root, name)
		f, size, err := onnxio.OpenRegular(path)
		if err != nil {
			return nil, fmt.Errorf("%s %s split: %w (want the binary version from https://www.cs.toronto.edu/~kriz/cifar.html)", l.format, split, err)
		}
		defer f.Close()
		files[i] = cifarFile{path: path, size: size, r: f}
	}
	d, err := decodeCIFARSplit(files, l, opt)
	if err != nil {
		return nil, err
	}
	d.Name = fmt.Sprintf("%s:%s (%s)", l.format, dir, split)
	return d, nil
}

// decodeCIFARSplit decodes the window opt selects from the records of
// files, taken one after another.
func decodeCIFARSplit(files []cifarFile, l *cifarLayout, opt Options) (*Dataset, error) {
	rec := int64(l.record())
	counts := make([]int, len(files))
	total := 0
	for i, f := range files {
		if f.size == 0 || f.size%rec != 0 {
			return nil, fmt.Errorf("%s: truncated record: %d bytes is %d records and %d bytes; %s records are %d bytes", f.path, f.size, f.size/rec, f.size%rec, l.format, rec)
		}
		if f.size/rec > math.MaxInt32 {
			return nil, fmt.Errorf("%s: %d bytes is too large for a %s file", f.path, f.size, l.format)
		}
		counts[i] = int(f.size / rec)
		total += counts[i]
	}
	lo, hi, err := opt.window(total)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", l.format, err)
	}
	d := &Dataset{
		X: make([]float32, (hi-lo)*cifarPixels), Y: make([]int64, hi-lo),
		C: 3, H: 32, W: 32, Classes: l.labelMax[l.class],
	}
	start := 0 // index of the first record of file i in the split
	for i, f := range files {
		a, b := max(lo-start, 0), min(hi-start, counts[i]) // records of file i to read
		if a < b {
			out := start + a - lo
			if err := readCIFAR(f, l, a, b, d.X[out*cifarPixels:(out+b-a)*cifarPixels], d.Y[out:out+b-a]); err != nil {
				return nil, err
			}
		}
		start += counts[i]
	}
	return d, nil
}

// readCIFAR decodes records [a, b) of f into x and y.
func readCIFAR(f cifarFile, l *cifarLayout, a, b int, x []float32, y []int64) error {
	rec := l.record()
	// Read in pieces so a window of a large file needs little extra memory.
	const chunk = 1024
	buf := make([]byte, min(chunk, b-a)*rec)
	for r := a; r < b; r += chunk {
		n := min(chunk, b-r)
		if _, err := f.r.ReadAt(buf[:n*rec], int64(r)*int64(rec)); err != nil {
			return fmt.Errorf("%s: reading records %d to %d: %w", f.path, r, r+n, noEOF(err))
		}
		o := r - a
		if err := decodeCIFAR(buf[:n*rec], l, r, x[o*cifarPixels:(o+n)*cifarPixels], y[o:o+n]); err != nil {
			return fmt.Errorf("%s: %w", f.path, err)
		}
	}
	return nil
}

// decodeCIFAR decodes whole records from b into x (len(y)×3072 values) and
// y; first is the number of b's first record in its file, for messages.
func decodeCIFAR(b []byte, l *cifarLayout, first int, x []float32, y []int64) error {
	rec := l.record()
	if len(b) != len(y)*rec || len(x) != len(y)*cifarPixels {
		return fmt.Errorf("truncated record: %d bytes for %d records of %d bytes", len(b), len(y), rec)
	}
	for i := range y {
		r := b[i*rec : (i+1)*rec]
		for j, m := range l.labelMax {
			if int(r[j]) >= m {
				return fmt.Errorf("record %d: label %d out of range [0,%d)", first+i, r[j], m)
			}
		}
		y[i] = int64(r[l.class])
		px := x[i*cifarPixels : (i+1)*cifarPixels]
		for j, p := range r[len(l.labelMax):] {
			px[j] = byteToUnit[p]
		}
	}
	return nil
}
