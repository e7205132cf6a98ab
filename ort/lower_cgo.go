//go:build cgo

package ort

import (
	"fmt"
	"runtime"
	"slices"
	"sync"

	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort/internal/nchwc"
)

// newModelSession opens a session on m. On the CPU, unless
// opts.StandardOpsOnly is set, convolutions whose weights are fed at run
// time are first moved to ONNX Runtime's NCHWc kernels (see
// Options.StandardOpsOnly); m itself is not changed.
func newModelSession(m *onnxio.Model, opts Options) (*Session, error) {
	var st nchwc.Stats
	var derived []nchwc.Derived
	orig := m
	if opts.Device.Kind == "" || opts.Device.Kind == "cpu" {
		if !opts.StandardOpsOnly {
			// Load the caller's library before the probe loads the default.
			if err := Init(opts.LibraryPath); err != nil {
				return nil, err
			}
			bs, err := NCHWcBlockSize()
			if err != nil {
				return nil, err
			}
			if bs > 0 {
				// Lowering is an optimisation: a graph it cannot analyse
				// (say, an op shape inference does not know) runs as is.
				if lm, d, stats, err := nchwc.Lower(m, bs); err == nil {
					m, derived, st = lm, d, stats
				}
			}
		}
	}
	b, err := m.Encode()
	if err != nil {
		return nil, fmt.Errorf("ort: encode model: %w", err)
	}
	s, err := NewSession(b, opts)
	if err != nil && m != orig {
		// ONNX Runtime refused the lowered graph: run the standard ops.
		st, derived = nchwc.Stats{}, nil
		if b, err = orig.Encode(); err != nil {
			return nil, fmt.Errorf("ort: encode model: %w", err)
		}
		s, err = NewSession(b, opts)
	}
	if err != nil {
		return nil, err
	}
	s.lowered = st
	if len(derived) > 0 {
		s.derived = derived
		s.sources = map[string]ValueInfo{}
		for _, d := range derived {
			s.sources[d.From] = ValueInfo{Name: d.From, ElemType: elemFloat, Shape: d.Shape, HasShape: true}
		}
	}
	return s, nil
}

// deriveInputs returns inputs with the derived inputs of a lowered session
// added (each computed from its source, concurrently) and the sources the
// graph no longer takes removed. inputs itself is not changed.
func (s *Session) deriveInputs(inputs map[string]Tensor) (map[string]Tensor, error) {
	out := make(map[string]Tensor, len(inputs)+len(s.derived))
	for k, v := range inputs {
		out[k] = v
	}
	for _, d := range s.derived {
		src, ok := inputs[d.From]
		if !ok {
			return nil, fmt.Errorf("missing input %q", d.From)
		}
		if err := checkTensor(src, s.sources[d.From]); err != nil {
			return nil, fmt.Errorf("input %q: %w", d.From, err)
		}
	}
	bufs := make([][]float32, len(s.derived))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, d := range s.derived {
		bufs[i] = make([]float32, len(inputs[d.From].Float32))
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			d.Reorder(bufs[i], inputs[d.From].Float32)
		})
	}
	wg.Wait()
	for i, d := range s.derived {
		out[d.Name] = Tensor{Shape: d.OutShape(), Float32: bufs[i]}
	}
	for name := range s.sources {
		if !slices.ContainsFunc(s.inputs, func(v ValueInfo) bool { return v.Name == name }) {
			delete(out, name)
		}
	}
	return out, nil
}

// checkTensor reports whether t is float32 data of exactly want's shape.
func checkTensor(t Tensor, want ValueInfo) error {
	if err := t.check(); err != nil {
		return err
	}
	if t.Float32 == nil {
		return fmt.Errorf("got %s data, the model wants %s", elemName(elemInt64), elemName(elemFloat))
	}
	if !slices.Equal(t.Shape, want.Shape) {
		return fmt.Errorf("shape %v, the model wants %v", t.Shape, want.Shape)
	}
	return nil
}
