package estimators

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"

	"gonum.org/v1/gonum/mat"
)

// Estimator estimates a dependence measure between the paired rows of x and
// y (rows are samples, columns are features). Implementations are plain
// option structs whose zero value is the documented default; they are safe
// for concurrent use and never modify x or y.
type Estimator interface {
	// Estimate returns the dependence between x and y in the estimator's
	// unit (see the estimator's doc comment).
	Estimate(x, y mat.Matrix) (float64, error)
	// Name returns the short name New accepts ("edge", "ksg", ...).
	Name() string
}

// Units selects the unit of an information estimate. The zero value is Bits.
// It marshals to JSON as "bits" or "nats".
type Units int

const (
	// Bits reports information with base-2 logarithms (the default).
	Bits Units = iota
	// Nats reports information with natural logarithms.
	Nats
)

// String returns "bits" or "nats".
func (u Units) String() string {
	switch u {
	case Bits:
		return "bits"
	case Nats:
		return "nats"
	}
	return fmt.Sprintf("Units(%d)", int(u))
}

// MarshalText implements encoding.TextMarshaler.
func (u Units) MarshalText() ([]byte, error) {
	if u != Bits && u != Nats {
		return nil, fmt.Errorf("estimators: invalid units %d", int(u))
	}
	return []byte(u.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler; it accepts "bits",
// "nats" and the empty string (bits).
func (u *Units) UnmarshalText(b []byte) error {
	switch strings.ToLower(string(b)) {
	case "", "bits", "bit":
		*u = Bits
	case "nats", "nat":
		*u = Nats
	default:
		return fmt.Errorf("estimators: unknown units %q (want bits or nats)", b)
	}
	return nil
}

func (u Units) check() error {
	if u != Bits && u != Nats {
		return fmt.Errorf("estimators: invalid units %d", int(u))
	}
	return nil
}

// fromNats converts a value in nats to u.
func (u Units) fromNats(v float64) float64 {
	if u == Nats {
		return v
	}
	return v / math.Ln2
}

// fromBits converts a value in bits to u.
func (u Units) fromBits(v float64) float64 {
	if u == Nats {
		return v * math.Ln2
	}
	return v
}

// Sentinel errors; the errors returned wrap them, so test with errors.Is.
var (
	// ErrTooFewSamples means the data has fewer rows than the estimator needs
	// (for example k+1 for KSG, 20 for EDGE's p-stable hashing). PerClass
	// skips classes whose estimate fails with it.
	ErrTooFewSamples = errors.New("too few samples")
	// ErrShape means x and y disagree in rows, or a matrix is empty.
	ErrShape = errors.New("bad shape")
	// ErrNonFinite means the data holds NaN or ±Inf.
	ErrNonFinite = errors.New("non-finite value")
	// ErrConstant means every column of one side is constant, so the
	// dependence is undefined for a scale-free estimator.
	ErrConstant = errors.New("constant data")
	// ErrOption means an option value is out of range.
	ErrOption = errors.New("bad option")
	// ErrSingular means a covariance or kernel matrix could not be
	// factorised (collinear columns, duplicated features).
	ErrSingular = errors.New("singular matrix")
)

// rows is a read-only row-major view of a matrix.
type rows struct {
	n, d, stride int
	a            []float64
}

func (r rows) row(i int) []float64 { return r.a[i*r.stride : i*r.stride+r.d] }

func (r rows) at(i, j int) float64 { return r.a[i*r.stride+j] }

// view returns a row-major view of m without copying when m is a *mat.Dense.
func view(m mat.Matrix) rows {
	if rm, ok := m.(mat.RawMatrixer); ok {
		raw := rm.RawMatrix()
		return rows{n: raw.Rows, d: raw.Cols, stride: raw.Stride, a: raw.Data}
	}
	n, d := m.Dims()
	a := make([]float64, n*d)
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			a[i*d+j] = m.At(i, j)
		}
	}
	return rows{n: n, d: d, stride: d, a: a}
}

// subset copies the given rows.
func (r rows) subset(idx []int) rows {
	a := make([]float64, len(idx)*r.d)
	for k, i := range idx {
		copy(a[k*r.d:(k+1)*r.d], r.row(i))
	}
	return rows{n: len(idx), d: r.d, stride: r.d, a: a}
}

// dense returns r as a *mat.Dense sharing its data.
func (r rows) dense() *mat.Dense {
	return mat.NewDense(r.n, r.d, r.a[:(r.n-1)*r.stride+r.d]).Slice(0, r.n, 0, r.d).(*mat.Dense)
}

func (r rows) finite() error {
	for i := 0; i < r.n; i++ {
		acc := 0.0
		row := r.row(i)
		for _, v := range row {
			acc += v - v // NaN for NaN and ±Inf, else 0
		}
		if math.IsNaN(acc) {
			for j, v := range row {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return fmt.Errorf("row %d column %d is %v: %w", i, j, v, ErrNonFinite)
				}
			}
		}
	}
	return nil
}

// constantCols reports, per column, whether every row holds the same value.
func (r rows) constantCols() []bool {
	c := make([]bool, r.d)
	if r.n == 0 {
		return c
	}
	first := r.row(0)
	for j := range c {
		c[j] = true
	}
	left := r.d
	for i := 1; i < r.n && left > 0; i++ {
		for j, v := range r.row(i) {
			if c[j] && v != first[j] {
				c[j] = false
				left--
			}
		}
	}
	return c
}

// pair validates x and y and returns their views.
func pair(x, y mat.Matrix) (rows, rows, error) {
	if x == nil || y == nil {
		return rows{}, rows{}, fmt.Errorf("nil matrix: %w", ErrShape)
	}
	xv, yv := view(x), view(y)
	if xv.n != yv.n {
		return xv, yv, fmt.Errorf("x has %d rows, y has %d: %w", xv.n, yv.n, ErrShape)
	}
	if xv.n == 0 || xv.d == 0 || yv.d == 0 {
		return xv, yv, fmt.Errorf("empty matrix (x %d×%d, y %d×%d): %w", xv.n, xv.d, yv.n, yv.d, ErrShape)
	}
	if xv.n < 2 {
		return xv, yv, fmt.Errorf("%d sample: %w", xv.n, ErrTooFewSamples)
	}
	if err := xv.finite(); err != nil {
		return xv, yv, fmt.Errorf("x: %w", err)
	}
	if err := yv.finite(); err != nil {
		return xv, yv, fmt.Errorf("y: %w", err)
	}
	return xv, yv, nil
}

// Names lists the names New accepts.
func Names() []string {
	n := make([]string, 0, len(registry))
	for k := range registry {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

var registry = map[string]func() Estimator{
	"edge":  func() Estimator { return &EDGE{} },
	"ksg":   func() Estimator { return &KSG{} },
	"gauss": func() Estimator { return &Gaussian{} },
	"cka":   func() Estimator { return &CKA{} },
	"hsic":  func() Estimator { return &HSIC{} },
	"nocco": func() Estimator { return &NOCCO{} },
	"corr":  func() Estimator { return &Corr{} },
}

// New returns the estimator called name ("edge", "ksg", "gauss", "cka",
// "hsic", "nocco", "corr") with its options decoded from the JSON object
// options (nil or empty for the defaults). Unknown option fields, data
// after the object and out-of-range values (Validate) are an error that
// wraps ErrOption. The result is a value of the estimator's type (EDGE, KSG, ...), so
// marshalling it to JSON records exactly the options that ran.
func New(name string, options []byte) (Estimator, error) {
	mk, ok := registry[strings.ToLower(name)]
	if !ok {
		return nil, fmt.Errorf("estimators: unknown estimator %q (have %s): %w", name, strings.Join(Names(), ", "), ErrOption)
	}
	p := mk()
	if len(bytes.TrimSpace(options)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(options))
		dec.DisallowUnknownFields()
		if err := dec.Decode(p); err != nil {
			return nil, fmt.Errorf("estimators: %s options: %v: %w", name, err, ErrOption)
		}
		if _, err := dec.Token(); err != io.EOF {
			return nil, fmt.Errorf("estimators: %s options: data after the JSON object: %w", name, ErrOption)
		}
	}
	if err := Validate(p); err != nil {
		return nil, err
	}
	switch e := p.(type) {
	case *EDGE:
		return *e, nil
	case *KSG:
		return *e, nil
	case *Gaussian:
		return *e, nil
	case *CKA:
		return *e, nil
	case *HSIC:
		return *e, nil
	case *NOCCO:
		return *e, nil
	case *Corr:
		return *e, nil
	}
	return nil, fmt.Errorf("estimators: %s: unhandled type", name)
}
