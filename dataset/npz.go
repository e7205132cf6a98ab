package dataset

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/semirobust/srtool/npy"
)

// LoadNPZ reads a .npz archive holding x (the images) and y (the labels),
// as numpy.savez writes them; see FromArrays for the accepted shapes and
// dtypes.
func LoadNPZ(path string, opt Options) (*Dataset, error) {
	m, err := npy.ReadNPZ(path)
	if err != nil {
		return nil, err
	}
	x, y := m["x"], m["y"]
	if x == nil || y == nil {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return nil, fmt.Errorf("%s: want arrays x and y; the archive holds [%s]", path, strings.Join(keys, " "))
	}
	d, err := FromArrays(x, y, opt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	d.Name = "npz:" + path
	return d, nil
}

// LoadNPY reads images from the .npy file xPath and labels from yPath; see
// FromArrays for the accepted shapes and dtypes.
func LoadNPY(xPath, yPath string, opt Options) (*Dataset, error) {
	x, err := npy.ReadFile(xPath)
	if err != nil {
		return nil, err
	}
	y, err := npy.ReadFile(yPath)
	if err != nil {
		return nil, err
	}
	d, err := FromArrays(x, y, opt)
	if err != nil {
		return nil, fmt.Errorf("%s, %s: %w", xPath, yPath, err)
	}
	d.Name = "npy:" + xPath + "," + yPath
	return d, nil
}

// FromArrays makes a Dataset from NumPy arrays, applying opt's window and
// checks (opt.Split is ignored).
//
// x is uint8 (0–255, divided by 255) or float16/32/64 (already in [0,1]),
// of shape (N,C,H,W), (N,H,W,C) or (N,H,W). A 4-D x is taken as NHWC and
// transposed when its last dimension is 1 or 3 and its second is neither
// (so (N,32,32,3) and (N,28,28,1) are NHWC, (N,3,32,32) is NCHW); a 3-D x
// has one channel. y holds N integer labels, shape (N) or (N,1), none
// negative; Classes is opt.Classes, or the largest label in y plus one.
func FromArrays(x, y *npy.Array, opt Options) (*Dataset, error) {
	if err := x.Check(); err != nil {
		return nil, fmt.Errorf("x: %w", err)
	}
	if err := y.Check(); err != nil {
		return nil, fmt.Errorf("y: %w", err)
	}
	var n, c, h, w int
	nhwc := false
	switch s := x.Shape; len(s) {
	case 3:
		n, c, h, w = s[0], 1, s[1], s[2]
	case 4:
		nhwc = (s[3] == 1 || s[3] == 3) && s[1] != 1 && s[1] != 3
		if nhwc {
			n, c, h, w = s[0], s[3], s[1], s[2]
		} else {
			n, c, h, w = s[0], s[1], s[2], s[3]
		}
	default:
		return nil, fmt.Errorf("x has shape %v; want (N,C,H,W), (N,H,W,C) or (N,H,W)", x.Shape)
	}
	if c == 0 || h == 0 || w == 0 {
		return nil, fmt.Errorf("x has shape %v; images have no pixels", x.Shape)
	}
	if !(len(y.Shape) == 1 || len(y.Shape) == 2 && y.Shape[1] == 1) {
		return nil, fmt.Errorf("y has shape %v; want (N) or (N,1) integer labels", y.Shape)
	}
	if y.Shape[0] != n {
		return nil, fmt.Errorf("mismatched counts: x has %d samples, y has %d", n, y.Shape[0])
	}
	if y.IsFloat() || y.DType == "b1" {
		return nil, fmt.Errorf("y has dtype %s; want integer labels", y.DType)
	}
	labels, err := y.Int64()
	if err != nil {
		return nil, fmt.Errorf("y: %w", err)
	}
	classes := opt.Classes
	maxLabel := int64(-1)
	for i, l := range labels {
		if l < 0 || opt.Classes > 0 && l >= int64(opt.Classes) {
			return nil, fmt.Errorf("label %d of sample %d out of range [0,%d)", l, i, max(opt.Classes, 0))
		}
		maxLabel = max(maxLabel, l)
	}
	if classes <= 0 {
		if maxLabel >= math.MaxInt32 {
			return nil, fmt.Errorf("largest label %d is not a class index", maxLabel)
		}
		classes = int(maxLabel + 1)
	}
	if n == 0 {
		return nil, fmt.Errorf("x has shape %v: %w", x.Shape, errNoSamples)
	}
	lo, hi, err := opt.window(n)
	if err != nil {
		return nil, err
	}
	dim := c * h * w
	d := &Dataset{X: make([]float32, (hi-lo)*dim), Y: labels[lo:hi:hi], C: c, H: h, W: w, Classes: classes}
	switch {
	case x.DType == "u1":
		for i, p := range x.Data[lo*dim : hi*dim] {
			d.X[i] = byteToUnit[p]
		}
	case x.IsFloat():
		part := &npy.Array{DType: x.DType, Shape: []int{(hi - lo) * dim}, Data: x.Data[lo*dim*npy.ItemSize(x.DType) : hi*dim*npy.ItemSize(x.DType)]}
		copy(d.X, part.Float32())
		if err := checkUnit(d.X, dim, lo, opt.AllowUnnormalized); err != nil {
			return nil, fmt.Errorf("x: %w", err)
		}
	default:
		return nil, fmt.Errorf("x has dtype %s; want uint8 (0–255) or float (0–1)", x.DType)
	}
	if nhwc {
		d.X = toNCHW(d.X, hi-lo, c, h, w)
	}
	return d, nil
}

// checkUnit reports the first value outside [0,1] (any non-finite value
// when allowOut is set); dim and lo turn positions into sample numbers.
func checkUnit(x []float32, dim, lo int, allowOut bool) error {
	for i, v := range x {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("sample %d holds %v", lo+i/dim, v)
		}
		if !allowOut && (v < 0 || v > 1) {
			return &PixelRangeError{Sample: lo + i/dim, Value: v, Min: slices.Min(x), Max: slices.Max(x)}
		}
	}
	return nil
}

// toNCHW transposes n images from H×W×C to C×H×W.
func toNCHW(x []float32, n, c, h, w int) []float32 {
	out := make([]float32, len(x))
	hw := h * w
	for s := range n {
		src := x[s*c*hw : (s+1)*c*hw]
		dst := out[s*c*hw : (s+1)*c*hw]
		for p := range hw {
			for ch := range c {
				dst[ch*hw+p] = src[p*c+ch]
			}
		}
	}
	return out
}

// PixelRangeError is returned for float pixels outside [0,1] (without
// Options.AllowUnnormalized). Min and Max span the whole array, so a caller
// can tell 0–255 images stored as floats from normalised ones.
type PixelRangeError struct {
	Sample   int     // first sample with a pixel outside [0,1]
	Value    float32 // that pixel
	Min, Max float32 // over every pixel
}

func (e *PixelRangeError) Error() string {
	return fmt.Sprintf("sample %d holds %v: pixels must lie in [0,1] (these span [%g, %g]); %s", e.Sample, e.Value, e.Min, e.Max, e.Advice())
}

// Advice says what to do about the range, in terms of the data itself.
func (e *PixelRangeError) Advice() string {
	if e.Min >= 0 && e.Max <= 255 {
		return "they look like 0–255 pixels stored as floats: divide x by 255, or store it as uint8 (which is scaled to [0,1] on reading)"
	}
	return "they look normalised (mean and std already applied): store the images in [0,1] and give the model its mean and std instead (the command line's --mean/--std prepend them to the graph)"
}
