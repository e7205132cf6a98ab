package npy

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/semirobust/srtool/internal/atomicfile"
	"github.com/semirobust/srtool/internal/half"
	"github.com/semirobust/srtool/onnxio"
)

// Array is an n-dimensional array read from or written to a .npy file.
// Data holds the elements in C order as raw little-endian bytes of DType.
type Array struct {
	DType string // canonical NumPy type string without byte order, e.g. "f4", "i8", "u1", "b1", "f2"
	Shape []int
	Data  []byte
}

// maxHeader bounds the header length we accept (NumPy uses at most a few hundred bytes).
const maxHeader = 1 << 20

// maxBytes bounds the data size of one array (128 GiB, and never more than an
// int can hold) so that a corrupt header cannot request an absurd allocation.
const maxBytes = min(1<<37, math.MaxInt)

// chunk is how much Read allocates ahead of the data it has actually received
// when the stream length is unknown (the buffer then grows with the data).
const chunk = 1 << 20

var itemSize = map[string]int{
	"b1": 1, "u1": 1, "i1": 1, "i2": 2, "u2": 2, "i4": 4, "u4": 4, "i8": 8, "u8": 8,
	"f2": 2, "f4": 4, "f8": 8,
}

// Len returns the number of elements (the product of Shape; 1 for a scalar).
func (a *Array) Len() int {
	n := 1
	for _, d := range a.Shape {
		n *= d
	}
	return n
}

// Float32 converts the elements to float32.
func (a *Array) Float32() []float32 {
	out := make([]float32, a.Len())
	switch a.DType {
	case "f4":
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(a.Data[4*i:]))
		}
	case "u1":
		for i := range out {
			out[i] = float32(a.Data[i])
		}
	default:
		f := a.Float64()
		for i, v := range f {
			out[i] = float32(v)
		}
	}
	return out
}

// Float64 converts the elements to float64.
func (a *Array) Float64() []float64 {
	n := a.Len()
	out := make([]float64, n)
	d := a.Data
	for i := 0; i < n; i++ {
		switch a.DType {
		case "b1", "u1":
			out[i] = float64(d[i])
		case "i1":
			out[i] = float64(int8(d[i]))
		case "i2":
			out[i] = float64(int16(binary.LittleEndian.Uint16(d[2*i:])))
		case "u2":
			out[i] = float64(binary.LittleEndian.Uint16(d[2*i:]))
		case "i4":
			out[i] = float64(int32(binary.LittleEndian.Uint32(d[4*i:])))
		case "u4":
			out[i] = float64(binary.LittleEndian.Uint32(d[4*i:]))
		case "i8":
			out[i] = float64(int64(binary.LittleEndian.Uint64(d[8*i:])))
		case "u8":
			out[i] = float64(binary.LittleEndian.Uint64(d[8*i:]))
		case "f2":
			out[i] = float64(half.ToFloat32(binary.LittleEndian.Uint16(d[2*i:])))
		case "f4":
			out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(d[4*i:])))
		case "f8":
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(d[8*i:]))
		}
	}
	return out
}

// Int64 converts the elements to int64. Integer dtypes convert exactly;
// floating-point values must be integral and within the int64 range, and
// uint64 values must not exceed math.MaxInt64; otherwise an error names the
// first offending index.
func (a *Array) Int64() ([]int64, error) {
	n := a.Len()
	out := make([]int64, n)
	d := a.Data
	switch a.DType {
	case "b1", "u1":
		for i := range out {
			out[i] = int64(d[i])
		}
	case "i1":
		for i := range out {
			out[i] = int64(int8(d[i]))
		}
	case "i2":
		for i := range out {
			out[i] = int64(int16(binary.LittleEndian.Uint16(d[2*i:])))
		}
	case "u2":
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint16(d[2*i:]))
		}
	case "i4":
		for i := range out {
			out[i] = int64(int32(binary.LittleEndian.Uint32(d[4*i:])))
		}
	case "u4":
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint32(d[4*i:]))
		}
	case "i8":
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(d[8*i:]))
		}
	case "u8":
		for i := range out {
			v := binary.LittleEndian.Uint64(d[8*i:])
			if v > math.MaxInt64 {
				return nil, fmt.Errorf("npy: element %d is %d, beyond the int64 range", i, v)
			}
			out[i] = int64(v)
		}
	default:
		for i, v := range a.Float64() {
			// -2^63 is representable; 2^63 is not.
			if v != math.Trunc(v) || math.IsInf(v, 0) || math.IsNaN(v) || v < -(1<<63) || v >= 1<<63 {
				return nil, fmt.Errorf("npy: element %d is %v, not an int64", i, v)
			}
			out[i] = int64(v)
		}
	}
	return out, nil
}

// IsFloat reports whether the dtype is a floating-point type.
func (a *Array) IsFloat() bool { return strings.HasPrefix(a.DType, "f") }

// ItemSize returns the size in bytes of one element of dtype, or 0 when npy
// does not support the dtype.
func ItemSize(dtype string) int { return itemSize[dtype] }

// Check reports whether a is well formed: a supported dtype, no negative
// dimension, and exactly as many data bytes as the shape needs. Arrays
// returned by Read are always well formed; conversions such as Float32 may
// panic on one that is not.
func (a *Array) Check() error {
	if a == nil {
		return errors.New("npy: nil array")
	}
	size, ok := itemSize[a.DType]
	if !ok {
		return fmt.Errorf("npy: unsupported dtype %q", a.DType)
	}
	n, err := numBytes(a.Shape, size)
	if err != nil {
		return err
	}
	if len(a.Data) != n {
		return fmt.Errorf("npy: data has %d bytes; shape %v of %s needs %d", len(a.Data), a.Shape, a.DType, n)
	}
	return nil
}

// numBytes returns the data size of shape with the given item size, or an
// error for a negative dimension or a size beyond maxBytes.
func numBytes(shape []int, size int) (int, error) {
	n := int64(size)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("npy: negative dimension in shape %v", shape)
		}
		if d != 0 && n > maxBytes/int64(d) {
			return 0, fmt.Errorf("npy: shape %v too large", shape)
		}
		n *= int64(d)
	}
	return int(n), nil
}

// FromFloat32 makes a float32 array of the given shape; it copies data.
func FromFloat32(data []float32, shape ...int) *Array {
	b := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return &Array{DType: "f4", Shape: append([]int{}, shape...), Data: b}
}

// FromFloat64 makes a float64 array of the given shape; it copies data.
func FromFloat64(data []float64, shape ...int) *Array {
	b := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
	}
	return &Array{DType: "f8", Shape: append([]int{}, shape...), Data: b}
}

// FromInt64 makes an int64 array of the given shape; it copies data.
func FromInt64(data []int64, shape ...int) *Array {
	b := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
	}
	return &Array{DType: "i8", Shape: append([]int{}, shape...), Data: b}
}

// FromUint8 makes a uint8 array of the given shape; it copies data.
func FromUint8(data []uint8, shape ...int) *Array {
	return &Array{DType: "u1", Shape: append([]int{}, shape...), Data: append([]byte(nil), data...)}
}

// Read decodes one .npy stream (format versions 1.0, 2.0 and 3.0). It
// consumes exactly the array's bytes from r, so several arrays written one
// after another can be read in turn.
func Read(r io.Reader) (*Array, error) {
	return read(r, -1)
}

// read decodes one .npy stream; avail is the stream's length in bytes, or
// negative when unknown. A known length lets read reject a truncated stream
// before allocating and allocate the data exactly once.
func read(r io.Reader, avail int64) (*Array, error) {
	var pre [12]byte
	if _, err := io.ReadFull(r, pre[:8]); err != nil {
		return nil, fmt.Errorf("npy: reading magic: %w", noEOF(err))
	}
	if string(pre[:6]) != "\x93NUMPY" {
		return nil, errors.New("npy: not a .npy file (bad magic)")
	}
	var hlen, prelen int
	switch pre[6] {
	case 1:
		if _, err := io.ReadFull(r, pre[8:10]); err != nil {
			return nil, fmt.Errorf("npy: reading header length: %w", noEOF(err))
		}
		hlen, prelen = int(binary.LittleEndian.Uint16(pre[8:])), 10
	case 2, 3:
		if _, err := io.ReadFull(r, pre[8:12]); err != nil {
			return nil, fmt.Errorf("npy: reading header length: %w", noEOF(err))
		}
		h := binary.LittleEndian.Uint32(pre[8:])
		if h > maxHeader {
			return nil, fmt.Errorf("npy: header length %d too large", h)
		}
		hlen, prelen = int(h), 12
	default:
		return nil, fmt.Errorf("npy: unsupported format version %d.%d", pre[6], pre[7])
	}
	if avail >= 0 && int64(prelen+hlen) > avail {
		return nil, fmt.Errorf("npy: header truncated: needs %d bytes, stream has %d", prelen+hlen, avail)
	}
	hdr := make([]byte, hlen)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, fmt.Errorf("npy: reading header: %w", noEOF(err))
	}
	descr, fortran, shape, err := parseHeader(string(hdr))
	if err != nil {
		return nil, err
	}
	order := descr[0]
	dt := descr[1:]
	size, ok := itemSize[dt]
	if !ok || (order != '<' && order != '>' && order != '|' && order != '=') {
		return nil, fmt.Errorf("npy: unsupported dtype %q", descr)
	}
	nb, err := numBytes(shape, size)
	if err != nil {
		return nil, err
	}
	var data []byte
	if avail >= 0 {
		if have := avail - int64(prelen+hlen); int64(nb) > have {
			return nil, fmt.Errorf("npy: data truncated: shape %v of %s needs %d bytes, stream has %d", shape, dt, nb, have)
		}
		data = make([]byte, nb)
		if got, err := io.ReadFull(r, data); err != nil {
			return nil, fmt.Errorf("npy: data truncated: got %d of %d bytes: %w", got, nb, noEOF(err))
		}
	} else {
		// Grow with the data actually received, so a corrupt header cannot
		// make us allocate far more than the stream holds.
		buf := bytes.NewBuffer(make([]byte, 0, min(nb, chunk)))
		got, err := io.CopyN(buf, r, int64(nb))
		if err != nil {
			return nil, fmt.Errorf("npy: data truncated: got %d of %d bytes: %w", got, nb, noEOF(err))
		}
		data = buf.Bytes()
	}
	if order == '>' && size > 1 {
		for i := 0; i < len(data); i += size {
			for a, b := i, i+size-1; a < b; a, b = a+1, b-1 {
				data[a], data[b] = data[b], data[a]
			}
		}
	}
	arr := &Array{DType: dt, Shape: shape, Data: data}
	if fortran && len(shape) > 1 {
		arr.Data = fortranToC(data, shape, size)
	}
	return arr, nil
}

// noEOF turns io.EOF into io.ErrUnexpectedEOF: inside an array, the end of
// the stream always means truncation.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func fortranToC(data []byte, shape []int, size int) []byte {
	out := make([]byte, len(data))
	nd := len(shape)
	idx := make([]int, nd)
	n := len(data) / size
	// Fortran strides.
	fstr := make([]int, nd)
	s := 1
	for i := 0; i < nd; i++ {
		fstr[i] = s
		s *= shape[i]
	}
	for c := 0; c < n; c++ {
		f := 0
		for i := 0; i < nd; i++ {
			f += idx[i] * fstr[i]
		}
		copy(out[c*size:(c+1)*size], data[f*size:(f+1)*size])
		for i := nd - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < shape[i] {
				break
			}
			idx[i] = 0
		}
	}
	return out
}

// parseHeader parses the Python dict literal of a .npy header.
func parseHeader(h string) (descr string, fortran bool, shape []int, err error) {
	h = strings.TrimSpace(h)
	if !strings.HasPrefix(h, "{") || !strings.HasSuffix(h, "}") {
		return "", false, nil, fmt.Errorf("npy: malformed header %q", h)
	}
	get := func(key string) (string, bool) {
		i := strings.Index(h, "'"+key+"'")
		if i < 0 {
			return "", false
		}
		rest := strings.TrimSpace(h[i+len(key)+2:])
		if !strings.HasPrefix(rest, ":") {
			return "", false
		}
		return strings.TrimSpace(rest[1:]), true
	}
	d, ok := get("descr")
	if !ok || len(d) < 2 || d[0] != '\'' {
		return "", false, nil, fmt.Errorf("npy: header has no string descr: %q", h)
	}
	end := strings.IndexByte(d[1:], '\'')
	if end < 2 {
		return "", false, nil, fmt.Errorf("npy: malformed descr in %q", h)
	}
	descr = d[1 : 1+end]
	if len(descr) == 2 { // e.g. "u1" without order char is not produced by numpy, but accept
		descr = "|" + descr
	}
	f, ok := get("fortran_order")
	if !ok {
		return "", false, nil, fmt.Errorf("npy: header has no fortran_order: %q", h)
	}
	fortran = strings.HasPrefix(f, "True")
	s, ok := get("shape")
	if !ok || !strings.HasPrefix(s, "(") {
		return "", false, nil, fmt.Errorf("npy: header has no shape: %q", h)
	}
	close := strings.IndexByte(s, ')')
	if close < 0 {
		return "", false, nil, fmt.Errorf("npy: malformed shape in %q", h)
	}
	shape = []int{}
	for _, part := range strings.Split(s[1:close], ",") {
		part = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(part), "L"))
		if part == "" {
			continue
		}
		v, err := strconv.Atoi(part)
		if err != nil {
			return "", false, nil, fmt.Errorf("npy: bad dimension %q in shape", part)
		}
		shape = append(shape, v)
	}
	return descr, fortran, shape, nil
}

// Write encodes a as a .npy stream (little-endian, C order); the header is
// version 1.0, or 2.0 when it would not fit in 64 KiB.
func Write(w io.Writer, a *Array) error {
	if err := a.Check(); err != nil {
		return err
	}
	order := "<"
	if itemSize[a.DType] == 1 {
		order = "|"
	}
	dims := make([]string, len(a.Shape))
	for i, d := range a.Shape {
		dims[i] = strconv.Itoa(d)
	}
	shape := strings.Join(dims, ", ")
	if len(a.Shape) == 1 {
		shape += ","
	}
	hdr := fmt.Sprintf("{'descr': '%s%s', 'fortran_order': False, 'shape': (%s), }", order, a.DType, shape)
	// The data starts at a multiple of 64 bytes; the header ends with '\n'.
	prelen, version := 10, byte(1)
	if len(hdr)+1+prelen+63 > math.MaxUint16 {
		prelen, version = 12, 2
	}
	total := prelen + len(hdr) + 1
	pad := (64 - total%64) % 64
	hdr += strings.Repeat(" ", pad) + "\n"
	pre := []byte{0x93, 'N', 'U', 'M', 'P', 'Y', version, 0, 0, 0, 0, 0}[:prelen]
	if version == 1 {
		binary.LittleEndian.PutUint16(pre[8:], uint16(len(hdr)))
	} else {
		binary.LittleEndian.PutUint32(pre[8:], uint32(len(hdr)))
	}
	if _, err := w.Write(pre); err != nil {
		return err
	}
	if _, err := io.WriteString(w, hdr); err != nil {
		return err
	}
	_, err := w.Write(a.Data)
	return err
}

// ReadFile reads a .npy file, which must be a regular file (a named pipe or
// device is refused, see onnxio.OpenRegular). The shape in the header is
// checked against the file's size before the data is allocated.
func ReadFile(path string) (*Array, error) {
	f, size, err := onnxio.OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	a, err := read(bufio.NewReaderSize(f, 1<<16), size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// WriteFile writes a .npy file atomically (atomicfile.Write: a temporary
// file in the same folder, then a rename), so a failed write never leaves a
// partial file.
func WriteFile(path string, a *Array) error {
	return atomicfile.Write(path, func(w io.Writer) error { return Write(w, a) })
}

// ReadNPZ reads every array of a .npz archive (stored or deflated), keyed by
// name without the ".npy" suffix; path must be a regular file. Entries whose
// names do not end in ".npy" are skipped. See ReadNPZFrom for the checks on
// entry sizes.
func ReadNPZ(path string) (map[string]*Array, error) {
	f, size, err := onnxio.OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := ReadNPZFrom(f, size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// ReadNPZFrom reads every array of a .npz archive of the given size from r,
// like ReadNPZ.
//
// Zip entry sizes are checked before anything is allocated: an entry's
// compressed bytes must lie inside the archive, a stored entry's declared
// size must equal its compressed size, a deflated entry cannot declare more
// than DEFLATE's largest ratio (1032:1) allows, and all entries together at
// most 128 GiB. The zip reader fails as soon as an entry yields more bytes
// than it declares, so a zip bomb or a lying entry size costs at most what
// the archive's own bytes can really expand to.
func ReadNPZFrom(r io.ReaderAt, size int64) (map[string]*Array, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("npz: not a readable zip archive: %w", err)
	}
	out := map[string]*Array{}
	var total uint64
	for _, f := range zr.File {
		if !strings.HasSuffix(f.Name, ".npy") {
			continue
		}
		key := strings.TrimSuffix(f.Name, ".npy")
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("npz: duplicate entry %s", f.Name)
		}
		if err := CheckZipEntry(f, size); err != nil {
			return nil, fmt.Errorf("npz: %w", err)
		}
		if total += f.UncompressedSize64; total > maxBytes {
			return nil, fmt.Errorf("npz: entries up to %s declare %d bytes in all, more than the limit of %d", f.Name, total, int64(maxBytes))
		}
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("npz: %s: %w", f.Name, err)
		}
		// The zip reader fails once more than the declared size is read, and
		// CheckZipEntry tied that size to the archive's bytes, so it is a
		// trustworthy bound on the array.
		a, err := read(bufio.NewReaderSize(rc, 1<<16), int64(f.UncompressedSize64))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("npz: %s: %w", f.Name, err)
		}
		out[key] = a
	}
	return out, nil
}

// WriteNPZ writes arrays into an uncompressed .npz archive atomically, as
// numpy.savez does. Entries are written in name order.
func WriteNPZ(path string, arrays map[string]*Array) error {
	return writeNPZ(path, arrays, zip.Store)
}

// WriteNPZCompressed writes arrays into a deflated .npz archive atomically,
// as numpy.savez_compressed does.
func WriteNPZCompressed(path string, arrays map[string]*Array) error {
	return writeNPZ(path, arrays, zip.Deflate)
}

func writeNPZ(path string, arrays map[string]*Array, method uint16) error {
	names := make([]string, 0, len(arrays))
	for k := range arrays {
		names = append(names, k)
	}
	sort.Strings(names)
	return atomicfile.Write(path, func(w io.Writer) error {
		zw := zip.NewWriter(w)
		zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
			return flate.NewWriter(w, flate.DefaultCompression)
		})
		for _, k := range names {
			fw, err := zw.CreateHeader(&zip.FileHeader{Name: k + ".npy", Method: method})
			if err != nil {
				return err
			}
			if err := Write(fw, arrays[k]); err != nil {
				return fmt.Errorf("array %s: %w", k, err)
			}
		}
		return zw.Close()
	})
}

// MaxDeflateRatio is the most DEFLATE (zip, gzip) can expand its input:
// 258 bytes from one 2-bit code at best, about 1032:1 (zlib's technical
// notes). Readers use it to refuse declared sizes no stream can produce.
const MaxDeflateRatio = 1032

// CheckZipEntry checks the sizes an archive of archiveSize bytes declares
// for its entry f before f is read: the compressed bytes lie inside the
// archive; a stored entry declares as many bytes as it holds; a deflated
// one no more than DEFLATE can expand its compressed bytes to; other
// methods are refused. Go's zip reader then fails once an entry yields
// more bytes than declared, so after this check the declared size bounds
// what reading f costs.
func CheckZipEntry(f *zip.File, archiveSize int64) error {
	off, err := f.DataOffset()
	if err != nil {
		return fmt.Errorf("%s: %w", f.Name, err)
	}
	if off < 0 || off > archiveSize || f.CompressedSize64 > uint64(archiveSize-off) {
		return fmt.Errorf("%s: declares %d compressed bytes at offset %d of a %d-byte archive", f.Name, f.CompressedSize64, off, archiveSize)
	}
	switch f.Method {
	case zip.Store:
		if f.UncompressedSize64 != f.CompressedSize64 {
			return fmt.Errorf("%s: stored entry declares %d bytes but holds %d", f.Name, f.UncompressedSize64, f.CompressedSize64)
		}
	case zip.Deflate:
		if f.UncompressedSize64 > f.CompressedSize64*MaxDeflateRatio+1024 {
			return fmt.Errorf("%s: declares %d bytes from %d deflated bytes, more than DEFLATE can expand to", f.Name, f.UncompressedSize64, f.CompressedSize64)
		}
	default:
		return fmt.Errorf("%s: compression method %d is not supported (want stored or deflated)", f.Name, f.Method)
	}
	return nil
}
