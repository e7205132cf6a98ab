package semirobust

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/diffmodel"
	"github.com/semirobust/srtool/estimators"
	"github.com/semirobust/srtool/onnxio"
)

// DependenceMeasures are the measures --dependence takes: the estimators
// of ρ and the authors' layer sensitivity.
var DependenceMeasures = []string{"edge", "ksg", "gauss", "cka", "hsic", "nocco", "corr", "sensitivity"}

// dependenceTails are the three tails every measure is taken of, each
// under the robust head f*_a: f_b (the semirobust start), f~_b (the
// trial's fine-tuned tail) and f*_b (the robust model itself).
var dependenceTails = []string{"normal", "finetuned", "robust"}

// DependenceValue is one measure of one tail on one kind of data: Value
// is the mean over the tail's pairs (K pairs (j−1, j); sensitivity: the
// K tail layers), PerPair the values it averages, Corrected (with
// --permutations, estimators only) the mean of the permutation-corrected
// values.
type DependenceValue struct {
	Measure   string    `json:"measure"`
	Tail      string    `json:"tail"`
	Data      string    `json:"data"` // clean or attacked (the unit's attack, against the model measured)
	Value     float64   `json:"value"`
	Corrected *float64  `json:"corrected,omitempty"`
	PerPair   []float64 `json:"per_pair"`
}

// TrialDependence is one trial's measures in a row, with its outcome.
type TrialDependence struct {
	Trial  int               `json:"trial"`
	Delta  float64           `json:"delta"` // the trial's best accuracy − Acc*
	Values []DependenceValue `json:"values"`
}

// RankCorrelation is the rank correlation, across the report's (attack,
// K, trial) points, of one measure with an outcome.
type RankCorrelation struct {
	Measure  string   `json:"measure"`
	Tail     string   `json:"tail"`
	Data     string   `json:"data"`
	Kind     string   `json:"kind"`    // raw or corrected
	Outcome  string   `json:"outcome"` // delta (Acc~ − Acc* per trial) or acc_sr
	N        int      `json:"n"`
	Spearman *float64 `json:"spearman,omitempty"` // absent where undefined (a constant sample, fewer than 2 points)
	Kendall  *float64 `json:"kendall_tau_b,omitempty"`
}

// ParseDependence reads --dependence.
func ParseDependence(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []string
	for _, m := range strings.Split(s, ",") {
		m = strings.ToLower(strings.TrimSpace(m))
		ok := false
		for _, d := range DependenceMeasures {
			ok = ok || d == m
		}
		if !ok {
			return nil, fmt.Errorf("--dependence %q: unknown measure %q (have %s)", s, m, strings.Join(DependenceMeasures, ","))
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

// DependenceEstimator is estimator name with its defaults, seeded as
// srtool seeds --estimator.
func DependenceEstimator(name string, seed uint64, units estimators.Units) (estimators.Estimator, error) {
	est, err := estimators.New(name, nil)
	if err != nil {
		return nil, err
	}
	est, _ = estimators.WithRun(est, seed, units, false)
	return est, nil
}

// adversarialInputs attacks d against m (d's inputs when atk is nil).
func adversarialInputs(ctx context.Context, m *onnxio.Model, d []float32, y []int64, atk attacks.Attack, o RhoOptions) ([]float32, error) {
	if atk == nil {
		return d, nil
	}
	clf, err := diffmodel.NewClassifier(m, o.Engine)
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
func (r *runner) measureDependence(m *onnxio.Model, tail string, k int, layers int, atk attacks.Attack) ([]DependenceValue, error) {
	d := r.rhoTest
	pairs, err := TailPairs(layers, k)
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
	var out []DependenceValue
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
			o.Progress = nil
			a, _, err := LayerActivations(r.ctx, m, d.X, sample, tl, o)
			if err != nil {
				return nil, err
			}
			b, _, err := LayerActivations(r.ctx, m, xadv, sample, tl, o)
			if err != nil {
				return nil, err
			}
			v := DependenceValue{Measure: meas, Tail: tail, Data: "attacked"}
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
		est, err := DependenceEstimator(meas, r.ro.Seed, r.estUnits)
		if err != nil {
			return nil, err
		}
		o := r.ro
		o.Estimator, o.Progress, o.Units = est, nil, nil
		for _, dd := range data {
			rh, err := MeasureRhos(r.ctx, m, dd.x, d.Y, sample, pairs, o)
			if err != nil {
				return nil, fmt.Errorf("--dependence %s, %s tail, %s data: %w", meas, tail, dd.name, err)
			}
			v := DependenceValue{Measure: meas, Tail: tail, Data: dd.name}
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
func dependencePoints(rows []Row) (keys []dependenceKey, x map[dependenceKey][]float64, delta, accSR map[dependenceKey][]float64) {
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
	for i, m := range DependenceMeasures {
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

// DependenceCorrelations are the rank correlations of every measure series
// with Acc~ − Acc* and with Acc_sr.
func DependenceCorrelations(rows []Row) []RankCorrelation {
	keys, x, delta, accSR := dependencePoints(rows)
	var out []RankCorrelation
	for _, k := range keys {
		for _, o := range []struct {
			name string
			y    []float64
		}{{"delta", delta[k]}, {"acc_sr", accSR[k]}} {
			rc := RankCorrelation{Measure: k.Measure, Tail: k.Tail, Data: k.Data, Kind: k.Kind, Outcome: o.name, N: len(x[k])}
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
