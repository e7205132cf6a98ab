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
	for i, v := range s.reorderAll(inputs, true) {
		d := s.derived[i]
		out[d.Name] = Tensor{Shape: d.OutShape(), Float32: v}
	}
	for name := range s.sources {
		if !slices.ContainsFunc(s.inputs, func(v ValueInfo) bool { return v.Name == name }) {
			delete(out, name)
		}
	}
	return out, nil
}

// reorderAll computes the derived inputs whose sources are in inputs (with
// the right shapes), concurrently; with reusePinned, a pinned value whose
// source is the very slice given is used as it is (the caller holds s.mu).
// It returns them by index in s.derived.
func (s *Session) reorderAll(inputs map[string]Tensor, reusePinned bool) map[int][]float32 {
	type job struct {
		i   int
		d   nchwc.Derived
		src []float32
	}
	out := map[int][]float32{}
	var jobs []job
	for i, d := range s.derived {
		src, ok := inputs[d.From]
		if !ok || checkTensor(src, s.sources[d.From]) != nil {
			continue
		}
		if reusePinned {
			if p, ok := s.pinned[d.Name]; ok && sameSlice(p.src, src.Float32) {
				out[i] = p.val
				continue
			}
		}
		jobs = append(jobs, job{i, d, src.Float32})
	}
	bufs := make([][]float32, len(jobs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, j := range jobs {
		bufs[i] = make([]float32, len(j.src))
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			j.d.Reorder(bufs[i], j.src)
		})
	}
	wg.Wait()
	for k, j := range jobs {
		out[j.i] = bufs[k]
	}
	return out
}

// pinnedInput is a derived input computed ahead from the slice src.
type pinnedInput struct {
	src, val []float32
}

// pin computes the derived inputs of params (sources by name) once, for
// every later Run that feeds these very slices: Classifier pins its
// parameters, which callers promise not to modify between SetParams calls
// (a Trainer's parameters, updated in place, are never pinned). It
// replaces earlier pins; a session without derived inputs ignores it.
func (s *Session) pin(params map[string]Tensor) {
	if s == nil || len(s.derived) == 0 {
		return
	}
	vals := s.reorderAll(params, false) // never the old pins: values may have changed in place
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pinned = map[string]pinnedInput{}
	for i, v := range vals {
		d := s.derived[i]
		s.pinned[d.Name] = pinnedInput{src: params[d.From].Float32, val: v}
	}
}

// sameSlice reports whether a and b are the same memory, not merely equal.
func sameSlice(a, b []float32) bool {
	return len(a) == len(b) && len(a) > 0 && &a[0] == &b[0]
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
