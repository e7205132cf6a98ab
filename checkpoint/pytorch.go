package checkpoint

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"

	"github.com/nlpodyssey/gopickle/types"

	"github.com/semirobust/srtool/npy"
)

// storageDTypes maps torch's legacy storage class names (torch.FloatStorage,
// torch.cuda.HalfStorage, …) to element types.
var storageDTypes = map[string]DType{
	"FloatStorage": F32, "HalfStorage": F16, "BFloat16Storage": BF16, "DoubleStorage": F64,
	"LongStorage": I64, "IntStorage": I32, "ShortStorage": I16, "CharStorage": I8,
	"ByteStorage": U8, "BoolStorage": Bool,
}

type storageClass struct{ dtype DType }

// storage is one torch storage: numel elements of dtype. Its bytes are
// fetched on first use (zip format) or filled after the main pickle
// (legacy format).
type storage struct {
	dtype DType
	numel int64
	data  []byte
	load  func() ([]byte, error)
	err   error
	// budget, when not nil, is how many bytes the tensors of this file may
	// still copy out of their storages (see materializeBudget).
	budget *int64
}

func (s *storage) bytes() ([]byte, error) {
	if s.data == nil && s.err == nil {
		if s.load == nil {
			s.err = errors.New("storage data missing")
		} else {
			s.data, s.err = s.load()
		}
	}
	return s.data, s.err
}

// pyTensor is what torch._utils._rebuild_tensor_v2 describes: a strided view
// of a storage.
type pyTensor struct {
	st     *storage
	offset int64
	size   []int64
	stride []int64
}

type rebuildTensor struct{}

func (rebuildTensor) Call(args ...any) (any, error) {
	// (storage, storage_offset, size, stride[, requires_grad, backward_hooks[, metadata]])
	if len(args) < 4 {
		return nil, fmt.Errorf("_rebuild_tensor: %d arguments", len(args))
	}
	st, ok := args[0].(*storage)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor: storage is a %T", args[0])
	}
	off, ok := args[1].(int)
	if !ok || off < 0 {
		return nil, fmt.Errorf("_rebuild_tensor: bad storage offset %s", short(args[1]))
	}
	size, err := intTuple(args[2])
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor: size: %w", err)
	}
	stride, err := intTuple(args[3])
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor: stride: %w", err)
	}
	if len(size) != len(stride) {
		return nil, fmt.Errorf("_rebuild_tensor: size %v and stride %v differ in rank", size, stride)
	}
	return &pyTensor{st: st, offset: int64(off), size: size, stride: stride}, nil
}

func intTuple(v any) ([]int64, error) {
	t, ok := v.(*types.Tuple)
	if !ok {
		return nil, fmt.Errorf("not a tuple: %T", v)
	}
	out := make([]int64, t.Len())
	for i := range out {
		x, ok := t.Get(i).(int)
		if !ok || x < 0 {
			return nil, fmt.Errorf("element %d is %s, not a non-negative int", i, short(t.Get(i)))
		}
		out[i] = int64(x)
	}
	return out, nil
}

// rebuildParameter is torch._utils._rebuild_parameter(data, requires_grad,
// backward_hooks[, state]): the Parameter is its data.
type rebuildParameter struct{}

func (rebuildParameter) Call(args ...any) (any, error) {
	if len(args) < 1 {
		return nil, errors.New("_rebuild_parameter: no arguments")
	}
	return args[0], nil
}

// rebuildFromType is torch._tensor._rebuild_from_type[_v2](func, type, args,
// state), used for tensor subclasses: the value is func(*args).
type rebuildFromType struct{}

func (rebuildFromType) Call(args ...any) (any, error) {
	if len(args) < 3 {
		return nil, errors.New("_rebuild_from_type: too few arguments")
	}
	f, ok := args[0].(types.Callable)
	if !ok {
		return nil, fmt.Errorf("_rebuild_from_type: %T is not callable", args[0])
	}
	a, ok := args[2].(*types.Tuple)
	if !ok {
		return nil, fmt.Errorf("_rebuild_from_type: arguments are a %T", args[2])
	}
	return f.Call(*a...)
}

func findClass(module, name string) (any, error) {
	switch module + "." + name {
	case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
		return rebuildTensor{}, nil
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
		return rebuildParameter{}, nil
	case "torch._tensor._rebuild_from_type_v2", "torch._tensor._rebuild_from_type":
		return rebuildFromType{}, nil
	}
	if dt, ok := storageDTypes[name]; ok && (module == "torch" || module == "torch.cuda") {
		return &storageClass{dt}, nil
	}
	return &opaque{module, name}, nil
}

// storageID parses a persistent id ('storage', class, key, location, numel, …).
func storageID(pid any) (*storageClass, string, int64, *types.Tuple, error) {
	t, ok := pid.(*types.Tuple)
	if !ok || t.Len() < 5 {
		return nil, "", 0, nil, fmt.Errorf("unsupported persistent id %s", short(pid))
	}
	if s, _ := t.Get(0).(string); s != "storage" {
		return nil, "", 0, nil, fmt.Errorf("unsupported persistent id %s", short(t.Get(0)))
	}
	cls, ok := t.Get(1).(*storageClass)
	if !ok {
		if o, isOpaque := t.Get(1).(*opaque); isOpaque {
			return nil, "", 0, nil, fmt.Errorf("unsupported storage type %s", o.qualName())
		}
		return nil, "", 0, nil, fmt.Errorf("unsupported storage type %s", short(t.Get(1)))
	}
	key, ok1 := t.Get(2).(string)
	n, ok2 := t.Get(4).(int)
	if !ok1 || !ok2 || n < 0 {
		return nil, "", 0, nil, fmt.Errorf("malformed storage id (%s, %s, %s, %s, %s, …)", short(t.Get(0)), short(t.Get(1)), short(t.Get(2)), short(t.Get(3)), short(t.Get(4)))
	}
	return cls, key, int64(n), t, nil
}

// ReadPyTorch reads a checkpoint written by torch.save (the zip format of
// torch ≥ 1.6 or the legacy pickle format) and returns its state_dict; see
// StateDict for how the state_dict is found and normalised, and Load for
// the checks on the file.
func ReadPyTorch(path string) (map[string]Tensor, error) {
	c, err := loadFile(path, decodePyTorch)
	if err != nil {
		return nil, err
	}
	return c.Tensors, nil
}

// DecodePyTorch is ReadPyTorch on the bytes of a file.
func DecodePyTorch(b []byte) (map[string]Tensor, error) {
	c, err := decodePyTorch(b)
	if err != nil {
		return nil, err
	}
	return c.Tensors, nil
}

func decodePyTorch(b []byte) (*Checkpoint, error) {
	budget := materializeBudget(len(b))
	obj, err := loadTorch(b, &budget)
	if err != nil {
		return nil, err
	}
	return stateDict(obj)
}

// maxPickleBytes bounds the data.pkl of a zip checkpoint (the object graph
// without tensor data: a few kB to a few MB in practice).
const maxPickleBytes = 256 << 20

// materializeBudget is how many bytes the tensors of an n-byte checkpoint
// may copy out of its storages in all: a few times what the file holds
// (views may overlap, tied weights share a storage), so a pickle that
// views one storage many times cannot multiply a small file into a huge
// allocation.
func materializeBudget(n int) int64 { return 4*int64(n) + 64<<20 }

func loadTorch(b []byte, budget *int64) (any, error) {
	if bytes.HasPrefix(b, []byte("PK\x03\x04")) {
		return loadZip(b, budget)
	}
	if len(b) > 0 && b[0] == 0x80 {
		return loadLegacy(b, budget)
	}
	return nil, errors.New("not a PyTorch checkpoint (neither a zip archive nor a pickle)")
}

func loadZip(b []byte, budget *int64) (any, error) {
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("zip: %w", err)
	}
	files := make(map[string]*zip.File, len(zr.File))
	var pkl *zip.File
	for _, f := range zr.File {
		files[f.Name] = f
		if strings.HasSuffix(f.Name, "/constants.pkl") {
			return nil, errors.New("this is a TorchScript archive (torch.jit.save), not a torch.save checkpoint")
		}
		if dir, base, ok := strings.Cut(f.Name, "/"); ok && base == "data.pkl" && dir != "" && pkl == nil {
			pkl = f
		}
	}
	if pkl == nil {
		return nil, errors.New("zip archive has no <name>/data.pkl: not a torch.save checkpoint")
	}
	prefix := strings.TrimSuffix(pkl.Name, "data.pkl") + "data/"
	if err := npy.CheckZipEntry(pkl, int64(len(b))); err != nil {
		return nil, fmt.Errorf("zip: %w", err)
	}
	if pkl.UncompressedSize64 > maxPickleBytes {
		return nil, fmt.Errorf("zip record %s: %d bytes exceeds the limit of %d for a pickle", pkl.Name, pkl.UncompressedSize64, maxPickleBytes)
	}
	pb, err := readZipFile(pkl, maxPickleBytes)
	if err != nil {
		return nil, err
	}
	storages := map[string]*storage{}
	persistentLoad := func(pid any) (any, error) {
		cls, key, n, _, err := storageID(pid)
		if err != nil {
			return nil, err
		}
		if s, ok := storages[key]; ok {
			if s.dtype != cls.dtype {
				return nil, fmt.Errorf("storage %q used as %s and %s", key, s.dtype, cls.dtype)
			}
			return s, nil
		}
		f, ok := files[prefix+key]
		if !ok {
			return nil, fmt.Errorf("storage %q: no record %s in the archive", key, prefix+key)
		}
		s := &storage{dtype: cls.dtype, numel: n, budget: budget}
		s.load = func() ([]byte, error) {
			if err := npy.CheckZipEntry(f, int64(len(b))); err != nil {
				return nil, fmt.Errorf("storage %q: %w", key, err)
			}
			want := n * int64(cls.dtype.Size())
			if n > (1<<62)/int64(cls.dtype.Size()) || uint64(want) > f.UncompressedSize64 {
				return nil, fmt.Errorf("storage %q: %d %s elements, record %s holds %d bytes", key, n, cls.dtype, f.Name, f.UncompressedSize64)
			}
			d, err := readZipFile(f, want)
			if err != nil {
				return nil, err
			}
			if int64(len(d)) < want {
				return nil, fmt.Errorf("storage %q: record %s has %d bytes, want %d", key, f.Name, len(d), want)
			}
			return d[:want:want], nil
		}
		storages[key] = s
		return s, nil
	}
	obj, _, err := unpickle(pb, findClass, persistentLoad)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pkl.Name, err)
	}
	return obj, nil
}

// readZipFile reads at most limit bytes of a zip record; the limit keeps a
// forged uncompressed size from allocating more than the data holds.
func readZipFile(f *zip.File, limit int64) ([]byte, error) {
	r, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("zip record %s: %w", f.Name, err)
	}
	defer r.Close()
	d, err := io.ReadAll(io.LimitReader(r, limit))
	if err != nil {
		return nil, fmt.Errorf("zip record %s: %w", f.Name, err)
	}
	return d, nil
}

// legacyMagic is torch.serialization.MAGIC_NUMBER.
var legacyMagic, _ = new(big.Int).SetString("1950a86a20f9469cfc6c", 16)

// loadLegacy reads the pre-1.6 format (torch.save with
// _use_new_zipfile_serialization=False): pickles of the magic number, the
// protocol version 1001 and system info, then the object, then the list of
// storage keys, then each storage as an int64 element count and raw bytes.
func loadLegacy(b []byte, budget *int64) (any, error) {
	noHooks := func(m, n string) (any, error) { return &opaque{m, n}, nil }
	var p int
	next := func(fc func(string, string) (any, error), pl func(any) (any, error)) (any, error) {
		v, n, err := unpickle(b[p:], fc, pl)
		p += n
		return v, err
	}
	magic, err := next(noHooks, nil)
	if err != nil {
		return nil, fmt.Errorf("legacy checkpoint: %w", err)
	}
	if m, ok := magic.(*big.Int); !ok || m.Cmp(legacyMagic) != 0 {
		return nil, errors.New("pickle does not start with torch's magic number: not a torch.save checkpoint")
	}
	if v, err := next(noHooks, nil); err != nil || v != 1001 {
		return nil, fmt.Errorf("legacy checkpoint: unsupported protocol version %s (%v)", short(v), err)
	}
	if _, err := next(noHooks, nil); err != nil { // sys_info
		return nil, fmt.Errorf("legacy checkpoint: %w", err)
	}
	storages := map[string]*storage{}
	persistentLoad := func(pid any) (any, error) {
		cls, key, n, t, err := storageID(pid)
		if err != nil {
			return nil, err
		}
		if t.Len() > 5 && t.Get(5) != nil {
			return nil, errors.New("legacy storage views (view_metadata) are not supported")
		}
		if s, ok := storages[key]; ok {
			if s.dtype != cls.dtype || s.numel != n {
				return nil, fmt.Errorf("storage %q declared twice with different types", key)
			}
			return s, nil
		}
		s := &storage{dtype: cls.dtype, numel: n, budget: budget}
		storages[key] = s
		return s, nil
	}
	obj, err := next(findClass, persistentLoad)
	if err != nil {
		return nil, fmt.Errorf("legacy checkpoint: %w", err)
	}
	keys, err := next(noHooks, nil)
	if err != nil {
		return nil, fmt.Errorf("legacy checkpoint: storage keys: %w", err)
	}
	list, ok := keys.(*types.List)
	if !ok {
		return nil, fmt.Errorf("legacy checkpoint: storage keys are a %T", keys)
	}
	for i := 0; i < list.Len(); i++ {
		key, _ := list.Get(i).(string)
		s, ok := storages[key]
		if !ok {
			return nil, fmt.Errorf("legacy checkpoint: storage %q is not used by the object", key)
		}
		if len(b)-p < 8 {
			return nil, fmt.Errorf("legacy checkpoint: truncated before storage %q", key)
		}
		n := int64(binary.LittleEndian.Uint64(b[p:]))
		p += 8
		if n != s.numel {
			return nil, fmt.Errorf("legacy checkpoint: storage %q holds %d elements, declared %d", key, n, s.numel)
		}
		sz := int64(s.dtype.Size())
		if n < 0 || n > int64(len(b)-p)/sz {
			return nil, fmt.Errorf("legacy checkpoint: storage %q (%d %s elements) is truncated", key, n, s.dtype)
		}
		s.data = b[p : p+int(n*sz) : p+int(n*sz)]
		p += int(n * sz)
	}
	return obj, nil
}

// materialize copies a strided view into a C-contiguous Tensor.
func (t *pyTensor) materialize() (Tensor, error) {
	es := int64(t.st.dtype.Size())
	n, err := numElements(t.size)
	if err != nil {
		return Tensor{}, err
	}
	out := Tensor{DType: t.st.dtype, Shape: t.size}
	if n == 0 {
		out.Data = []byte{}
		return out, nil
	}
	// Highest element the view touches must lie inside the storage.
	last := t.offset
	for i, s := range t.size {
		if t.stride[i] != 0 && s-1 > (t.st.numel-last)/t.stride[i] {
			return Tensor{}, fmt.Errorf("view (offset %d, size %v, stride %v) exceeds its storage of %d elements", t.offset, t.size, t.stride, t.st.numel)
		}
		last += (s - 1) * t.stride[i]
	}
	if last >= t.st.numel {
		return Tensor{}, fmt.Errorf("view (offset %d, size %v, stride %v) exceeds its storage of %d elements", t.offset, t.size, t.stride, t.st.numel)
	}
	if n > t.st.numel && n > 1<<24 {
		return Tensor{}, fmt.Errorf("view of size %v expands a %d-element storage too far", t.size, t.st.numel)
	}
	if b := t.st.budget; b != nil {
		if n*es > *b {
			return Tensor{}, fmt.Errorf("view of size %v: the file's tensors copy more bytes out of their storages than 4 times the file's size plus 64 MiB (views that overlap many times)", t.size)
		}
		*b -= n * es
	}
	src, err := t.st.bytes()
	if err != nil {
		return Tensor{}, err
	}
	if int64(len(src)) != t.st.numel*es {
		return Tensor{}, fmt.Errorf("storage holds %d bytes, want %d", len(src), t.st.numel*es)
	}
	contiguous, want := true, int64(1)
	for i := len(t.size) - 1; i >= 0; i-- {
		if t.size[i] != 1 && t.stride[i] != want {
			contiguous = false
		}
		want *= t.size[i]
	}
	if contiguous {
		out.Data = bytes.Clone(src[t.offset*es : (t.offset+n)*es])
		return out, nil
	}
	dst := make([]byte, n*es)
	idx := make([]int64, len(t.size))
	pos := t.offset
	for k := int64(0); k < n; k++ {
		copy(dst[k*es:(k+1)*es], src[pos*es:(pos+1)*es])
		for d := len(idx) - 1; d >= 0; d-- { // odometer over the C-order index
			idx[d]++
			pos += t.stride[d]
			if idx[d] < t.size[d] {
				break
			}
			pos -= idx[d] * t.stride[d]
			idx[d] = 0
		}
	}
	out.Data = dst
	return out, nil
}
