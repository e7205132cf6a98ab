package diffmodel

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/semirobust/srtool/diffmodel/internal/nchwc"
	"github.com/semirobust/srtool/internal/parallel"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
)

// session is an ort.Session on a graph that newSession may have lowered to
// ONNX Runtime's NCHWc kernels. Callers feed the graph's own inputs: the
// blocked weights the lowered graph takes instead (derived inputs) are
// computed from them on every Run, or ahead by pin. Run may be called from
// several goroutines at once.
type session struct {
	s       *ort.Session
	lowered nchwc.Stats // what newSession moved to NCHWc kernels
	// graphInputs are the inputs the (lowered) graph takes.
	graphInputs []string
	// derived are inputs Run computes from sources (blocked weights of a
	// lowered graph); sources are the inputs they come from, which callers
	// feed although the graph may no longer take them.
	derived []nchwc.Derived
	sources map[string]ort.ValueInfo

	mu sync.RWMutex
	// pinned holds derived inputs computed ahead by pin, by derived name.
	pinned map[string]pinnedInput
}

// newSession opens a session on m. On the CPU, unless
// opts.StandardOpsOnly is set, convolutions whose weights are fed at run
// time are first moved to ONNX Runtime's NCHWc kernels (see
// ort.Options.StandardOpsOnly); m itself is not changed.
func newSession(m *onnxio.Model, opts ort.Options) (*session, error) {
	var st nchwc.Stats
	var derived []nchwc.Derived
	orig := m
	if opts.Device.Kind == "" || opts.Device.Kind == "cpu" {
		if !opts.StandardOpsOnly {
			// Load the caller's library before the probe loads the default.
			if err := ort.Init(opts.LibraryPath); err != nil {
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
	s, err := ort.NewModelSession(m, opts)
	if err != nil && m != orig {
		// ONNX Runtime refused the lowered graph: run the standard ops.
		st, derived = nchwc.Stats{}, nil
		s, err = ort.NewModelSession(orig, opts)
	}
	if err != nil {
		return nil, err
	}
	ls := &session{s: s, lowered: st, graphInputs: s.InputNames()}
	if len(derived) > 0 {
		ls.derived = derived
		ls.sources = map[string]ort.ValueInfo{}
		for _, d := range derived {
			ls.sources[d.From] = ort.ValueInfo{Name: d.From, ElemType: onnxio.Float, Shape: d.Shape, HasShape: true}
		}
	}
	return ls, nil
}

// Inputs describes the inputs Run must be given: the graph's inputs less
// the derived ones, plus the sources they are made from.
func (s *session) Inputs() []ort.ValueInfo {
	in := s.s.Inputs()
	if len(s.derived) == 0 {
		return in
	}
	var vs []ort.ValueInfo
	for _, v := range in {
		if !slices.ContainsFunc(s.derived, func(d nchwc.Derived) bool { return d.Name == v.Name }) {
			vs = append(vs, v)
		}
	}
	for _, d := range s.derived {
		if !slices.ContainsFunc(vs, func(v ort.ValueInfo) bool { return v.Name == d.From }) {
			src := s.sources[d.From]
			src.Shape = slices.Clone(src.Shape)
			vs = append(vs, src)
		}
	}
	return vs
}

// InputNames returns the names of the inputs Run must be given.
func (s *session) InputNames() []string {
	vs := s.Inputs()
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Name
	}
	return out
}

// Preallocate is ort.Session.Preallocate.
func (s *session) Preallocate(names ...string) { s.s.Preallocate(names...) }

// Close closes the ort.Session; safe twice.
func (s *session) Close() error { return s.s.Close() }

// Run is ort.Session.Run on the inputs Inputs describes: a lowered
// session's derived inputs are computed from their sources (or taken from
// pin), and inputs itself is not changed.
func (s *session) Run(ctx context.Context, inputs map[string]ort.Tensor, outputs []string) (map[string]ort.Tensor, error) {
	if len(s.derived) == 0 {
		return s.s.Run(ctx, inputs, outputs)
	}
	for name := range inputs {
		if _, ok := s.sources[name]; ok {
			continue
		}
		if !slices.Contains(s.graphInputs, name) {
			return nil, fmt.Errorf("diffmodel: run: unknown input %q (the model takes %q)", name, s.InputNames())
		}
	}
	inputs, err := s.deriveInputs(inputs)
	if err != nil {
		return nil, fmt.Errorf("diffmodel: run: %w", err)
	}
	return s.s.Run(ctx, inputs, outputs)
}

// deriveInputs returns inputs with the derived inputs of a lowered session
// added (each computed from its source, concurrently) and the sources the
// graph no longer takes removed. inputs itself is not changed.
func (s *session) deriveInputs(inputs map[string]ort.Tensor) (map[string]ort.Tensor, error) {
	out := make(map[string]ort.Tensor, len(inputs)+len(s.derived))
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
	s.mu.RLock()
	vals := s.reorderAll(inputs, s.pinned)
	s.mu.RUnlock()
	for i, v := range vals {
		d := s.derived[i]
		out[d.Name] = ort.Tensor{Shape: d.OutShape(), Float32: v}
	}
	for name := range s.sources {
		if !slices.Contains(s.graphInputs, name) {
			delete(out, name)
		}
	}
	return out, nil
}

// reorderAll computes the derived inputs whose sources are in inputs (with
// the right shapes), concurrently; a value in pinned whose source is the
// very slice given is used as it is. It returns them by index in s.derived.
func (s *session) reorderAll(inputs map[string]ort.Tensor, pinned map[string]pinnedInput) map[int][]float32 {
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
		if p, ok := pinned[d.Name]; ok && sameSlice(p.src, src.Float32) {
			out[i] = p.val
			continue
		}
		jobs = append(jobs, job{i, d, src.Float32})
	}
	bufs := make([][]float32, len(jobs))
	parallel.For(len(jobs), 0, func(i int) {
		bufs[i] = make([]float32, len(jobs[i].src))
		jobs[i].d.Reorder(bufs[i], jobs[i].src)
	})
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
func (s *session) pin(params map[string]ort.Tensor) {
	if s == nil || len(s.derived) == 0 {
		return
	}
	vals := s.reorderAll(params, nil) // never the old pins: values may have changed in place
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
func checkTensor(t ort.Tensor, want ort.ValueInfo) error {
	if err := t.Check(); err != nil {
		return err
	}
	if t.Float32 == nil {
		return fmt.Errorf("got int64 data, the model wants float32")
	}
	if !slices.Equal(t.Shape, want.Shape) {
		return fmt.Errorf("shape %v, the model wants %v", t.Shape, want.Shape)
	}
	return nil
}
