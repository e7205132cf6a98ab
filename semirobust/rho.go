package semirobust

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/dataset"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/diffmodel"
	"github.com/semirobust/srtool/estimators"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
)

// Pair is the dependence between the outputs of two weight layers.
type Pair struct {
	Parent     int    `json:"parent"` // 1-based weight-layer index
	Child      int    `json:"child"`
	ParentName string `json:"parent_tensor"`
	ChildName  string `json:"child_tensor"`
	// Connected is true when the child reads the parent's output (through
	// BatchNorm, activations, additions, … but no other weight layer);
	// Relation says so in words ("parent → child", or consecutive but not
	// connected, as a residual block's shortcut after the block's last conv).
	Connected bool    `json:"connected"`
	Relation  string  `json:"relation"`
	ParentDim int     `json:"parent_dim"`
	ChildDim  int     `json:"child_dim"`
	Value     float64 `json:"value"` // raw estimate (class-weighted with per-class)
	// With permutations: the null's mean and spread and Value − mean.
	NullMean  *float64 `json:"null_mean,omitempty"`
	NullStd   *float64 `json:"null_std,omitempty"`
	Corrected *float64 `json:"corrected,omitempty"`
	// Skipped lists classes left out (too few samples for the estimator).
	Skipped []int `json:"skipped_classes,omitempty"`
}

// RhoOptions says how to measure layer dependence.
type RhoOptions struct {
	Estimator    estimators.Estimator
	PerClass     bool
	ChannelMean  bool
	Permutations int
	Seed         uint64
	Batch        int
	Engine       ort.Options
	// Progress, if set, reports attacking the ρ data and estimating pairs.
	Progress Progress
	// Units, when set, estimates only the pairs with index in [Units[0],
	// Units[1]) (a shard of `mi`); every pair's layers are still tapped, so
	// the graph, and each estimate, is the unsharded run's.
	Units *[2]int
}

// ParsePairs reads "all" (consecutive pairs), "matrix" (every i < j), or
// "i:j,k:l" (1-based weight layers).
func ParsePairs(s string, layers int) ([][2]int, error) {
	if s == "matrix" {
		var out [][2]int
		for i := 1; i <= layers; i++ {
			for j := i + 1; j <= layers; j++ {
				out = append(out, [2]int{i, j})
			}
		}
		return out, nil
	}
	if s == "all" {
		var out [][2]int
		for j := 2; j <= layers; j++ {
			out = append(out, [2]int{j - 1, j})
		}
		return out, nil
	}
	var out [][2]int
	for _, p := range strings.Split(s, ",") {
		a, b, ok := strings.Cut(strings.TrimSpace(p), ":")
		i, err1 := strconv.Atoi(a)
		j, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil || i < 1 || j < 1 || i > layers || j > layers || i == j {
			return nil, fmt.Errorf("--pairs %q: want i:j with 1 ≤ i, j ≤ %d and i ≠ j, all or matrix", p, layers)
		}
		out = append(out, [2]int{i, j})
	}
	return out, nil
}

// TailPairs are the paper's ρ pairs: (j−1, j) for the last K weight layers.
func TailPairs(layers, k int) ([][2]int, error) {
	if k < 1 || k >= layers {
		return nil, fmt.Errorf("--fb-layers %d out of range: the model has %d weight layers, so K must be in 1..%d", k, layers, layers-1)
	}
	var out [][2]int
	for j := layers - k + 1; j <= layers; j++ {
		out = append(out, [2]int{j - 1, j})
	}
	return out, nil
}

// LayerActivations runs m over x and returns, for each requested weight
// layer, an n×d matrix of its flattened outputs (or channel means).
func LayerActivations(ctx context.Context, m *onnxio.Model, x []float32, sample []int, layers []int, o RhoOptions) (map[int]*mat.Dense, *analyzer.Analysis, error) {
	an, err := analyzer.Analyze(m)
	if err != nil {
		return nil, nil, err
	}
	names, err := an.LayerOutputs(layers)
	if err != nil {
		return nil, nil, err
	}
	tapped, err := an.Tap(names)
	if err != nil {
		return nil, nil, err
	}
	b, err := tapped.Encode()
	if err != nil {
		return nil, nil, err
	}
	s, err := ort.NewSession(b, o.Engine)
	if err != nil {
		return nil, nil, err
	}
	defer s.Close()
	size := 1
	for _, d := range sample {
		size *= d
	}
	n := len(x) / size
	out := map[int]*mat.Dense{}
	input := an.Index.Inputs[0]
	err = ort.Stream(ctx, s, input, names, x, sample, o.Batch, func(lo, hi int, res map[string]ort.Tensor) error {
		for i, l := range layers {
			t := res[names[i]]
			dim := len(t.Float32) / (hi - lo)
			if o.ChannelMean && len(t.Shape) == 4 {
				dim = int(t.Shape[1])
			}
			addActivationRows(out, l, n, dim, t.Float32, lo, hi)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return out, an, nil
}

// addActivationRows stores rows [lo, hi) of layer l's activations (vals
// holds hi − lo samples' flattened outputs) in acts[l], an n×dim matrix
// made on first use; with fewer columns than values per sample, each
// column is the mean of its channel's values.
func addActivationRows(acts map[int]*mat.Dense, l, n, dim int, vals []float32, lo, hi int) {
	per := len(vals) / (hi - lo)
	mtx := acts[l]
	if mtx == nil {
		mtx = mat.NewDense(n, dim, nil)
		acts[l] = mtx
	}
	for r := lo; r < hi; r++ {
		row := vals[(r-lo)*per : (r-lo+1)*per]
		dst := mtx.RawRowView(r)
		if dim == per {
			for j, v := range row {
				dst[j] = float64(v)
			}
			continue
		}
		hw := per / dim
		for ch := 0; ch < dim; ch++ {
			sum := 0.0
			for _, v := range row[ch*hw : (ch+1)*hw] {
				sum += float64(v)
			}
			dst[ch] = sum / float64(hw)
		}
	}
}

// MeasureRhos estimates the dependence of each pair of weight layers on
// inputs x (n samples) with class labels y.
func MeasureRhos(ctx context.Context, m *onnxio.Model, x []float32, y []int64, sample []int, pairs [][2]int, o RhoOptions) ([]Pair, error) {
	acts, an, err := LayerActivations(ctx, m, x, sample, pairLayers(pairs), o)
	if err != nil {
		return nil, err
	}
	return estimatePairs(ctx, an, acts, y, pairs, o)
}

// pairLayers lists the weight layers of pairs, each once, in order of
// first appearance.
func pairLayers(pairs [][2]int) []int {
	need := map[int]bool{}
	var layers []int
	for _, p := range pairs {
		for _, l := range p {
			if !need[l] {
				need[l] = true
				layers = append(layers, l)
			}
		}
	}
	return layers
}

// estimatePairs estimates each pair's dependence from the activations of
// its layers (acts, by weight layer) with class labels y.
func estimatePairs(ctx context.Context, an *analyzer.Analysis, acts map[int]*mat.Dense, y []int64, pairs [][2]int, o RhoOptions) ([]Pair, error) {
	var labels []int
	if o.PerClass {
		labels = make([]int, len(y))
		for i, v := range y {
			labels[i] = int(v)
		}
	}
	var out []Pair
	bar := o.Progress.start("ρ ("+o.Estimator.Name()+")", "layer pairs")
	lo, hi := 0, len(pairs)
	if o.Units != nil {
		lo, hi = o.Units[0], o.Units[1]
	}
	for i := lo; i < hi; i++ {
		p := pairs[i]
		px, cy := acts[p[0]], acts[p[1]]
		_, dx := px.Dims()
		_, dy := cy.Dims()
		r := Pair{Parent: p[0], Child: p[1], ParentName: an.Layers[p[0]-1].Output, ChildName: an.Layers[p[1]-1].Output, ParentDim: dx, ChildDim: dy}
		r.Connected, r.Relation = PairRelation(an, p[0], p[1])
		if o.Permutations > 0 {
			nr, err := estimators.PermutationNull(ctx, o.Estimator, px, cy, labels, estimators.NullOptions{P: o.Permutations, Seed: o.Seed})
			if err != nil {
				return nil, fmt.Errorf("layers %d:%d: %w", p[0], p[1], err)
			}
			r.Value = nr.Raw
			mean, std, corr := nr.Mean, nr.Std, nr.Corrected
			r.NullMean, r.NullStd, r.Corrected = &mean, &std, &corr
			r.Skipped = nr.Classes.Skipped
		} else {
			cr, err := estimators.PerClass(ctx, o.Estimator, px, cy, labels, estimators.ClassOptions{})
			if err != nil {
				return nil, fmt.Errorf("layers %d:%d: %w", p[0], p[1], err)
			}
			r.Value = cr.Value
			r.Skipped = cr.Skipped
		}
		out = append(out, r)
		if bar != nil {
			bar(i+1-lo, hi-lo)
		}
	}
	return out, nil
}

// RhosOnAttacked measures ρ on d attacked with atk against m (clean when
// atk is nil).
func RhosOnAttacked(ctx context.Context, m *onnxio.Model, d *dataset.Dataset, atk attacks.Attack, pairs [][2]int, o RhoOptions) ([]Pair, error) {
	x := d.X
	if atk != nil {
		clf, err := diffmodel.NewClassifier(m, o.Engine)
		if err != nil {
			return nil, err
		}
		r, err := attacks.AdversarialAccuracy(ctx, clf, d.X, d.Y, atk, o.Batch, o.Progress.samples("ρ data ("+atk.Name()+")"))
		clf.Close()
		if err != nil {
			return nil, err
		}
		x = r.Adv
	}
	return MeasureRhos(ctx, m, x, d.Y, []int{d.C, d.H, d.W}, pairs, o)
}

// PairRelation says whether weight layer child reads the output of weight
// layer parent: walking back from the child's data input through the
// nodes that produce it, without passing another weight layer, reaches the
// parent. A consecutive pair that is not connected is, in a ResNet, the
// block's last conv and the shortcut conv that reads the block's input.
func PairRelation(an *analyzer.Analysis, parent, child int) (bool, string) {
	if parent < 1 || child < 1 || parent > len(an.Layers) || child > len(an.Layers) {
		return false, ""
	}
	layerOf := map[int]int{}
	for _, l := range an.Layers {
		layerOf[l.Node] = l.Index
	}
	target := an.Layers[parent-1].Node
	start := an.Index.Node(an.Layers[child-1].Node)
	seen := map[int]bool{}
	var stack []string
	if len(start.GetInput()) > 0 {
		stack = append(stack, start.GetInput()[0])
	}
	connected := false
	for len(stack) > 0 && !connected {
		t := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		p, ok := an.Index.Producer[t]
		if !ok || seen[p] {
			continue
		}
		seen[p] = true
		if p == target {
			connected = true
			break
		}
		if _, weight := layerOf[p]; weight {
			continue
		}
		stack = append(stack, an.Index.Node(p).GetInput()...)
	}
	switch {
	case connected:
		return true, fmt.Sprintf("parent → child: layer %d reads layer %d's output", child, parent)
	case child == parent+1:
		return false, fmt.Sprintf("consecutive but not connected: layer %d does not read layer %d's output", child, parent)
	}
	return false, fmt.Sprintf("not connected: layer %d does not read layer %d's output", child, parent)
}

// BNExport says what the tapped weight-layer outputs are: the export keeps
// BatchNormalization nodes (PyTorch's TrainingMode.PRESERVE: ρ taps conv
// outputs before BatchNorm, as the paper's hooks do), folded them into the
// convolutions (eval-mode export: ρ taps conv+BN outputs, which gives other
// values, e.g. 2.612 vs 2.389 bits on one pair), or has none.
type BNExport string

const (
	BNPreserve BNExport = "preserve"
	BNFolded   BNExport = "folded"
	BNNone     BNExport = "none"
)

// BNExportOf classifies a model's export: BatchNormalization nodes mean
// PRESERVE; none, with weights the exporter renamed (onnx::…, as it does
// when it folds BatchNorm into a conv), mean folded; otherwise the graph
// has no BatchNorm (which a folded export with kept names looks like too).
func BNExportOf(an *analyzer.Analysis) BNExport {
	for _, n := range an.Model.Graph().GetNode() {
		if n.GetOpType() == "BatchNormalization" {
			return BNPreserve
		}
	}
	for _, l := range an.Layers {
		for _, p := range l.Params {
			if strings.HasPrefix(p, "onnx::") {
				return BNFolded
			}
		}
	}
	return BNNone
}

// Describe is the sentence a ρ report prints about the export.
func (b BNExport) Describe() string {
	switch b {
	case BNPreserve:
		return "PRESERVE export (BatchNorm nodes kept): ρ taps the weight layers' outputs before BatchNorm, as the paper's hooks do"
	case BNFolded:
		return "BN-folded export (no BatchNorm nodes; the convolutions carry the folded BatchNorm): ρ taps conv+BN outputs, which differ from the paper's conv outputs"
	}
	return "no BatchNorm nodes in the model: ρ taps the weight layers' outputs (if the network was trained with BatchNorm, the export folded it and these are conv+BN outputs)"
}

// Warning is a warning for a folded export ("" otherwise).
func (b BNExport) Warning() string {
	if b != BNFolded {
		return ""
	}
	return "the model's BatchNorm is folded into its convolutions, so ρ measures conv+BN outputs, not the conv outputs the paper taps; re-export with torch.onnx.export(..., training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False) for the paper's ρ"
}

// maxRhoProbeRows bounds the rows CheckRhoSamples tries when it looks for
// an estimator's minimum.
const maxRhoProbeRows = 4096

// CheckRhoSamples checks, before any expensive work, that ρ can be
// measured on d: every pair is estimated per class, and a class with fewer
// rows than the estimator needs is left out, so at least one class must
// have the minimum (found by running the estimator on random data of the
// pairs' sizes). It is a usage error naming the minimum and flag (the flag
// that sets d's size) otherwise, and a warning on w when some classes are
// too small.
func CheckRhoSamples(est estimators.Estimator, an *analyzer.Analysis, pairs [][2]int, d *dataset.Dataset, flag string, w io.Writer) error {
	if len(pairs) == 0 || d.Len() == 0 {
		return optionf("%s gives no sample to measure ρ on", flag)
	}
	// The pair with the most values per sample needs the most rows.
	dims := func(l int) int {
		n := 1
		for _, v := range an.Layers[l-1].Shape[1:] {
			if v > 0 {
				n *= int(v)
			}
		}
		return n
	}
	dx, dy, at := 0, 0, pairs[0]
	for _, p := range pairs {
		if a, b := dims(p[0]), dims(p[1]); a+b > dx+dy {
			dx, dy, at = a, b, p
		}
	}
	counts := map[int64]int{}
	for _, y := range d.Y {
		counts[y]++
	}
	most, fewest := 0, d.Len()
	for _, n := range counts {
		most, fewest = max(most, n), min(fewest, n)
	}
	ok := func(n int) bool {
		rng := rand.New(rand.NewPCG(uint64(n), 7))
		x, y := mat.NewDense(n, dx, nil), mat.NewDense(n, dy, nil)
		for _, m := range []*mat.Dense{x, y} {
			raw := m.RawMatrix().Data
			for i := range raw {
				raw[i] = rng.NormFloat64()
			}
		}
		_, err := est.Estimate(x, y)
		return !errors.Is(err, estimators.ErrTooFewSamples)
	}
	// minimum finds the smallest n in (lo, hi] the estimator accepts, given
	// that it refuses lo and accepts hi.
	minimum := func(lo, hi int) int {
		for hi-lo > 1 {
			mid := (lo + hi) / 2
			if ok(mid) {
				hi = mid
			} else {
				lo = mid
			}
		}
		return hi
	}
	// Probes that succeed cost a real estimate; those that fail are cheap
	// (the estimators check sizes first). So: the largest class first.
	if fewest >= 2 && ok(fewest) {
		return nil
	}
	need := 0
	if ok(most) {
		need = minimum(max(fewest, 1), most)
	} else {
		lo, hi := most, 2*most
		for hi <= maxRhoProbeRows && !ok(hi) {
			lo, hi = hi, 2*hi
		}
		if hi > maxRhoProbeRows {
			return optionf("ρ with %s needs more than %d samples per class for layers %d:%d (%d and %d values per sample); %s %d gives at most %d per class: use another --estimator",
				est.Name(), maxRhoProbeRows, at[0], at[1], dx, dy, flag, d.Len(), most)
		}
		if hi > 512 {
			// Successful probes this large are costly (a Gaussian estimate
			// over thousands of rows): bound the minimum instead of finding it.
			return optionf("ρ with %s needs more than %d samples in a class (layers %d:%d, %d and %d values per sample; %d suffice), but %s %d gives at most %d per class over %d classes: raise %s to at least %d, or use another --estimator",
				est.Name(), lo, at[0], at[1], dx, dy, hi, flag, d.Len(), most, len(counts), flag, (d.Len()*lo+most-1)/most)
		}
		need = minimum(lo, hi)
		return optionf("ρ with %s needs at least %d samples in a class (layers %d:%d, %d and %d values per sample), but %s %d gives at most %d per class over %d classes: raise %s to at least %d",
			est.Name(), need, at[0], at[1], dx, dy, flag, d.Len(), most, len(counts), flag, (d.Len()*need+most-1)/most)
	}
	var small []string
	for y, n := range counts {
		if n < need {
			small = append(small, fmt.Sprintf("%d (%d)", y, n))
		}
	}
	if len(small) > 0 && w != nil {
		sort.Strings(small)
		fmt.Fprintf(w, "warning: ρ leaves out classes with fewer than the %d samples %s needs: %s (class (samples)); raise %s to include them\n", need, est.Name(), strings.Join(small, ", "), flag)
	}
	return nil
}
