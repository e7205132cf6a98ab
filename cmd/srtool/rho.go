package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/estimators"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
)

// rhoPair is the dependence between the outputs of two weight layers.
type rhoPair struct {
	Parent     int     `json:"parent"` // 1-based weight-layer index
	Child      int     `json:"child"`
	ParentName string  `json:"parent_tensor"`
	ChildName  string  `json:"child_tensor"`
	ParentDim  int     `json:"parent_dim"`
	ChildDim   int     `json:"child_dim"`
	Value      float64 `json:"value"` // raw estimate (class-weighted with per-class)
	// With permutations: the null's mean and spread and Value − mean.
	NullMean  *float64 `json:"null_mean,omitempty"`
	NullStd   *float64 `json:"null_std,omitempty"`
	Corrected *float64 `json:"corrected,omitempty"`
	// Skipped lists classes left out (too few samples for the estimator).
	Skipped []int `json:"skipped_classes,omitempty"`
}

// rhoOptions says how to measure layer dependence.
type rhoOptions struct {
	Estimator    estimators.Estimator
	PerClass     bool
	ChannelMean  bool
	Permutations int
	Seed         uint64
	Batch        int
	Engine       ort.Options
}

// parsePairs reads "all" (consecutive pairs), "matrix" (every i < j), or
// "i:j,k:l" (1-based weight layers).
func parsePairs(s string, layers int) ([][2]int, error) {
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

// tailPairs are the paper's ρ pairs: (j−1, j) for the last K weight layers.
func tailPairs(layers, k int) ([][2]int, error) {
	if k < 1 || k >= layers {
		return nil, fmt.Errorf("--fb-layers %d out of range: the model has %d weight layers, so K must be in 1..%d", k, layers, layers-1)
	}
	var out [][2]int
	for j := layers - k + 1; j <= layers; j++ {
		out = append(out, [2]int{j - 1, j})
	}
	return out, nil
}

// layerActivations runs m over x and returns, for each requested weight
// layer, an n×d matrix of its flattened outputs (or channel means).
func layerActivations(ctx context.Context, m *onnxio.Model, x []float32, sample []int, layers []int, o rhoOptions) (map[int]*mat.Dense, *analyzer.Analysis, error) {
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
			per := len(t.Float32) / (hi - lo)
			dim := per
			if o.ChannelMean && len(t.Shape) == 4 {
				dim = int(t.Shape[1])
			}
			mtx := out[l]
			if mtx == nil {
				mtx = mat.NewDense(n, dim, nil)
				out[l] = mtx
			}
			for r := lo; r < hi; r++ {
				row := t.Float32[(r-lo)*per : (r-lo+1)*per]
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
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return out, an, nil
}

// measureRhos estimates the dependence of each pair of weight layers on
// inputs x (n samples) with class labels y.
func measureRhos(ctx context.Context, m *onnxio.Model, x []float32, y []int64, sample []int, pairs [][2]int, o rhoOptions) ([]rhoPair, error) {
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
	acts, an, err := layerActivations(ctx, m, x, sample, layers, o)
	if err != nil {
		return nil, err
	}
	var labels []int
	if o.PerClass {
		labels = make([]int, len(y))
		for i, v := range y {
			labels[i] = int(v)
		}
	}
	var out []rhoPair
	for _, p := range pairs {
		px, cy := acts[p[0]], acts[p[1]]
		_, dx := px.Dims()
		_, dy := cy.Dims()
		r := rhoPair{Parent: p[0], Child: p[1], ParentName: an.Layers[p[0]-1].Output, ChildName: an.Layers[p[1]-1].Output, ParentDim: dx, ChildDim: dy}
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
	}
	return out, nil
}
