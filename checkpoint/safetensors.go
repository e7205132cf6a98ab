package checkpoint

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// DecodeSafetensors parses a safetensors file held in b: an 8-byte
// little-endian header length N, N bytes of JSON, then the data buffer,
// which the tensors' data_offsets must cover exactly, without overlap.
// The returned tensors' Data alias b.
func DecodeSafetensors(b []byte) (map[string]Tensor, map[string]string, error) {
	if len(b) < 8 {
		return nil, nil, errors.New("file is shorter than the 8-byte header length")
	}
	n := binary.LittleEndian.Uint64(b)
	if n > maxSafetensorsHeader {
		return nil, nil, fmt.Errorf("header length %d exceeds %d bytes", n, maxSafetensorsHeader)
	}
	if n > uint64(len(b)-8) {
		return nil, nil, fmt.Errorf("header length %d exceeds the file's %d bytes", n, len(b)-8)
	}
	header := b[8 : 8+n]
	buf := b[8+n:]
	if len(header) == 0 || header[0] != '{' {
		return nil, nil, errors.New("header is not a JSON object")
	}
	raw, err := jsonObject(header)
	if err != nil {
		return nil, nil, fmt.Errorf("header: %w", err)
	}
	var meta map[string]string
	type span struct {
		name       string
		begin, end int64
	}
	spans := make([]span, 0, len(raw))
	out := make(map[string]Tensor, len(raw))
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
		if lo < 0 || hi < lo || hi > int64(len(buf)) {
			return nil, nil, fmt.Errorf("tensor %q: data_offsets [%d, %d] outside the %d-byte buffer", kv.key, lo, hi, len(buf))
		}
		if sz := int64(e.DType.Size()); ne > (hi-lo)/sz || ne*sz != hi-lo {
			return nil, nil, fmt.Errorf("tensor %q: %s shape %v needs %d elements, data_offsets give %d bytes", kv.key, e.DType, e.Shape, ne, hi-lo)
		}
		spans = append(spans, span{kv.key, lo, hi})
		out[kv.key] = Tensor{DType: e.DType, Shape: e.Shape, Data: buf[lo:hi:hi]}
	}
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].begin != spans[j].begin {
			return spans[i].begin < spans[j].begin
		}
		return spans[i].end < spans[j].end
	})
	pos := int64(0)
	for _, s := range spans {
		if s.begin != pos {
			return nil, nil, fmt.Errorf("tensor %q: data starts at byte %d, expected %d (overlap or hole)", s.name, s.begin, pos)
		}
		pos = s.end
	}
	if pos != int64(len(buf)) {
		return nil, nil, fmt.Errorf("data buffer has %d bytes, tensors cover %d", len(buf), pos)
	}
	return out, meta, nil
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
		if k == metadataKey {
			return nil, fmt.Errorf("tensor name %q is reserved", k)
		}
		names = append(names, k)
	}
	slices.Sort(names)
	header := make(map[string]any, len(names)+1)
	if len(metadata) > 0 {
		header[metadataKey] = metadata
	}
	var off int64
	for _, k := range names {
		t := tensors[k]
		if err := t.Check(); err != nil {
			return nil, fmt.Errorf("tensor %q: %w", k, err)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int64{}
		}
		header[k] = stEntry{DType: t.DType, Shape: shape, DataOffsets: [2]int64{off, off + int64(len(t.Data))}}
		off += int64(len(t.Data))
	}
	h, err := json.Marshal(header) // map keys are sorted: deterministic
	if err != nil {
		return nil, err
	}
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	out := make([]byte, 8, 8+int64(len(h))+off)
	binary.LittleEndian.PutUint64(out, uint64(len(h)))
	out = append(out, h...)
	for _, k := range names {
		out = append(out, tensors[k].Data...)
	}
	return out, nil
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
