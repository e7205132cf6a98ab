package estimators

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// allEstimators lists one configured value per name, cheap enough for the
// tests (N ≤ 600).
func allEstimators() []Estimator {
	return []Estimator{EDGE{Seed: 1}, KSG{}, Gaussian{}, CKA{}, CKA{Kernel: "rbf"}, HSIC{}, NOCCO{}, Corr{}}
}

func isMI(e Estimator) bool {
	switch e.(type) {
	case EDGE, KSG, Gaussian:
		return true
	}
	return false
}

// TestGaussianCorrected checks the null-bias correction: within 5 % of the
// truth for d < N/4 (docs/edge.md §8.2: 64×64 ρ = 0.5, N = 2000 reads 14.80 raw,
// 13.27 corrected, truth 13.28).
func TestGaussianCorrected(t *testing.T) {
	for _, c := range []struct{ n, d int }{{2000, 64}, {1000, 10}, {800, 100}} {
		x, y, truth := pairsGauss(c.n, c.d, c.d, c.d, 0.5, 4)
		got, err := Gaussian{}.Estimate(x, y)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := Gaussian{NoCorrection: true}.Estimate(x, y)
		if math.Abs(got-truth) > 0.05*truth {
			t.Errorf("Gaussian(%d×%d, N=%d) = %.3f bits (raw %.3f); want %.3f ± 5%%", c.d, c.d, c.n, got, raw, truth)
		}
		if lw, err := (Gaussian{LedoitWolf: true}).Estimate(x, y); err != nil || lw > raw {
			t.Errorf("Gaussian{LedoitWolf}(%d×%d) = %.3f, %v; want ≤ raw %.3f", c.d, c.d, lw, err, raw)
		}
	}
}

func TestCKAProperties(t *testing.T) {
	x, y, _ := pairsGauss(400, 12, 8, 8, 0.6, 5)
	// A random orthogonal Q from the QR of a Gaussian matrix.
	g, _, _ := pairsGauss(12, 12, 1, 0, 0, 6)
	var qr mat.QR
	qr.Factorize(g)
	var q, xq mat.Dense
	qr.QTo(&q)
	xq.Mul(x, &q)
	var xs mat.Dense
	xs.Scale(-7.5, &xq)
	for _, e := range []CKA{{}, {Biased: true}, {Kernel: "rbf"}, {Kernel: "rbf", Biased: true}} {
		self, err := e.Estimate(x, x)
		if err != nil || math.Abs(self-1) > 1e-9 {
			t.Errorf("CKA%+v(x, x) = %v, %v; want 1", e, self, err)
		}
		base, _ := e.Estimate(x, y)
		rot, _ := e.Estimate(&xs, y)
		if math.Abs(base-rot) > 1e-9 {
			t.Errorf("CKA%+v(−7.5·xQ, y) = %.12f; want %.12f (orthogonal and isotropic-scale invariance)", e, rot, base)
		}
		if base <= 0.05 || base > 1 {
			t.Errorf("CKA%+v(x, y) = %v; want clearly positive for dependent data", e, base)
		}
	}
}

// TestIndependentCorrected: on independent data the permutation-corrected
// value of every estimator is within 0.3 bits of 0 for the MI estimators,
// and within 3 null standard deviations for all (brief). N = 400 and 15
// permutations (NOCCO, O(N³): N = 200) keep the test to seconds.
func TestIndependentCorrected(t *testing.T) {
	for _, d := range []int{1, 10, 100} {
		for _, e := range allEstimators() {
			n := 400
			if _, ok := e.(NOCCO); ok {
				n = 200
			}
			x, y, _ := pairsGauss(n, d, d, 0, 0, uint64(d))
			res, err := PermutationNull(context.Background(), e, x, y, nil, NullOptions{P: 15, Seed: 1})
			if err != nil {
				t.Fatalf("%s d=%d: %v", e.Name(), d, err)
			}
			tol := 3 * res.Std
			if isMI(e) {
				tol = math.Max(tol, 0.3)
			}
			if math.Abs(res.Corrected) > tol {
				t.Errorf("%s(independent, d=%d) corrected = %.4f (raw %.4f, null %.4f ± %.4f); want |·| ≤ %.4f", e.Name(), d, res.Corrected, res.Raw, res.Mean, res.Std, tol)
			}
		}
	}
}

// TestEDGEPermutationReuse checks that EDGE's prepared permutation path is
// the estimator a fresh call on shuffled data runs (floor hashing: exact).
func TestEDGEPermutationReuse(t *testing.T) {
	x, y, _ := pairsGauss(1000, 3, 3, 3, 0.7, 8)
	e := EDGE{RNG: "reference", Deterministic: true}
	xv, yv := view(x), view(y)
	p, err := e.prepare(xv, yv)
	if err != nil {
		t.Fatal(err)
	}
	perm := testRNG(1).Perm(1000)
	got, _ := p.estimate(perm, 1)
	want, _ := e.Estimate(x, yv.subset(perm).dense())
	if got != want {
		t.Errorf("EDGE prepared permutation = %v; want %v (fresh call on shuffled y)", got, want)
	}
	// p-stable: equal up to summation order in the column std.
	x, y, _ = pairsGauss(1000, 20, 20, 5, 0.7, 8)
	xv, yv = view(x), view(y)
	p, _ = e.prepare(xv, yv)
	got, _ = p.estimate(perm, 1)
	want, _ = e.Estimate(x, yv.subset(perm).dense())
	if math.Abs(got-want) > 1e-3 {
		t.Errorf("EDGE p-stable prepared permutation = %v; want %v ± 1e-3", got, want)
	}
}

func TestPerClass(t *testing.T) {
	// Class 0 dependent, class 1 independent, class 2 a single row.
	x0, y0, _ := pairsGauss(300, 2, 2, 2, 0.9, 1)
	x1, y1, _ := pairsGauss(100, 2, 2, 0, 0, 2)
	x := mat.NewDense(401, 2, nil)
	y := mat.NewDense(401, 2, nil)
	labels := make([]int, 401)
	for i := 0; i < 401; i++ {
		switch {
		case i < 300:
			x.SetRow(i, x0.RawRowView(i))
			y.SetRow(i, y0.RawRowView(i))
		case i < 400:
			x.SetRow(i, x1.RawRowView(i-300))
			y.SetRow(i, y1.RawRowView(i-300))
			labels[i] = 1
		default:
			x.SetRow(i, []float64{1, 2})
			y.SetRow(i, []float64{3, 4})
			labels[i] = 2
		}
	}
	ctx := context.Background()
	e := Gaussian{}
	res, err := PerClass(ctx, e, x, y, labels, ClassOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v0, _ := e.Estimate(x0, y0)
	v1, _ := e.Estimate(x1, y1)
	want := (300*v0 + 100*v1) / 400
	if math.Abs(res.Value-want) > 1e-12 || len(res.Skipped) != 1 || res.Skipped[0] != 2 || res.Classes[2].Skipped == "" {
		t.Errorf("PerClass = %+v; want value %v with class 2 skipped", res, want)
	}
	if math.Abs(res.SkippedWeight-1.0/401) > 1e-15 {
		t.Errorf("PerClass skipped weight = %v; want 1/401", res.SkippedWeight)
	}
	if _, err := PerClass(ctx, e, x, y, labels, ClassOptions{Strict: true}); !errors.Is(err, ErrTooFewSamples) {
		t.Errorf("PerClass{Strict} with a one-row class: err = %v; want ErrTooFewSamples", err)
	}
	if _, err := PerClass(ctx, e, x, y, labels[:10], ClassOptions{}); !errors.Is(err, ErrShape) {
		t.Errorf("PerClass with 10 labels for 401 rows: err = %v; want ErrShape", err)
	}
	// EDGE p-stable needs N ≥ 20 per class: class 1 (100 rows) is used.
	xe, ye, _ := pairsGauss(130, 10, 10, 10, 0.5, 3)
	le := make([]int, 130)
	for i := 120; i < 130; i++ {
		le[i] = 1
	}
	r, err := PerClass(ctx, EDGE{}, xe, ye, le, ClassOptions{})
	if err != nil || len(r.Skipped) != 1 || r.Skipped[0] != 1 {
		t.Errorf("PerClass(EDGE, 10-row class) = %+v, %v; want class 1 skipped (p-stable needs N ≥ 20)", r, err)
	}
	// Permutation null and bootstrap with labels.
	nr, err := PermutationNull(ctx, e, x, y, labels, NullOptions{P: 10, Seed: 3})
	if err != nil || math.Abs(nr.Raw-want) > 1e-12 || nr.Corrected < 1 {
		t.Errorf("PermutationNull(per class) = %+v, %v; want raw %v and a large corrected value", nr, err, want)
	}
	ci, err := BootstrapCI(ctx, e, x, y, labels, BootstrapOptions{B: 30, Seed: 4})
	if err != nil || !(ci.Lo <= ci.Raw+0.1 && ci.Raw-0.1 <= ci.Hi && ci.Lo < ci.Hi) {
		t.Errorf("BootstrapCI(per class) = [%v, %v] raw %v, %v; want an interval around raw", ci.Lo, ci.Hi, ci.Raw, err)
	}
	ci2, _ := BootstrapCI(ctx, e, x, y, labels, BootstrapOptions{B: 30, Seed: 4})
	if ci2.Lo != ci.Lo || ci2.Hi != ci.Hi {
		t.Errorf("BootstrapCI seed 4 twice = [%v, %v] and [%v, %v]; want equal", ci.Lo, ci.Hi, ci2.Lo, ci2.Hi)
	}
}

func TestAuthorsHSICCKAAndConnectivity(t *testing.T) {
	x, y, _ := pairsGauss(200, 4, 3, 3, 0.8, 9)
	labels := make([]int, 200)
	for i := range labels {
		labels[i] = i % 2
	}
	h, c, err := AuthorsHSICCKA(context.Background(), x, y, labels, NOCCO{})
	if err != nil || !(h > 0) || !(c > 0 && c <= 2) {
		t.Errorf("AuthorsHSICCKA = %v, %v, %v; want hsic > 0, cka in (0, 2] (sum over 2 classes)", h, c, err)
	}
	// NOCCO(x, x)/NOCCO(x, x) = 1 per class: a sum of 2.
	_, c2, _ := AuthorsHSICCKA(context.Background(), x, x, labels, NOCCO{})
	if math.Abs(c2-2) > 1e-9 {
		t.Errorf("AuthorsHSICCKA(x, x) cka = %v; want 2 (unweighted sum over 2 classes)", c2)
	}
	conn, err := Connectivity(x, y, labels)
	if err != nil || conn <= 0 || conn > 1 {
		t.Errorf("Connectivity = %v, %v; want in (0, 1]", conn, err)
	}
	// One column constant: its pairs are skipped (nanmean).
	xc := mat.DenseCopyOf(x)
	for i := 0; i < 200; i++ {
		xc.Set(i, 0, 3)
	}
	a, _ := Corr{}.Estimate(xc, y)
	b, _ := Corr{}.Estimate(xc.Slice(0, 200, 1, 4), y)
	if math.Abs(a-b) > 1e-12 {
		t.Errorf("Corr with a constant column = %v; want %v (its pairs skipped)", a, b)
	}
}

func TestBadInput(t *testing.T) {
	x, y, _ := pairsGauss(100, 2, 2, 2, 0.5, 1)
	short := mat.NewDense(99, 2, nil)
	withNaN := mat.DenseCopyOf(x)
	withNaN.Set(5, 1, math.NaN())
	withInf := mat.DenseCopyOf(x)
	withInf.Set(7, 0, math.Inf(-1))
	constant := mat.NewDense(100, 2, nil)
	one := mat.NewDense(1, 2, []float64{1, 2})
	tiny, tinyY, _ := pairsGauss(4, 2, 2, 2, 0.5, 1)
	for _, e := range allEstimators() {
		for _, c := range []struct {
			name string
			x, y mat.Matrix
			want error
		}{
			{"mismatched rows", x, short, ErrShape},
			{"NaN", withNaN, y, ErrNonFinite},
			{"Inf", x, withInf, ErrNonFinite},
			{"one sample", one, one, ErrTooFewSamples},
			{"nil", nil, y, ErrShape},
		} {
			if _, err := e.Estimate(c.x, c.y); !errors.Is(err, c.want) {
				t.Errorf("%s(%s): err = %v; want %v", e.Name(), c.name, err, c.want)
			}
		}
		// Constant data: EDGE accepts it (documented), the others refuse.
		v, err := e.Estimate(constant, y)
		if _, ok := e.(EDGE); ok {
			if err != nil || v != 0.001 {
				t.Errorf("EDGE(constant x) = %v, %v; want 0.001 (one bucket, clipped log)", v, err)
			}
		} else if _, ok := e.(NOCCO); ok {
			if err != nil || math.Abs(v) > 1e-9 {
				t.Errorf("NOCCO(constant x) = %v, %v; want 0 (centred kernel is 0)", v, err)
			}
		} else if !errors.Is(err, ErrConstant) {
			t.Errorf("%s(constant x): err = %v; want ErrConstant", e.Name(), err)
		}
	}
	if _, err := (KSG{}).Estimate(tiny, tinyY); !errors.Is(err, ErrTooFewSamples) {
		t.Errorf("KSG(N=4, k=5): err = %v; want ErrTooFewSamples", err)
	}
	if _, err := (EDGE{}).Estimate(mat.NewDense(15, 8, nil), mat.NewDense(15, 8, nil)); !errors.Is(err, ErrTooFewSamples) {
		t.Errorf("EDGE(N=15, d=8): err = %v; want ErrTooFewSamples (p-stable needs N ≥ 20)", err)
	}
	wide, wideY, _ := pairsGauss(50, 30, 30, 0, 0, 1)
	if _, err := (Gaussian{}).Estimate(wide, wideY); !errors.Is(err, ErrTooFewSamples) {
		t.Errorf("Gaussian(d_x+d_y=60 ≥ N=50): err = %v; want ErrTooFewSamples", err)
	}
	for _, e := range []Estimator{EDGE{L: -1}, EDGE{Hashing: "tsne"}, KSG{K: -2}, Gaussian{Shrinkage: 2}, CKA{Kernel: "poly"}, HSIC{Sigma: -1}} {
		if _, err := e.Estimate(x, y); !errors.Is(err, ErrOption) {
			t.Errorf("%+v: err = %v; want ErrOption", e, err)
		}
	}
	if _, err := PermutationNull(context.Background(), Gaussian{}, x, y, nil, NullOptions{P: 1}); !errors.Is(err, ErrOption) {
		t.Errorf("PermutationNull(P=1): err = %v; want ErrOption", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := PermutationNull(ctx, Gaussian{}, x, y, nil, NullOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("PermutationNull(cancelled): err = %v; want context.Canceled", err)
	}
}

func TestNew(t *testing.T) {
	for _, name := range Names() {
		e, err := New(name, nil)
		if err != nil || e.Name() != name {
			t.Errorf("New(%q) = %v, %v; want an estimator named %q", name, e, err, name)
		}
	}
	e, err := New("edge", []byte(`{"L": 10, "RNG": "reference", "Units": "nats"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := e.(EDGE); got.L != 10 || got.RNG != "reference" || got.Units != Nats {
		t.Errorf("New(edge, ...) = %+v; want L 10, RNG reference, nats", got)
	}
	b, _ := json.Marshal(e)
	if string(b) != `{"L":10,"RNG":"reference","Units":"nats"}` {
		t.Errorf("json(EDGE) = %s; want the options that differ from the defaults", b)
	}
	if _, err := New("edge", []byte(`{"Bogus": 1}`)); !errors.Is(err, ErrOption) {
		t.Errorf("New(edge, unknown field): err = %v; want ErrOption", err)
	}
	if _, err := New("mine", nil); !errors.Is(err, ErrOption) {
		t.Errorf("New(mine): err = %v; want ErrOption", err)
	}
}
