package checkpoint

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"

	"github.com/semirobust/srtool/internal/atomicfile"
	"github.com/semirobust/srtool/onnxio"
)

// maxSafetensorsHeader bounds the JSON header, as the reference
// implementation does (huggingface/safetensors, 100 MB).
const maxSafetensorsHeader = 100 << 20

const metadataKey = "__metadata__"

type stEntry struct {
	DType       DType    `json:"dtype"`
	Shape       []int64  `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// ReadSafetensors reads a .safetensors file. Metadata (the optional
// "__metadata__" string map) is returned separately and may be nil.
func ReadSafetensors(path string) (map[string]Tensor, map[string]string, error) {
	b, err := onnxio.ReadRegular(path, MaxFileBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("read safetensors: %w", err)
	}
	ts, meta, err := DecodeSafetensors(b)
	if err != nil {
		return nil, nil, fmt.Errorf("read safetensors %s: %w", path, err)
	}
	return ts, meta, nil
}

// SafetensorsEntry is one tensor of a safetensors header: its name,
// element type, shape and byte range [Begin, End) in the data buffer that
// follows the header.
type SafetensorsEntry struct {
	Name       string
	DType      DType
	Shape      []int64
	Begin, End int64
}

// DecodeSafetensors parses a safetensors file held in b: an 8-byte
// little-endian header length N, N bytes of JSON, then the data buffer,
// which the tensors' data_offsets must cover exactly, without overlap.
// The returned tensors' Data alias b.
func DecodeSafetensors(b []byte) (map[string]Tensor, map[string]string, error) {
	entries, meta, err := ReadSafetensorsHeader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, nil, err
	}
	buf := b[int64(len(b))-dataSize(entries):]
	out := make(map[string]Tensor, len(entries))
	for _, e := range entries {
		out[e.Name] = Tensor{DType: e.DType, Shape: e.Shape, Data: buf[e.Begin:e.End:e.End]}
	}
	return out, meta, nil
}

// dataSize is the size of the data buffer entries (sorted, contiguous)
// cover.
func dataSize(entries []SafetensorsEntry) int64 {
	if len(entries) == 0 {
		return 0
	}
	return entries[len(entries)-1].End
}

// ReadSafetensorsHeader reads the header of a safetensors stream of size
// bytes from r — the 8-byte length, then the JSON — and leaves r at the
// start of the data buffer. The length is checked against size and the
// reference implementation's limit before the header is allocated; every
// tensor's dtype, shape and data_offsets are checked, overflow-safe,
// against the size of the data buffer, which the tensors must cover
// exactly, without overlap. The entries come in data order; metadata (the
// optional "__metadata__" string map) may be nil. Readers that stream the
// data (finetune's checkpoints) and DecodeSafetensors share it.
func ReadSafetensorsHeader(r io.Reader, size int64) ([]SafetensorsEntry, map[string]string, error) {
	var n8 [8]byte
	if size < 8 {
		return nil, nil, errors.New("file is shorter than the 8-byte header length")
	}
	if _, err := io.ReadFull(r, n8[:]); err != nil {
		return nil, nil, fmt.Errorf("header length: %w", err)
	}
	n := binary.LittleEndian.Uint64(n8[:])
	if n > maxSafetensorsHeader {
		return nil, nil, fmt.Errorf("header length %d exceeds %d bytes", n, maxSafetensorsHeader)
	}
	if n > uint64(size-8) {
		return nil, nil, fmt.Errorf("header length %d exceeds the file's %d bytes", n, size-8)
	}
	header := make([]byte, n)
	if _, err := io.ReadFull(r, header); err != nil {
		return nil, nil, fmt.Errorf("header: %w", err)
	}
	return parseSafetensorsHeader(header, size-8-int64(n))
}

// parseSafetensorsHeader checks the JSON header against a data buffer of
// dataSize bytes; see ReadSafetensorsHeader.
func parseSafetensorsHeader(header []byte, dataSize int64) ([]SafetensorsEntry, map[string]string, error) {
	if len(header) == 0 || header[0] != '{' {
		return nil, nil, errors.New("header is not a JSON object")
	}
	raw, err := jsonObject(header)
	if err != nil {
		return nil, nil, fmt.Errorf("header: %w", err)
	}
	var meta map[string]string
	entries := make([]SafetensorsEntry, 0, len(raw))
	for _, kv := range raw {
		if kv.key == metadataKey {
			if err := json.Unmarshal(kv.val, &meta); err != nil {
				return nil, nil, fmt.Errorf("header: __metadata__ must map strings to strings: %w", err)
			}
			continue
		}
		var e struct {
			DType       DType   `json:"dtype"`
			Shape       []int64 `json:"shape"`
			DataOffsets []int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(kv.val, &e); err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", kv.key, err)
		}
		if len(e.DataOffsets) != 2 {
			return nil, nil, fmt.Errorf("tensor %q: data_offsets must hold [begin, end]", kv.key)
		}
		if e.DType.Size() == 0 {
			return nil, nil, fmt.Errorf("tensor %q: unsupported dtype %q", kv.key, e.DType)
		}
		if e.Shape == nil {
			return nil, nil, fmt.Errorf("tensor %q: no shape", kv.key)
		}
		ne, err := numElements(e.Shape)
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", kv.key, err)
		}
		lo, hi := e.DataOffsets[0], e.DataOffsets[1]
		if lo < 0 || hi < lo || hi > dataSize {
			return nil, nil, fmt.Errorf("tensor %q: data_offsets [%d, %d] outside the %d-byte buffer", kv.key, lo, hi, dataSize)
		}
		if sz := int64(e.DType.Size()); ne > (hi-lo)/sz || ne*sz != hi-lo {
			return nil, nil, fmt.Errorf("tensor %q: %s shape %v needs %d elements, data_offsets give %d bytes", kv.key, e.DType, e.Shape, ne, hi-lo)
		}
		entries = append(entries, SafetensorsEntry{Name: kv.key, DType: e.DType, Shape: e.Shape, Begin: lo, End: hi})
	}
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].Begin != entries[j].Begin {
			return entries[i].Begin < entries[j].Begin
		}
		return entries[i].End < entries[j].End
	})
	pos := int64(0)
	for _, e := range entries {
		if e.Begin != pos {
			return nil, nil, fmt.Errorf("tensor %q: data starts at byte %d, expected %d (overlap or hole)", e.Name, e.Begin, pos)
		}
		pos = e.End
	}
	if pos != dataSize {
		return nil, nil, fmt.Errorf("data buffer has %d bytes, tensors cover %d", dataSize, pos)
	}
	return entries, meta, nil
}

type jsonKV struct {
	key string
	val json.RawMessage
}

// jsonObject splits a JSON object into its members, rejecting duplicate
// keys (which encoding/json would silently merge) and trailing garbage.
func jsonObject(b []byte) ([]jsonKV, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	var out []jsonKV
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errors.New("object key is not a string")
		}
		if seen[key] {
			return nil, fmt.Errorf("duplicate key %q", key)
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("key %q: %w", key, err)
		}
		out = append(out, jsonKV{key, v})
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, errors.New("unterminated JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return out, nil
}

// EncodeSafetensors serialises tensors (sorted by name, data packed in that
// order) with optional string metadata. The header is padded with spaces to
// a multiple of 8 bytes, as the reference writer does.
func EncodeSafetensors(tensors map[string]Tensor, metadata map[string]string) ([]byte, error) {
	names := make([]string, 0, len(tensors))
	for k := range tensors {
		names = append(names, k)
	}
	slices.Sort(names)
	entries := make([]SafetensorsEntry, len(names))
	for i, k := range names {
		t := tensors[k]
		if err := t.Check(); err != nil {
			return nil, fmt.Errorf("tensor %q: %w", k, err)
		}
		entries[i] = SafetensorsEntry{Name: k, DType: t.DType, Shape: t.Shape}
	}
	h, err := EncodeSafetensorsHeader(entries, metadata)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, int64(len(h))+dataSize(entries))
	out = append(out, h...)
	for _, k := range names {
		out = append(out, tensors[k].Data...)
	}
	return out, nil
}

// EncodeSafetensorsHeader returns the start of a safetensors file — the
// 8-byte header length and the JSON header, padded with spaces to a
// multiple of 8 bytes as the reference writer does — for tensors whose data
// follow packed in the order of entries. It sets each entry's Begin and End
// from its DType and Shape. Writers that stream the data (finetune's
// checkpoints) and EncodeSafetensors share it.
func EncodeSafetensorsHeader(entries []SafetensorsEntry, metadata map[string]string) ([]byte, error) {
	header := make(map[string]any, len(entries)+1)
	if len(metadata) > 0 {
		header[metadataKey] = metadata
	}
	var off int64
	for i := range entries {
		e := &entries[i]
		if e.Name == metadataKey {
			return nil, fmt.Errorf("tensor name %q is reserved", e.Name)
		}
		if _, dup := header[e.Name]; dup {
			return nil, fmt.Errorf("tensor %q is listed twice", e.Name)
		}
		if e.DType.Size() == 0 {
			return nil, fmt.Errorf("tensor %q: unsupported dtype %q", e.Name, e.DType)
		}
		ne, err := numElements(e.Shape)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", e.Name, err)
		}
		if sz := int64(e.DType.Size()); ne > (math.MaxInt64-off)/sz {
			return nil, fmt.Errorf("tensor %q: %s shape %v does not fit a file", e.Name, e.DType, e.Shape)
		}
		shape := e.Shape
		if shape == nil {
			shape = []int64{}
		}
		e.Begin, e.End = off, off+ne*int64(e.DType.Size())
		header[e.Name] = stEntry{DType: e.DType, Shape: shape, DataOffsets: [2]int64{e.Begin, e.End}}
		off = e.End
	}
	h, err := json.Marshal(header) // map keys are sorted: deterministic
	if err != nil {
		return nil, err
	}
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	out := make([]byte, 8, 8+len(h))
	binary.LittleEndian.PutUint64(out, uint64(len(h)))
	return append(out, h...), nil
}

// WriteSafetensors writes tensors to path atomically (a temporary file in
// the same folder, then a rename).
func WriteSafetensors(path string, tensors map[string]Tensor, metadata map[string]string) error {
	b, err := EncodeSafetensors(tensors, metadata)
	if err != nil {
		return fmt.Errorf("write safetensors %s: %w", path, err)
	}
	return atomicfile.WriteFile(path, b)
}
