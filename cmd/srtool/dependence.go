package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"

	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/estimators"
	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
	"github.com/semirobust/srtool/plotting"
)

// dependenceMeasures are the measures --dependence takes: the estimators
// of ρ and the authors' layer sensitivity.
var dependenceMeasures = []string{"edge", "ksg", "gauss", "cka", "hsic", "nocco", "corr", "sensitivity"}

// dependenceTails are the three tails every measure is taken of, each
// under the robust head f*_a: f_b (the semirobust start), f~_b (the
// trial's fine-tuned tail) and f*_b (the robust model itself).
var dependenceTails = []string{"normal", "finetuned", "robust"}

// dependenceValue is one measure of one tail on one kind of data: Value
// is the mean over the tail's pairs (K pairs (j−1, j); sensitivity: the
// K tail layers), PerPair the values it averages, Corrected (with
// --permutations, estimators only) the mean of the permutation-corrected
// values.
type dependenceValue struct {
	Measure   string    `json:"measure"`
	Tail      string    `json:"tail"`
	Data      string    `json:"data"` // clean or attacked (the unit's attack, against the model measured)
	Value     float64   `json:"value"`
	Corrected *float64  `json:"corrected,omitempty"`
	PerPair   []float64 `json:"per_pair"`
}

// trialDependence is one trial's measures in a row, with its outcome.
type trialDependence struct {
	Trial  int               `json:"trial"`
	Delta  float64           `json:"delta"` // the trial's best accuracy − Acc*
	Values []dependenceValue `json:"values"`
}

// rankCorrelation is the rank correlation, across the report's (attack,
// K, trial) points, of one measure with an outcome.
type rankCorrelation struct {
	Measure  string   `json:"measure"`
	Tail     string   `json:"tail"`
	Data     string   `json:"data"`
	Kind     string   `json:"kind"`    // raw or corrected
	Outcome  string   `json:"outcome"` // delta (Acc~ − Acc* per trial) or acc_sr
	N        int      `json:"n"`
	Spearman *float64 `json:"spearman,omitempty"` // absent where undefined (a constant sample, fewer than 2 points)
	Kendall  *float64 `json:"kendall_tau_b,omitempty"`
}

// parseDependence reads --dependence.
func parseDependence(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []string
	for _, m := range strings.Split(s, ",") {
		m = strings.ToLower(strings.TrimSpace(m))
		ok := false
		for _, d := range dependenceMeasures {
			ok = ok || d == m
		}
		if !ok {
			return nil, fmt.Errorf("--dependence %q: unknown measure %q (have %s)", s, m, strings.Join(dependenceMeasures, ","))
		}
		for _, o := range out {
			if o == m {
				return nil, fmt.Errorf("--dependence %q names %s twice", s, m)
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// dependenceEstimator is estimator name with its defaults, seeded as
// newEstimator seeds --estimator.
func dependenceEstimator(name string, seed uint64, units estimators.Units) (estimators.Estimator, error) {
	est, err := estimators.New(name, nil)
	if err != nil {
		return nil, err
	}
	switch e := est.(type) {
	case estimators.EDGE:
		e.Seed, e.Units = seed, units
		est = e
	case estimators.KSG:
		e.Seed, e.Units = seed, units
		est = e
	case estimators.Gaussian:
		e.Units = units
		est = e
	case estimators.CKA:
		e.Seed = seed
		est = e
	case estimators.HSIC:
		e.Seed = seed
		est = e
	}
	return est, nil
}

// adversarialInputs attacks d against m (d's inputs when atk is nil).
func adversarialInputs(ctx context.Context, m *onnxio.Model, d []float32, y []int64, atk attacks.Attack, o rhoOptions) ([]float32, error) {
	if atk == nil {
		return d, nil
	}
	clf, err := ort.NewClassifier(m, o.Engine)
	if err != nil {
		return nil, err
	}
	defer clf.Close()
	res, err := attacks.AdversarialAccuracy(ctx, clf, d, y, atk, o.Batch, nil)
	if err != nil {
		return nil, err
	}
	return res.Adv, nil
}

// measureDependence takes every measure of r.dependence of model m (one
// tail under f*_a) on the ρ data, clean and attacked with atk against m.
func (r *semirobustRun) measureDependence(m *onnxio.Model, tail string, k int, layers int, atk attacks.Attack) ([]dependenceValue, error) {
	d := r.rhoTest
	pairs, err := tailPairs(layers, k)
	if err != nil {
		return nil, err
	}
	xadv, err := adversarialInputs(r.ctx, m, d.X, d.Y, atk, r.ro)
	if err != nil {
		return nil, err
	}
	sample := []int{d.C, d.H, d.W}
	data := []struct {
		name string
		x    []float32
	}{{"clean", d.X}}
	if atk != nil {
		data = append(data, struct {
			name string
			x    []float32
		}{"attacked", xadv})
	}
	var out []dependenceValue
	for _, meas := range r.dependence {
		if meas == "sensitivity" {
			if atk == nil {
				continue // no attack: nothing to be sensitive to
			}
			var tl []int
			for j := layers - k + 1; j <= layers; j++ {
				tl = append(tl, j)
			}
			o := r.ro
			o.ErrW = nil
			a, _, err := layerActivations(r.ctx, m, d.X, sample, tl, o)
			if err != nil {
				return nil, err
			}
			b, _, err := layerActivations(r.ctx, m, xadv, sample, tl, o)
			if err != nil {
				return nil, err
			}
			v := dependenceValue{Measure: meas, Tail: tail, Data: "attacked"}
			for _, l := range tl {
				num, den := 0.0, 0.0
				ra, rb := a[l].RawMatrix().Data, b[l].RawMatrix().Data
				for i := range ra {
					num += math.Abs(ra[i] - rb[i])
					den += math.Abs(ra[i])
				}
				s := 0.0
				if den > 0 {
					s = num / den
				}
				v.PerPair = append(v.PerPair, s)
			}
			v.Value = mean(v.PerPair)
			out = append(out, v)
			continue
		}
		est, err := dependenceEstimator(meas, r.ro.Seed, r.estUnits)
		if err != nil {
			return nil, err
		}
		o := r.ro
		o.Estimator, o.ErrW, o.Units = est, nil, nil
		for _, dd := range data {
			rh, err := measureRhos(r.ctx, m, dd.x, d.Y, sample, pairs, o)
			if err != nil {
				return nil, fmt.Errorf("--dependence %s, %s tail, %s data: %w", meas, tail, dd.name, err)
			}
			v := dependenceValue{Measure: meas, Tail: tail, Data: dd.name}
			var corr []float64
			for _, p := range rh {
				v.PerPair = append(v.PerPair, p.Value)
				if p.Corrected != nil {
					corr = append(corr, *p.Corrected)
				}
			}
			v.Value = mean(v.PerPair)
			if len(corr) == len(rh) && len(corr) > 0 {
				v.Corrected = f64(mean(corr))
			}
			out = append(out, v)
		}
	}
	return out, nil
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// dependenceKey names a measure's series: measure, tail, data, kind.
type dependenceKey struct{ Measure, Tail, Data, Kind string }

func (k dependenceKey) String() string {
	return fmt.Sprintf("%s %s %s (%s)", k.Measure, k.Tail, k.Data, k.Kind)
}

// dependencePoints collects, for every measure series, its values and the
// outcomes across the rows' trials: Acc~ − Acc* of the trial and the row's
// Acc_sr.
func dependencePoints(rows []semirobustRow) (keys []dependenceKey, x map[dependenceKey][]float64, delta, accSR map[dependenceKey][]float64) {
	x, delta, accSR = map[dependenceKey][]float64{}, map[dependenceKey][]float64{}, map[dependenceKey][]float64{}
	for _, r := range rows {
		for _, t := range r.Dependence {
			for _, v := range t.Values {
				add := func(kind string, val float64) {
					k := dependenceKey{v.Measure, v.Tail, v.Data, kind}
					if _, ok := x[k]; !ok {
						keys = append(keys, k)
					}
					x[k] = append(x[k], val)
					delta[k] = append(delta[k], t.Delta)
					sr := math.NaN()
					if r.AccSR != nil {
						sr = *r.AccSR
					}
					accSR[k] = append(accSR[k], sr)
				}
				add("raw", v.Value)
				if v.Corrected != nil {
					add("corrected", *v.Corrected)
				}
			}
		}
	}
	order := map[string]int{}
	for i, m := range dependenceMeasures {
		order[m] = i
	}
	for i, t := range dependenceTails {
		order["tail "+t] = i
	}
	sort.SliceStable(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.Measure != b.Measure {
			return order[a.Measure] < order[b.Measure]
		}
		if a.Tail != b.Tail {
			return order["tail "+a.Tail] < order["tail "+b.Tail]
		}
		if a.Data != b.Data {
			return a.Data < b.Data
		}
		return a.Kind > b.Kind // raw first
	})
	return keys, x, delta, accSR
}

// dependenceCorrelations are the rank correlations of every measure series
// with Acc~ − Acc* and with Acc_sr.
func dependenceCorrelations(rows []semirobustRow) []rankCorrelation {
	keys, x, delta, accSR := dependencePoints(rows)
	var out []rankCorrelation
	for _, k := range keys {
		for _, o := range []struct {
			name string
			y    []float64
		}{{"delta", delta[k]}, {"acc_sr", accSR[k]}} {
			rc := rankCorrelation{Measure: k.Measure, Tail: k.Tail, Data: k.Data, Kind: k.Kind, Outcome: o.name, N: len(x[k])}
			if s, err := estimators.Spearman(x[k], o.y); err == nil {
				rc.Spearman = f64(s)
			}
			if t, err := estimators.KendallTauB(x[k], o.y); err == nil {
				rc.Kendall = f64(t)
			}
			out = append(out, rc)
		}
	}
	return out
}

// writeDependenceSection adds the rank-correlation table to report.md and
// writes one scatter plot per measure (every tail and data series of the
// measure against Acc~ − Acc*); it returns the plots written.
func writeDependenceSection(b *strings.Builder, dir string, rep *semirobustReport) ([]string, error) {
	if len(rep.DependenceCorrelations) == 0 {
		return nil, nil
	}
	opt := func(v *float64) string {
		if v == nil {
			return "–"
		}
		return fmt.Sprintf("%+.3f", *v)
	}
	fmt.Fprintf(b, "\n## Which dependence measure predicts semirobustness\n\nEach measure is the mean over the tail's K layer pairs (sensitivity ‖f_l(x) − f_l(x_adv)‖₁ / ‖f_l(x)‖₁: over its K layers), taken of three tails under the robust head f*_a — f_b (normal), f~_b (fine-tuned, per trial) and f*_b (robust) — on the ρ data clean and attacked against the model measured. Points: every (attack, K, trial); the outcomes are the trial's best accuracy − Acc* (Acc~ − Acc*) and the row's Acc_sr. Rank correlations: Spearman's ρ_s and Kendall's τ_b (ties handled); – where undefined (a constant series). With few points none of these is conclusive.\n\n")
	fmt.Fprintf(b, "| measure | tail | data | kind | n | ρ_s with Acc~ − Acc* | τ_b with Acc~ − Acc* | ρ_s with Acc_sr | τ_b with Acc_sr |\n|---|---|---|---|---|---|---|---|---|\n")
	for i := 0; i+1 < len(rep.DependenceCorrelations); i += 2 {
		d, s := rep.DependenceCorrelations[i], rep.DependenceCorrelations[i+1]
		fmt.Fprintf(b, "| %s | %s | %s | %s | %d | %s | %s | %s | %s |\n", d.Measure, d.Tail, d.Data, d.Kind, d.N, opt(d.Spearman), opt(d.Kendall), opt(s.Spearman), opt(s.Kendall))
	}
	b.WriteString("\n")
	keys, x, delta, _ := dependencePoints(rep.Rows)
	var written []string
	for _, m := range dependenceMeasures {
		var ss []plotting.Series
		for _, k := range keys {
			if k.Measure != m || k.Kind != "raw" {
				continue
			}
			ss = append(ss, plotting.Series{Name: k.Tail + ", " + k.Data, X: x[k], Y: delta[k]})
		}
		if len(ss) == 0 {
			continue
		}
		file := "dependence_" + m + ".png"
		if err := plotting.WriteScatterPlot(filepath.Join(dir, file), m+" of the tail against Acc~ − Acc*", m+" (mean over the tail)", "Acc~ − Acc* (%)", ss); err != nil {
			return nil, err
		}
		written = append(written, filepath.Join(dir, file))
		fmt.Fprintf(b, "![%s against Acc~ − Acc*](%s)\n", m, file)
	}
	b.WriteString("\n")
	return written, nil
}

// untrainedTail is (f*_a, f_b⁰): the semirobust start with every tail
// parameter re-initialised as PyTorch initialises a fresh module, seeded:
// conv and linear weights and biases uniform in ±1/√fan_in (kaiming_uniform
// with a = √5), BatchNorm scale 1, shift 0, running mean 0, variance 1.
func untrainedTail(s *semirobustSetup, seed uint64) (*onnxio.Model, error) {
	tail := map[string]bool{}
	for _, n := range s.Part.TailParams {
		tail[n] = true
	}
	for _, n := range s.Part.TailStats {
		tail[n] = true
	}
	bn := map[string]bool{}
	for _, n := range s.Part.TailBN {
		bn[n] = true
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	ps := finetune.Params{}
	fill := func(name string, v float32) error {
		dims, err := shapeOf(s.Start, name)
		if err != nil {
			return err
		}
		n := 1
		for _, d := range dims {
			n *= int(d)
		}
		x := make([]float32, n)
		for i := range x {
			x[i] = v
		}
		ps[name] = x
		return nil
	}
	uniform := func(name string, fanIn int64) error {
		dims, err := shapeOf(s.Start, name)
		if err != nil {
			return err
		}
		n := 1
		for _, d := range dims {
			n *= int(d)
		}
		bound := 1 / math.Sqrt(float64(max(fanIn, 1)))
		x := make([]float32, n)
		for i := range x {
			x[i] = float32((2*rng.Float64() - 1) * bound)
		}
		ps[name] = x
		return nil
	}
	for _, node := range s.Start.Graph().GetNode() {
		in := node.GetInput()
		switch {
		case bn[node.GetName()] && len(in) >= 5:
			for i, v := range []float32{1, 0, 0, 1} {
				if tail[in[i+1]] {
					if err := fill(in[i+1], v); err != nil {
						return nil, err
					}
				}
			}
		case (node.GetOpType() == "Conv" || node.GetOpType() == "Gemm") && len(in) >= 2 && tail[in[1]]:
			dims, err := shapeOf(s.Start, in[1])
			if err != nil {
				return nil, err
			}
			fanIn := int64(1)
			for _, d := range dims[1:] {
				fanIn *= d
			}
			if err := uniform(in[1], fanIn); err != nil {
				return nil, err
			}
			if len(in) >= 3 && tail[in[2]] {
				if err := uniform(in[2], fanIn); err != nil {
					return nil, err
				}
			}
		}
	}
	for _, n := range s.Part.TailParams {
		if _, ok := ps[n]; !ok {
			return nil, fmt.Errorf("--untrained-fb: tail parameter %s is not a Conv, Gemm or BatchNormalization input; cannot re-initialise it", n)
		}
	}
	return withParams(s.Start, ps)
}
