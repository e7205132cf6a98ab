package semirobust

import (
	"context"
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/diffmodel"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/onnxio/onnxpb"
	"github.com/semirobust/srtool/ort"
)

// RhoMeter measures ρ, as RhosOnAttacked does, for a sequence of parameter
// values of one model (the trial rhos after every epoch): its graphs and
// ONNX Runtime sessions are built once, and each Measure only feeds the
// current values of the named parameters. A Measure gives, bit for bit,
// what RhosOnAttacked gives on a copy of the model that holds these values.
// Not safe for concurrent use.
type RhoMeter struct {
	an     *analyzer.Analysis
	data   *dataset.Dataset
	attack attacks.Attack
	pairs  [][2]int
	o      RhoOptions

	// adv attacks the data (nil for clean ρ data); taps computes the
	// tapped layers' outputs, flattened and concatenated into one output.
	adv    *paramWorkers
	taps   *diffmodel.Classifier
	layers []int
	// cols and dims are each tapped layer's values per sample and the
	// columns ρ uses (its channels with RhoOptions.ChannelMean).
	cols, dims []int
}

// rhoTapsOutput names the tapped model's one extra output.
const rhoTapsOutput = "srtool_rho_taps"

// NewRhoMeter prepares ρ of pairs on d, attacked with atk against the model
// itself (clean when atk is nil), for models that are m with other values
// of the initializers named in params. m is not modified; the meter keeps
// a reference. Close releases its sessions.
func NewRhoMeter(m *onnxio.Model, params []string, d *dataset.Dataset, atk attacks.Attack, pairs [][2]int, o RhoOptions) (*RhoMeter, error) {
	an, err := analyzer.Analyze(m)
	if err != nil {
		return nil, err
	}
	r := &RhoMeter{an: an, data: d, attack: atk, pairs: pairs, o: o, layers: pairLayers(pairs)}
	tapped, err := r.tapModel()
	if err != nil {
		return nil, err
	}
	if r.taps, err = diffmodel.NewClassifierWithParams(tapped, o.Engine, params); err != nil {
		return nil, fmt.Errorf("ρ taps: %w", err)
	}
	if atk != nil {
		if r.adv, err = newParamWorkers(m, o.Engine, params); err != nil {
			r.Close()
			return nil, err
		}
	}
	return r, nil
}

// paramWorkers is a classifier with exposed parameters that, like
// diffmodel.Classifier's own workers (which a classifier with exposed parameters
// has none of), serves a split batch on one single-threaded classifier per
// thread: AdversarialAccuracy splits its batches over them (attacks.Parallel),
// and their outputs for a sample do not depend on the split.
type paramWorkers struct {
	*diffmodel.Classifier
	workers []*diffmodel.Classifier
}

// newParamWorkers builds the classifier and, for two or more CPU threads
// (diffmodel.Classifier.Workers' conditions), its workers.
func newParamWorkers(m *onnxio.Model, eng ort.Options, params []string) (*paramWorkers, error) {
	c, err := diffmodel.NewClassifierWithParams(m, eng, params)
	if err != nil {
		return nil, err
	}
	p := &paramWorkers{Classifier: c}
	if eng.Threads < 2 || eng.NoWorkers || (eng.Device.Kind != "" && eng.Device.Kind != "cpu") {
		return p, nil
	}
	one := eng
	one.Threads, one.NoWorkers = 1, true
	for range eng.Threads {
		w, err := diffmodel.NewClassifierWithParams(m, one, params)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.workers = append(p.workers, w)
	}
	return p, nil
}

// Workers implements attacks.Parallel.
func (p *paramWorkers) Workers() []attacks.Model {
	out := make([]attacks.Model, len(p.workers))
	for i, w := range p.workers {
		out[i] = w
	}
	return out
}

// SetParams sets the parameters of the classifier and of every worker.
func (p *paramWorkers) SetParams(params map[string][]float32) error {
	if err := p.Classifier.SetParams(params); err != nil {
		return err
	}
	for _, w := range p.workers {
		if err := w.SetParams(params); err != nil {
			return err
		}
	}
	return nil
}

// Close releases every session; safe to call twice, and on nil.
func (p *paramWorkers) Close() error {
	if p == nil {
		return nil
	}
	err := p.Classifier.Close()
	for _, w := range p.workers {
		if e := w.Close(); e != nil && err == nil {
			err = e
		}
	}
	return err
}

// tapModel returns a copy of the model whose first output is every tapped
// layer's output, flattened per sample and concatenated: a logits-like
// [batch, Σ values] tensor that a Classifier with exposed parameters
// computes. Flatten and Concat only copy values, and the tapped tensors
// are graph outputs as in LayerActivations, so the values are those of
// LayerActivations' session.
func (r *RhoMeter) tapModel() (*onnxio.Model, error) {
	names, err := r.an.LayerOutputs(r.layers)
	if err != nil {
		return nil, err
	}
	tapped, err := r.an.Tap(names)
	if err != nil {
		return nil, err
	}
	g := tapped.Graph()
	total := int64(0)
	var flat []string
	for i, name := range names {
		sh := r.an.Shapes.Shape(name)
		if len(sh) < 2 {
			return nil, fmt.Errorf("ρ taps: layer %d's output %q has shape %v; want [batch, ...]", r.layers[i], name, sh)
		}
		per := int64(1)
		for _, dd := range sh[1:] {
			if !dd.Known() {
				return nil, fmt.Errorf("ρ taps: layer %d's output %q has shape %v; every dimension but the batch must be fixed", r.layers[i], name, sh)
			}
			per *= dd.Value
		}
		dim := int(per)
		if r.o.ChannelMean && len(sh) == 4 {
			dim = int(sh[1].Value)
		}
		r.cols, r.dims = append(r.cols, int(per)), append(r.dims, dim)
		total += per
		f := fmt.Sprintf("%s_flat%d", rhoTapsOutput, i)
		g.Node = append(g.Node, &onnxpb.NodeProto{Name: f, OpType: "Flatten", Input: []string{name}, Output: []string{f}, Attribute: []*onnxpb.AttributeProto{onnxio.AttrInt("axis", 1)}})
		flat = append(flat, f)
	}
	g.Node = append(g.Node, &onnxpb.NodeProto{Name: rhoTapsOutput, OpType: "Concat", Input: flat, Output: []string{rhoTapsOutput}, Attribute: []*onnxpb.AttributeProto{onnxio.AttrInt("axis", 1)}})
	batch := r.an.Shapes.Shape(names[0])[0]
	g.Output = append([]*onnxpb.ValueInfoProto{onnxio.ValueInfo(rhoTapsOutput, onnxio.Float, onnxio.Shape{batch, onnxio.D(total)})}, g.GetOutput()...)
	return tapped, nil
}

// Measure sets the named parameters (the values are kept until the next
// Measure: do not change them meanwhile) and measures ρ: it attacks the
// data against the model, then estimates each pair on its layers' outputs.
func (r *RhoMeter) Measure(ctx context.Context, params map[string][]float32) ([]Pair, error) {
	if err := r.taps.SetParams(params); err != nil {
		return nil, err
	}
	d := r.data
	x := d.X
	if r.attack != nil {
		if err := r.adv.SetParams(params); err != nil {
			return nil, err
		}
		res, err := attacks.AdversarialAccuracy(ctx, r.adv, d.X, d.Y, r.attack, r.o.Batch, r.o.Progress.samples("ρ data ("+r.attack.Name()+")"))
		if err != nil {
			return nil, err
		}
		x = res.Adv
	}
	if r.o.Batch < 1 {
		return nil, fmt.Errorf("ρ: batch size %d, want ≥ 1", r.o.Batch)
	}
	size := d.C * d.H * d.W
	n := len(x) / size
	if n == 0 || len(x)%size != 0 {
		return nil, fmt.Errorf("ρ: %d values are not a whole, non-zero number of samples of shape %v", len(x), []int{d.C, d.H, d.W})
	}
	acts := map[int]*mat.Dense{}
	total := 0
	for _, c := range r.cols {
		total += c
	}
	for lo := 0; lo < n; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b := min(r.o.Batch, n-lo)
		out, err := r.taps.Logits(ctx, x[lo*size:(lo+b)*size], b)
		if err != nil {
			return nil, fmt.Errorf("ρ: samples %d-%d: %w", lo, lo+b-1, err)
		}
		off := 0
		vals := make([]float32, 0, b*total)
		for i, l := range r.layers {
			vals = vals[:0]
			for s := range b {
				vals = append(vals, out[s*total+off:s*total+off+r.cols[i]]...)
			}
			addActivationRows(acts, l, n, r.dims[i], vals, lo, lo+b)
			off += r.cols[i]
		}
		lo += b
	}
	return estimatePairs(ctx, r.an, acts, d.Y, r.pairs, r.o)
}

// Close releases the meter's sessions; safe to call twice.
func (r *RhoMeter) Close() error {
	if r == nil {
		return nil
	}
	err := r.taps.Close()
	if e := r.adv.Close(); e != nil && err == nil {
		err = e
	}
	return err
}
