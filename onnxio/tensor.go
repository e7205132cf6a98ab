package onnxio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/semirobust/srtool/internal/half"
	"github.com/semirobust/srtool/onnxio/onnxpb"
)

// Element types srtool handles, as ONNX TensorProto data types.
const (
	Float   = int32(onnxpb.TensorProto_FLOAT)
	Uint8   = int32(onnxpb.TensorProto_UINT8)
	Int8    = int32(onnxpb.TensorProto_INT8)
	Int32   = int32(onnxpb.TensorProto_INT32)
	Int64   = int32(onnxpb.TensorProto_INT64)
	Bool    = int32(onnxpb.TensorProto_BOOL)
	Float16 = int32(onnxpb.TensorProto_FLOAT16)
	Double  = int32(onnxpb.TensorProto_DOUBLE)
)

var elemSize = map[int32]int{Float: 4, Uint8: 1, Int8: 1, Int32: 4, Int64: 8, Bool: 1, Float16: 2, Double: 8}

// NumElements returns the product of the tensor's dims (1 for a scalar).
func NumElements(t *onnxpb.TensorProto) int64 {
	n := int64(1)
	for _, d := range t.GetDims() {
		n *= d
	}
	return n
}

func checkTensorSize(t *onnxpb.TensorProto) error {
	n := int64(1)
	for _, d := range t.GetDims() {
		if d < 0 {
			return fmt.Errorf("initializer %q has negative dimension %d", t.GetName(), d)
		}
		if d != 0 && n > math.MaxInt64/4/d {
			return fmt.Errorf("initializer %q is too large", t.GetName())
		}
		n *= d
	}
	if t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		return nil
	}
	var have int64
	switch {
	case len(t.GetRawData()) > 0:
		sz, ok := elemSize[t.GetDataType()]
		if !ok {
			return nil // types we never decode are left alone
		}
		if int64(len(t.GetRawData())) != n*int64(sz) {
			return fmt.Errorf("initializer %q: raw_data has %d bytes, dims %v need %d", t.GetName(), len(t.GetRawData()), t.GetDims(), n*int64(sz))
		}
		return nil
	case len(t.GetFloatData()) > 0:
		have = int64(len(t.GetFloatData()))
	case len(t.GetInt64Data()) > 0:
		have = int64(len(t.GetInt64Data()))
	case len(t.GetInt32Data()) > 0:
		have = int64(len(t.GetInt32Data()))
	case len(t.GetDoubleData()) > 0:
		have = int64(len(t.GetDoubleData()))
	default:
		if n == 0 {
			return nil
		}
		if _, ok := elemSize[t.GetDataType()]; !ok {
			return nil
		}
		return fmt.Errorf("initializer %q (dims %v) holds no data", t.GetName(), t.GetDims())
	}
	if have != n {
		return fmt.Errorf("initializer %q: %d values, dims %v need %d", t.GetName(), have, t.GetDims(), n)
	}
	return nil
}

// Float32s decodes a floating-point tensor (float, float16 or double,
// typed fields or raw_data) to float32. It fails for external data that was
// not loaded (Read loads it).
func Float32s(t *onnxpb.TensorProto) ([]float32, error) {
	switch t.GetDataType() {
	case Float, Float16, Double:
	default:
		return nil, fmt.Errorf("tensor %q has element type %s, not floating point", t.GetName(), onnxpb.TensorProto_DataType(t.GetDataType()))
	}
	n := NumElements(t)
	if err := checkTensorSize(t); err != nil {
		return nil, err
	}
	if t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		return nil, fmt.Errorf("tensor %q: external data not loaded", t.GetName())
	}
	out := make([]float32, n)
	raw := t.GetRawData()
	switch t.GetDataType() {
	case Float:
		if len(raw) > 0 {
			for i := range out {
				out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			}
		} else {
			copy(out, t.GetFloatData())
		}
	case Float16:
		if len(raw) > 0 {
			for i := range out {
				out[i] = half.ToFloat32(binary.LittleEndian.Uint16(raw[2*i:]))
			}
		} else {
			for i, v := range t.GetInt32Data() {
				out[i] = half.ToFloat32(uint16(v))
			}
		}
	case Double:
		if len(raw) > 0 {
			for i := range out {
				out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
			}
		} else {
			for i, v := range t.GetDoubleData() {
				out[i] = float32(v)
			}
		}
	default:
		return nil, fmt.Errorf("tensor %q has element type %s, not floating point", t.GetName(), onnxpb.TensorProto_DataType(t.GetDataType()))
	}
	return out, nil
}

// Int64s decodes an integer tensor (int64, int32, int8, uint8, bool) to int64.
func Int64s(t *onnxpb.TensorProto) ([]int64, error) {
	switch t.GetDataType() {
	case Int64, Int32, Int8, Uint8, Bool:
	default:
		return nil, fmt.Errorf("tensor %q has element type %s, not integer", t.GetName(), onnxpb.TensorProto_DataType(t.GetDataType()))
	}
	n := NumElements(t)
	if err := checkTensorSize(t); err != nil {
		return nil, err
	}
	if t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		return nil, fmt.Errorf("tensor %q: external data not loaded", t.GetName())
	}
	out := make([]int64, n)
	raw := t.GetRawData()
	switch t.GetDataType() {
	case Int64:
		if len(raw) > 0 {
			for i := range out {
				out[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
			}
		} else {
			copy(out, t.GetInt64Data())
		}
	case Int32:
		if len(raw) > 0 {
			for i := range out {
				out[i] = int64(int32(binary.LittleEndian.Uint32(raw[4*i:])))
			}
		} else {
			for i, v := range t.GetInt32Data() {
				out[i] = int64(v)
			}
		}
	case Int8, Uint8, Bool:
		if len(raw) > 0 {
			for i := range out {
				if t.GetDataType() == Int8 {
					out[i] = int64(int8(raw[i]))
				} else {
					out[i] = int64(raw[i])
				}
			}
		} else {
			for i, v := range t.GetInt32Data() {
				out[i] = int64(v)
			}
		}
	default:
		return nil, fmt.Errorf("tensor %q has element type %s, not integer", t.GetName(), onnxpb.TensorProto_DataType(t.GetDataType()))
	}
	return out, nil
}

// FloatTensor makes a float32 initializer stored as raw_data. It copies data.
func FloatTensor(name string, dims []int64, data []float32) *onnxpb.TensorProto {
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return &onnxpb.TensorProto{Name: name, Dims: append([]int64(nil), dims...), DataType: Float, RawData: raw}
}

// Int64Tensor makes an int64 initializer stored as raw_data. It copies data.
func Int64Tensor(name string, dims []int64, data []int64) *onnxpb.TensorProto {
	raw := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	return &onnxpb.TensorProto{Name: name, Dims: append([]int64(nil), dims...), DataType: Int64, RawData: raw}
}

// SetFloat32s replaces the contents of a float tensor, keeping name and dims.
func SetFloat32s(t *onnxpb.TensorProto, data []float32) error {
	if int64(len(data)) != NumElements(t) {
		return fmt.Errorf("tensor %q: %d values for dims %v", t.GetName(), len(data), t.GetDims())
	}
	nt := FloatTensor(t.GetName(), t.GetDims(), data)
	t.DataType, t.RawData = Float, nt.RawData
	t.FloatData, t.DoubleData, t.Int32Data = nil, nil, nil
	t.ExternalData, t.DataLocation = nil, onnxpb.TensorProto_DEFAULT
	return nil
}

// ErrExternalPath reports an external-data location that escapes the model's folder.
var ErrExternalPath = errors.New("external data location escapes the model's folder")

// externalFile is one external-data file while a model loads: opened once,
// with its size and the bytes its tensors have claimed so far.
type externalFile struct {
	f          *os.File
	size, used int64
}

// loadExternal reads every external-data initializer into raw_data. Every
// offset and length is checked, overflow-safe, against the real size of its
// file before anything is allocated, and the tensors stored in one file may
// not claim more bytes in all than the file holds, so overlapping ranges
// cannot multiply a small file into a huge allocation.
func (m *Model) loadExternal() error {
	files := map[string]*externalFile{}
	defer func() {
		for _, ef := range files {
			ef.f.Close()
		}
	}()
	for _, t := range m.Graph().GetInitializer() {
		if t.GetDataLocation() != onnxpb.TensorProto_EXTERNAL {
			continue
		}
		if err := loadExternalTensor(t, m.Dir, files); err != nil {
			return err
		}
	}
	return nil
}

func loadExternalTensor(t *onnxpb.TensorProto, dir string, files map[string]*externalFile) error {
	var loc string
	var offset, length int64 = 0, -1
	for _, kv := range t.GetExternalData() {
		switch kv.GetKey() {
		case "location":
			loc = kv.GetValue()
		case "offset":
			v, err := strconv.ParseInt(kv.GetValue(), 10, 64)
			if err != nil || v < 0 {
				return fmt.Errorf("tensor %q: bad external-data offset %q", t.GetName(), kv.GetValue())
			}
			offset = v
		case "length":
			v, err := strconv.ParseInt(kv.GetValue(), 10, 64)
			if err != nil || v < 0 {
				return fmt.Errorf("tensor %q: bad external-data length %q", t.GetName(), kv.GetValue())
			}
			length = v
		}
	}
	if loc == "" {
		return fmt.Errorf("tensor %q: external data without a location", t.GetName())
	}
	if dir == "" {
		return fmt.Errorf("tensor %q: external data %q cannot be resolved for a model read from memory", t.GetName(), loc)
	}
	path, err := SafeJoin(dir, loc)
	if err != nil {
		return fmt.Errorf("tensor %q: %w: %q", t.GetName(), err, loc)
	}
	sz, ok := elemSize[t.GetDataType()]
	if !ok {
		return fmt.Errorf("tensor %q: external data of element type %d is not supported", t.GetName(), t.GetDataType())
	}
	if err := checkTensorSize(t); err != nil {
		return err
	}
	n := NumElements(t)
	if n > math.MaxInt64/int64(sz) {
		return fmt.Errorf("tensor %q: dims %v are too large", t.GetName(), t.GetDims())
	}
	want := n * int64(sz)
	if length >= 0 && length != want {
		return fmt.Errorf("tensor %q: external-data length %d, dims %v need %d bytes", t.GetName(), length, t.GetDims(), want)
	}
	ef := files[path]
	if ef == nil {
		f, size, err := OpenRegular(path)
		if err != nil {
			return fmt.Errorf("tensor %q: external data %s: %w", t.GetName(), loc, err)
		}
		ef = &externalFile{f: f, size: size}
		files[path] = ef
	}
	// Written so that nothing overflows: offset and want are ≥ 0.
	if offset > ef.size || want > ef.size-offset {
		return fmt.Errorf("tensor %q: external data %s: dims %v need %d bytes at offset %d, the file has %d", t.GetName(), loc, t.GetDims(), want, offset, ef.size)
	}
	if want > ef.size-ef.used {
		return fmt.Errorf("tensor %q: external data %s: the tensors stored there claim more than its %d bytes in all (overlapping ranges)", t.GetName(), loc, ef.size)
	}
	ef.used += want
	buf := make([]byte, want)
	if _, err := ef.f.ReadAt(buf, offset); err != nil && !(errors.Is(err, io.EOF) && want == 0) {
		return fmt.Errorf("tensor %q: external data %s: reading %d bytes at offset %d: %w", t.GetName(), loc, want, offset, err)
	}
	t.RawData = buf
	t.ExternalData = nil
	t.DataLocation = onnxpb.TensorProto_DEFAULT
	return nil
}

// SafeJoin joins a relative location to dir and refuses absolute paths and
// paths that leave dir (after cleaning and resolving symbolic links).
func SafeJoin(dir, loc string) (string, error) {
	if filepath.IsAbs(loc) || strings.HasPrefix(loc, "/") || strings.Contains(loc, "\\") || strings.ContainsRune(loc, 0) {
		return "", ErrExternalPath
	}
	clean := filepath.Clean(loc)
	if clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return "", ErrExternalPath
	}
	p := filepath.Join(dir, clean)
	if real, err := filepath.EvalSymlinks(p); err == nil {
		rdir, err := filepath.EvalSymlinks(dir)
		if err != nil {
			rdir = dir
		}
		rel, err := filepath.Rel(rdir, real)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return "", ErrExternalPath
		}
	}
	return p, nil
}
