package diffmodel

import (
	"sync"

	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/autodiff"
)

// Workers returns ort.Options.Threads classifiers that compute exactly what c
// computes, each on a single-threaded ONNX Runtime session, for callers that
// split a batch into parts and run them concurrently (attacks.Evaluate does,
// see attacks.Parallel). Splitting costs one join per part where ONNX
// Runtime's intra-op threads synchronise after every node, which dominates
// the small batches attacks run (AutoAttack's later attacks see only the
// points still robust, Square makes 5000 calls per point) and stalls
// whenever the machine is busy. Outputs do not depend on the thread count
// or on how a batch is split (ONNX Runtime's CPU kernels compute each sample
// on its own; diffmodel's tests check this bit for bit).
//
// Workers returns nil — run on c itself — for fewer than 2 threads, on CUDA,
// with ort.Options.NoWorkers, and for classifiers with overridable parameters
// (NewClassifierWithParams). The workers are built on the first call (their
// gradient graphs, shared with c, on first use) and closed with c.
func (c *Classifier) Workers() []attacks.Model {
	if c == nil || c.opts.Threads < 2 || c.opts.NoWorkers || len(c.overridable) > 0 ||
		(c.opts.Device.Kind != "" && c.opts.Device.Kind != "cpu") {
		return nil
	}
	c.workersOnce.Do(func() {
		opts := c.opts
		opts.Threads = 1
		opts.NoWorkers = true
		ws := make([]*Classifier, 0, c.opts.Threads)
		for range c.opts.Threads {
			w, err := newClassifier(c.model, opts, nil, c.graphs)
			if err != nil {
				for _, w := range ws {
					w.Close()
				}
				return // run on c itself
			}
			ws = append(ws, w)
		}
		c.mu.Lock()
		c.workers = ws
		c.mu.Unlock()
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.workers) == 0 {
		return nil
	}
	out := make([]attacks.Model, len(c.workers))
	for i, w := range c.workers {
		out[i] = w
	}
	return out
}

// graphCache holds the gradient graphs a classifier and its workers share,
// so that each is differentiated once.
type graphCache struct {
	mu sync.Mutex
	m  map[gradKey]*autodiff.Result
}

func (g *graphCache) get(key gradKey, build func() (*autodiff.Result, error)) (*autodiff.Result, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if r, ok := g.m[key]; ok {
		return r, nil
	}
	r, err := build()
	if err != nil {
		return nil, err
	}
	if g.m == nil {
		g.m = map[gradKey]*autodiff.Result{}
	}
	g.m[key] = r
	return r, nil
}

var _ attacks.Parallel = (*Classifier)(nil)
