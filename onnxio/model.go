package onnxio

import (
	"errors"
	"fmt"
	"path/filepath"

	"google.golang.org/protobuf/proto"

	"github.com/semirobust/srtool/internal/atomicfile"
	"github.com/semirobust/srtool/onnxio/onnxpb"
)

// Supported range of the default ("" / "ai.onnx") opset.
const (
	MinOpset = 7
	MaxOpset = 23
)

// Model is an ONNX model and the folder its external data is resolved against.
// Proto is owned by the Model; callers may edit it in place.
type Model struct {
	Proto *onnxpb.ModelProto
	// Dir is the folder external-data locations are relative to ("" for
	// models decoded from memory, which may not use external data).
	Dir string
}

// Graph returns the main graph.
func (m *Model) Graph() *onnxpb.GraphProto { return m.Proto.GetGraph() }

// Opset returns the version of the default ONNX domain the model imports (0 if none).
func (m *Model) Opset() int64 {
	for _, o := range m.Proto.GetOpsetImport() {
		if o.GetDomain() == "" || o.GetDomain() == "ai.onnx" {
			return o.GetVersion()
		}
	}
	return 0
}

// Clone returns a deep copy.
func (m *Model) Clone() *Model {
	return &Model{Proto: proto.Clone(m.Proto).(*onnxpb.ModelProto), Dir: m.Dir}
}

// MaxModelBytes bounds the size of a model file Read accepts: protobuf
// messages, and so ONNX files, cannot exceed 2 GiB (larger models keep
// their weights in external-data files).
const MaxModelBytes = 2 << 30

// Read reads, decodes and validates the model at path, which must be a
// regular file of at most MaxModelBytes. External-data tensors are loaded
// into memory (raw_data), so the returned model is self-contained.
func Read(path string) (*Model, error) {
	b, err := ReadRegular(path, MaxModelBytes)
	if err != nil {
		return nil, fmt.Errorf("read model: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("read model %s: %w", path, err)
	}
	m, err := decode(b, filepath.Dir(abs))
	if err != nil {
		return nil, fmt.Errorf("read model %s: %w", path, err)
	}
	return m, nil
}

// Decode decodes and validates a serialised ModelProto held in memory. Such a
// model has no folder, so external-data tensors are an error.
func Decode(b []byte) (*Model, error) { return decode(b, "") }

func decode(b []byte, dir string) (m *Model, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("malformed model: %v", r)
		}
	}()
	if len(b) == 0 {
		return nil, errors.New("not an ONNX model: empty input")
	}
	mp := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(b, mp); err != nil {
		return nil, fmt.Errorf("not an ONNX model (protobuf decoding failed): %w", err)
	}
	if mp.GetGraph() == nil || (len(mp.GetGraph().GetNode()) == 0 && len(mp.GetOpsetImport()) == 0) {
		return nil, errors.New("not an ONNX model: no graph")
	}
	m = &Model{Proto: mp, Dir: dir}
	if err := m.loadExternal(); err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// Validate checks the opset and that every node input is defined, and that
// the node list is in topological order.
func (m *Model) Validate() error {
	if m.Proto.GetGraph() == nil {
		return errors.New("model has no graph")
	}
	v := m.Opset()
	if v == 0 {
		return errors.New("model imports no default-domain (ai.onnx) opset")
	}
	if v < MinOpset || v > MaxOpset {
		return fmt.Errorf("unsupported ai.onnx opset %d (srtool supports %d–%d)", v, MinOpset, MaxOpset)
	}
	return CheckGraph(m.Graph())
}

// CheckGraph checks the structural rules ONNX's checker enforces on a graph:
// unique, non-empty output names (SSA), every node input defined before use
// (graph input, initializer or earlier node output), graph outputs defined,
// initializers with consistent sizes.
func CheckGraph(g *onnxpb.GraphProto) error {
	defined := map[string]bool{"": true}
	for _, in := range g.GetInput() {
		if in.GetName() == "" {
			return errors.New("graph input with empty name")
		}
		defined[in.GetName()] = true
	}
	for _, t := range g.GetInitializer() {
		if t.GetName() == "" {
			return errors.New("initializer with empty name")
		}
		if err := checkTensorSize(t); err != nil {
			return err
		}
		defined[t.GetName()] = true
	}
	for i, n := range g.GetNode() {
		for _, in := range n.GetInput() {
			if !defined[in] {
				return fmt.Errorf("node %d (%s %q) uses %q, which is neither a graph input, an initializer nor an earlier node's output (missing initializer?)", i, n.GetOpType(), n.GetName(), in)
			}
		}
		for _, out := range n.GetOutput() {
			if out == "" {
				continue
			}
			if defined[out] {
				return fmt.Errorf("node %d (%s %q) redefines tensor %q", i, n.GetOpType(), n.GetName(), out)
			}
			defined[out] = true
		}
	}
	for _, out := range g.GetOutput() {
		if !defined[out.GetName()] {
			return fmt.Errorf("graph output %q is never computed", out.GetName())
		}
	}
	return nil
}

// Encode serialises the model. External data has been inlined by Read, so the
// result is one self-contained buffer.
func (m *Model) Encode() ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m.Proto)
	if err != nil {
		return nil, fmt.Errorf("encode model: %w", err)
	}
	return b, nil
}

// Write encodes the model and writes it to path atomically: a temporary file
// in the same folder, then a rename, so a failure never leaves a partial file.
func Write(path string, m *Model) error {
	b, err := m.Encode()
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b)
}

// Initializer returns the initializer with the given name, or nil.
func (m *Model) Initializer(name string) *onnxpb.TensorProto {
	for _, t := range m.Graph().GetInitializer() {
		if t.GetName() == name {
			return t
		}
	}
	return nil
}
