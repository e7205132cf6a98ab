package dataset

import (
	"errors"
	"fmt"
	"math"

	"github.com/semirobust/srtool/npy"
)

// Dataset is a labelled set of images held in memory.
type Dataset struct {
	// X holds Len() images of C×H×W pixels each, NCHW in C order, in [0,1]
	// (unless loaded with Options.AllowUnnormalized).
	X []float32
	// Y holds one label per image, in [0, Classes).
	Y []int64
	// C, H and W are the channels, height and width of every image.
	C, H, W int
	// Classes is the number of classes the labels index.
	Classes int
	// ClassNames names the classes when the source says (len = Classes), else nil.
	ClassNames []string
	// Name says where the data came from, e.g. "cifar10:/data/cifar (test)".
	Name string
}

// Limits on what a loader allocates, checked before the allocation from the
// sizes a file's header declares, so a lying header is one clear error.
const (
	// MaxImagePixels bounds the width × height of one image in an image
	// folder (2²⁶: 8192×8192).
	MaxImagePixels = 1 << 26
	// MaxBytes bounds the float32 pixels one loader returns (16 GiB).
	MaxBytes = 1 << 34
)

// checkAlloc reports whether n images of c×h×w float32 values fit in
// MaxBytes, overflow-safe. Dimensions must be positive.
func checkAlloc(n, c, h, w int) error {
	if c <= 0 || h <= 0 || w <= 0 || n < 0 {
		return fmt.Errorf("images of %d×%d×%d (C×H×W): no pixels", c, h, w)
	}
	limit := int64(MaxBytes / 4)
	for _, d := range []int{c, h, w, n} {
		if d != 0 && limit < int64(d) {
			return fmt.Errorf("%d images of %d×%d×%d (C×H×W) float32 values exceed the limit of %d bytes", n, c, h, w, int64(MaxBytes))
		}
		if d != 0 {
			limit /= int64(d)
		}
	}
	return nil
}

// Options select and check the samples a loader returns. The zero value
// loads the whole test split.
type Options struct {
	// Split is "train" or "test"; "" means "test". Only cifar10, cifar100,
	// mnist and fashion-mnist hold two splits; other sources ignore Split.
	Split string `json:"split,omitempty"`
	// Offset skips the first Offset samples of the split.
	Offset int `json:"offset,omitempty"`
	// N keeps at most N samples after Offset; 0 keeps all.
	N int `json:"n,omitempty"`
	// AllowUnnormalized accepts float pixels outside [0,1] (NaN and ±Inf
	// are always an error).
	AllowUnnormalized bool `json:"allow_unnormalized,omitempty"`
	// Classes, for npz, npy and folder sources, fixes the number of
	// classes; labels must be below it. 0 means the largest label plus one
	// (npz, npy) or the number of sub-folders (folder).
	Classes int `json:"classes,omitempty"`
}

func (o Options) split() (string, error) {
	switch o.Split {
	case "", "test":
		return "test", nil
	case "train":
		return "train", nil
	}
	return "", fmt.Errorf("unknown split %q; want train or test", o.Split)
}

// window returns the samples [lo, hi) that opt selects out of total.
func (o Options) window(total int) (lo, hi int, err error) {
	if o.Offset < 0 || o.N < 0 {
		return 0, 0, fmt.Errorf("offset %d and n %d must not be negative", o.Offset, o.N)
	}
	if o.Offset >= total {
		return 0, 0, fmt.Errorf("offset %d leaves no samples of %d", o.Offset, total)
	}
	hi = total
	if o.N > 0 && o.N < total-o.Offset {
		hi = o.Offset + o.N
	}
	return o.Offset, hi, nil
}

// byteToUnit maps a pixel byte p to p/255 computed in float32, as
// torchvision's ToTensor does.
var byteToUnit = func() (t [256]float32) {
	for i := range t {
		t[i] = float32(i) / 255
	}
	return t
}()

// Len returns the number of samples.
func (d *Dataset) Len() int { return len(d.Y) }

// Dim returns the number of values in one image, C×H×W.
func (d *Dataset) Dim() int { return d.C * d.H * d.W }

// Sample returns image i (C×H×W values, sharing d.X's storage) and its label.
// It panics if i is out of range, like an index expression.
func (d *Dataset) Sample(i int) (x []float32, y int64) {
	n := d.Dim()
	return d.X[i*n : (i+1)*n : (i+1)*n], d.Y[i]
}

// Slice returns samples [lo, hi) as a Dataset that shares d's storage.
// It panics if the bounds are out of range, like a slice expression.
func (d *Dataset) Slice(lo, hi int) *Dataset {
	n := d.Dim()
	s := *d
	s.X = d.X[lo*n : hi*n : hi*n]
	s.Y = d.Y[lo:hi:hi]
	return &s
}

// Subset returns a copy of the samples at the given indices, in that order.
// It panics if an index is out of range.
func (d *Dataset) Subset(idx []int) *Dataset {
	n := d.Dim()
	s := *d
	s.X = make([]float32, len(idx)*n)
	s.Y = make([]int64, len(idx))
	for j, i := range idx {
		copy(s.X[j*n:], d.X[i*n:(i+1)*n])
		s.Y[j] = d.Y[i]
	}
	return &s
}

// Validate checks that d is consistent: positive image sizes, as many
// pixels as labels need, labels in [0, Classes), ClassNames empty or of
// length Classes, and finite pixels.
func (d *Dataset) Validate() error {
	if d.C <= 0 || d.H <= 0 || d.W <= 0 {
		return fmt.Errorf("dataset %s: image size %d×%d×%d is not positive", d.Name, d.C, d.H, d.W)
	}
	if len(d.X) != len(d.Y)*d.Dim() {
		return fmt.Errorf("dataset %s: %d pixel values for %d labels of %d×%d×%d images", d.Name, len(d.X), len(d.Y), d.C, d.H, d.W)
	}
	if d.ClassNames != nil && len(d.ClassNames) != d.Classes {
		return fmt.Errorf("dataset %s: %d class names for %d classes", d.Name, len(d.ClassNames), d.Classes)
	}
	for i, y := range d.Y {
		if y < 0 || y >= int64(d.Classes) {
			return fmt.Errorf("dataset %s: label %d of sample %d is out of range [0,%d)", d.Name, y, i, d.Classes)
		}
	}
	for i, v := range d.X {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("dataset %s: pixel %d of sample %d is %v", d.Name, i%d.Dim(), i/d.Dim(), v)
		}
	}
	return nil
}

// WriteNPZ writes d as a compressed .npz archive that the npz: spec reads
// back unchanged: x of shape (N,C,H,W), stored as uint8 when every pixel is
// exactly some p/255 (so nothing is lost) and as float32 otherwise, and y as
// int64 of shape (N,). The file is written atomically.
func (d *Dataset) WriteNPZ(path string) error {
	if err := d.Validate(); err != nil {
		return err
	}
	shape := []int{d.Len(), d.C, d.H, d.W}
	var x *npy.Array
	if q, ok := quantize(d.X); ok {
		x = npy.FromUint8(q, shape...)
	} else {
		x = npy.FromFloat32(d.X, shape...)
	}
	return npy.WriteNPZCompressed(path, map[string]*npy.Array{"x": x, "y": npy.FromInt64(d.Y, d.Len())})
}

// quantize returns the bytes p with p/255 == x[i] for every i, if there are.
func quantize(x []float32) ([]uint8, bool) {
	q := make([]uint8, len(x))
	for i, v := range x {
		if !(v >= 0 && v <= 1) {
			return nil, false
		}
		p := uint8(math.Round(float64(v) * 255))
		if byteToUnit[p] != v {
			return nil, false
		}
		q[i] = p
	}
	return q, true
}

// errNoSamples is wrapped when a source holds no images at all.
var errNoSamples = errors.New("no samples")
