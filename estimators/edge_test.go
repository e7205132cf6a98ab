package estimators

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/semirobust/srtool/npy"
	"gonum.org/v1/gonum/mat"
)

// fixtureDir holds the EDGE reference cases (testdata/fixtures/README.md).
var fixtureDir = filepath.Join("..", "testdata", "fixtures", "edge")

type edgeCase struct {
	Case      int     `json:"case"`
	D         int     `json:"d"`
	Rho       float64 `json:"rho"`
	N         int     `json:"n"`
	TrueBits  float64 `json:"true_bits"`
	Reference float64 `json:"edge_reference_bits"`
}

func loadEdgeCases(t testing.TB) []edgeCase {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, "cases.json"))
	if err != nil {
		t.Fatalf("fixtures not available: %v", err)
	}
	var f struct{ Cases []edgeCase }
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f.Cases
}

func loadNpy(t testing.TB, name string) *mat.Dense {
	t.Helper()
	a, err := npy.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	r, c := a.Shape[0], 1
	if len(a.Shape) == 2 {
		c = a.Shape[1]
	}
	return mat.NewDense(r, c, a.Float64())
}

// TestEDGEFixtures checks parity with the authors' code (stochastic=False)
// on testdata/fixtures/edge.
func TestEDGEFixtures(t *testing.T) {
	for _, c := range loadEdgeCases(t) {
		x := loadNpy(t, "case"+itoa(c.Case)+"_x.npy")
		y := loadNpy(t, "case"+itoa(c.Case)+"_y.npy")
		got, err := EDGE{RNG: "reference", Deterministic: true}.Estimate(x, y)
		if err != nil {
			t.Fatalf("case %d: %v", c.Case, err)
		}
		t.Logf("case %d (d=%d, N=%d): got %.12f want %.12f diff %.3g", c.Case, c.D, c.N, got, c.Reference, got-c.Reference)
		if math.Abs(got-c.Reference) > 1e-6 {
			t.Errorf("EDGE(case %d) = %.9f bits; want %.9f ± 1e-6 (authors' reference)", c.Case, got, c.Reference)
		}
	}
}

func itoa(i int) string { return string(rune('0' + i)) }

// TestEDGEFixturesDefaultRNG checks the default RNG (math/rand/v2 streams)
// against the reference values: within 0.35 bits for d ≤ 8 and 1 bit above
// (the brief's tolerance), for three seeds.
func TestEDGEFixturesDefaultRNG(t *testing.T) {
	for _, c := range loadEdgeCases(t) {
		x := loadNpy(t, "case"+itoa(c.Case)+"_x.npy")
		y := loadNpy(t, "case"+itoa(c.Case)+"_y.npy")
		tol := 0.35
		if c.D > 8 {
			tol = 1
		}
		for seed := uint64(1); seed <= 3; seed++ {
			got, err := EDGE{Deterministic: true, Seed: seed}.Estimate(x, y)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-c.Reference) > tol {
				t.Errorf("EDGE default RNG (case %d, seed %d) = %.3f bits; want %.3f ± %.2f (authors' reference)", c.Case, seed, got, c.Reference, tol)
			}
		}
	}
}

// TestEDGEDeterministic checks that a Seed fixes the result and that
// stochastic shifts move it.
func TestEDGEDeterministic(t *testing.T) {
	x, y, _ := pairsGauss(2000, 3, 3, 3, 0.6, 1)
	for _, rng := range []string{"default", "reference"} {
		a, _ := EDGE{RNG: rng, Seed: 5}.Estimate(x, y)
		b, _ := EDGE{RNG: rng, Seed: 5}.Estimate(x, y)
		c, _ := EDGE{RNG: rng, Seed: 6}.Estimate(x, y)
		if a != b {
			t.Errorf("EDGE(%s, seed 5) = %v then %v; want equal", rng, a, b)
		}
		if a == c {
			t.Errorf("EDGE(%s) seeds 5 and 6 both %v; want the stochastic shifts to differ", rng, a)
		}
	}
}

// TestEDGEOptions covers the ensemble options and units.
func TestEDGEOptions(t *testing.T) {
	x, y, _ := pairsGauss(2000, 2, 2, 2, 0.6, 2)
	bits, _ := EDGE{Deterministic: true}.Estimate(x, y)
	nats, _ := EDGE{Deterministic: true, Units: Nats}.Estimate(x, y)
	if math.Abs(nats-bits*math.Ln2) > 1e-12 {
		t.Errorf("EDGE in nats = %v; want %v (bits·ln 2)", nats, bits*math.Ln2)
	}
	for _, e := range []EDGE{
		{L: 10, Ensemble: "average"}, {L: 10}, {L: 5, EpsilonVector: "fixed", Deterministic: true},
		{NormalizeEpsilon: true}, {Hashing: "floor"}, {Epsilon: [2]float64{0.5, 0.5}}, {U: 1},
	} {
		v, err := e.Estimate(x, y)
		if err != nil || v < 0.001 || v > 10 {
			t.Errorf("EDGE%+v = %v, %v; want a value in [0.001, 10]", e, v, err)
		}
	}
	if v, _ := (EDGE{U: 0.5}).Estimate(x, x); v > 0.5 {
		t.Errorf("EDGE{U: 0.5}(x, x) = %v; want ≤ U", v)
	}
}

// TestKthDist compares the binary-search k-th neighbour distance with a
// sort of all distances.
func TestKthDist(t *testing.T) {
	r := testRNG(3)
	col := make([]float64, 300)
	for i := range col {
		col[i] = math.Round(r.NormFloat64()*20) / 4 // ties on purpose
	}
	s := sortedCopy(col)
	for _, k := range []int{1, 2, 7, 150, 300} {
		for _, q := range col[:50] {
			d := make([]float64, len(col))
			for i, v := range col {
				d[i] = math.Abs(v - q)
			}
			want := sortedCopy(d)[k-1]
			if got := kthDist(s, q, k); got != want {
				t.Fatalf("kthDist(q=%v, k=%d) = %v; want %v (full sort)", q, k, got, want)
			}
		}
	}
}
