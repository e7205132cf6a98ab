package dataset

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/semirobust/srtool/npy"
	"github.com/semirobust/srtool/onnxio"
)

var mnistNames = []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}

// fashionNames are the Fashion-MNIST classes in label order
// (github.com/zalandoresearch/fashion-mnist, "Labels").
var fashionNames = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}

// LoadMNIST reads MNIST from the four IDX files in dir:
// train-images-idx3-ubyte, train-labels-idx1-ubyte (60000 images) and
// t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (10000), each optionally
// gzipped (".gz", detected from the content). The names with a dot before
// "idx" and torchvision's dir/MNIST/raw and dir/raw folders are found too.
// Images are 1×28×28.
func LoadMNIST(dir string, opt Options) (*Dataset, error) {
	return loadIDXSet(dir, "mnist", "MNIST", mnistNames, opt)
}

// LoadFashionMNIST reads Fashion-MNIST, laid out like MNIST (see
// LoadMNIST). Debian's dataset-fashion-mnist package installs it in
// /usr/share/datasets/fashion-mnist.
func LoadFashionMNIST(dir string, opt Options) (*Dataset, error) {
	return loadIDXSet(dir, "fashion-mnist", "FashionMNIST", fashionNames, opt)
}

// findIDX returns the path of the IDX file prefix-kind in dir or one of the
// folders torchvision uses.
func findIDX(dir, torchName, prefix, kind string) (string, error) {
	dirs := []string{dir, filepath.Join(dir, "raw"), filepath.Join(dir, torchName, "raw")}
	names := []string{prefix + "-" + kind, prefix + "-" + strings.Replace(kind, "-idx", ".idx", 1)}
	for _, d := range dirs {
		for _, n := range names {
			for _, ext := range []string{"", ".gz"} {
				p := filepath.Join(d, n+ext)
				if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
					return p, nil
				}
			}
		}
	}
	return "", fmt.Errorf("no %s[.gz] in %s", names[0], dir)
}

func loadIDXSet(dir, format, torchName string, classNames []string, opt Options) (*Dataset, error) {
	split, err := opt.split()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", format, err)
	}
	prefix := "t10k"
	if split == "train" {
		prefix = "train"
	}
	imgPath, err := findIDX(dir, torchName, prefix, "images-idx3-ubyte")
	if err != nil {
		return nil, fmt.Errorf("%s %s split: %w", format, split, err)
	}
	lblPath, err := findIDX(dir, torchName, prefix, "labels-idx1-ubyte")
	if err != nil {
		return nil, fmt.Errorf("%s %s split: %w", format, split, err)
	}
	imgDims, img, err := readIDXFile(imgPath)
	if err != nil {
		return nil, err
	}
	lblDims, lbl, err := readIDXFile(lblPath)
	if err != nil {
		return nil, err
	}
	if len(imgDims) != 3 || imgDims[1] == 0 || imgDims[2] == 0 {
		return nil, fmt.Errorf("%s: images have dimensions %v; want (N, H, W)", imgPath, imgDims)
	}
	if len(lblDims) != 1 {
		return nil, fmt.Errorf("%s: labels have dimensions %v; want (N)", lblPath, lblDims)
	}
	if imgDims[0] != lblDims[0] {
		return nil, fmt.Errorf("%s: mismatched counts: %d images but %d labels in %s", format, imgDims[0], lblDims[0], lblPath)
	}
	for i, c := range lbl {
		if int(c) >= len(classNames) {
			return nil, fmt.Errorf("%s: label %d of sample %d out of range [0,%d)", lblPath, c, i, len(classNames))
		}
	}
	lo, hi, err := opt.window(imgDims[0])
	if err != nil {
		return nil, fmt.Errorf("%s %s split: %w", format, split, err)
	}
	dim := imgDims[1] * imgDims[2]
	d := &Dataset{
		X: make([]float32, (hi-lo)*dim), Y: make([]int64, hi-lo),
		C: 1, H: imgDims[1], W: imgDims[2],
		Classes: len(classNames), ClassNames: append([]string(nil), classNames...),
		Name: fmt.Sprintf("%s:%s (%s)", format, dir, split),
	}
	for i, p := range img[lo*dim : hi*dim] {
		d.X[i] = byteToUnit[p]
	}
	for i, c := range lbl[lo:hi] {
		d.Y[i] = int64(c)
	}
	return d, nil
}

// readIDXFile reads an IDX file, gunzipping it when it starts with the gzip
// magic number. The file must be regular; its size bounds what the header
// may declare.
func readIDXFile(path string) ([]int, []byte, error) {
	f, size, err := onnxio.OpenRegular(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	dims, data, err := readIDXMaybeGzip(bufio.NewReaderSize(f, 1<<16), size)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return dims, data, nil
}

// readIDXMaybeGzip reads an IDX stream of size bytes (negative: unknown),
// gunzipped when it starts with the gzip magic number.
func readIDXMaybeGzip(br *bufio.Reader, size int64) ([]int, []byte, error) {
	var r io.Reader = br
	avail, compressed := size, false
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		r, compressed = zr, true
		if size >= 0 && size <= math.MaxInt64/npy.MaxDeflateRatio {
			// DEFLATE expands at most about 1032-fold, so a header that
			// claims more than that cannot be honest.
			avail = size * npy.MaxDeflateRatio
		} else {
			avail = -1
		}
	}
	return readIDX(r, avail, compressed)
}

// maxIDXBytes bounds the data of one IDX file (1 GiB; MNIST's training
// images are 47 MB, EMNIST's largest 550 MB).
const maxIDXBytes = 1 << 30

// readIDX decodes an IDX stream of unsigned bytes (type 0x08), the format of
// http://yann.lecun.com/exdb/mnist/: two zero bytes, the element type, the
// number of dimensions, each dimension as a big-endian uint32, then the data.
// It reads r to its end, so trailing bytes and a bad gzip checksum are
// reported. avail, when not negative, bounds the stream's length (exactly,
// or at most when compressed): a header that declares more data is refused
// before anything is read.
func readIDX(r io.Reader, avail int64, compressed bool) ([]int, []byte, error) {
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil {
		return nil, nil, fmt.Errorf("reading IDX magic number: %w", noEOF(err))
	}
	if magic[0] != 0 || magic[1] != 0 {
		return nil, nil, fmt.Errorf("bad magic number %#08x: not an IDX file", binary.BigEndian.Uint32(magic[:]))
	}
	if magic[2] != 0x08 {
		return nil, nil, fmt.Errorf("bad magic number %#08x: element type %#02x is not unsigned byte (0x08)", binary.BigEndian.Uint32(magic[:]), magic[2])
	}
	nd := int(magic[3])
	if nd == 0 {
		return nil, nil, fmt.Errorf("bad magic number %#08x: no dimensions", binary.BigEndian.Uint32(magic[:]))
	}
	raw := make([]byte, 4*nd)
	if _, err := io.ReadFull(r, raw); err != nil {
		return nil, nil, fmt.Errorf("truncated header: reading %d dimensions: %w", nd, noEOF(err))
	}
	dims := make([]int, nd)
	n := int64(1)
	for i := range dims {
		d := int64(binary.BigEndian.Uint32(raw[4*i:]))
		dims[i] = int(d)
		if d != 0 && n > maxIDXBytes/d {
			return nil, nil, fmt.Errorf("dimensions %v exceed %d bytes", dims[:i+1], int64(maxIDXBytes))
		}
		n *= d
	}
	if hdr := 4 + 4*int64(nd); avail >= 0 && n > avail-hdr {
		if !compressed {
			return nil, nil, fmt.Errorf("truncated: dimensions %v need %d bytes of data, got %d", dims, n, max(avail-hdr, 0))
		}
		return nil, nil, fmt.Errorf("dimensions %v need %d bytes of data, more than the gzip stream can expand to (%d)", dims, n, avail)
	}
	// Grow with the data actually received, so a corrupt header cannot make
	// us allocate far more than the file holds.
	buf := bytes.NewBuffer(make([]byte, 0, min(n, 1<<26)))
	if got, err := io.CopyN(buf, r, n); err != nil {
		return nil, nil, fmt.Errorf("truncated: dimensions %v need %d bytes of data, got %d: %w", dims, n, got, noEOF(err))
	}
	var one [1]byte
	switch k, err := io.ReadFull(r, one[:]); {
	case k > 0:
		return nil, nil, fmt.Errorf("trailing bytes after the %d bytes that dimensions %v need", n, dims)
	case err != io.EOF && err != io.ErrUnexpectedEOF:
		return nil, nil, err
	}
	return dims, buf.Bytes(), nil
}

// noEOF turns io.EOF into io.ErrUnexpectedEOF: inside a record, the end of
// the stream means truncation.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
