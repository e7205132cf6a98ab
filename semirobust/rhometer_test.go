package semirobust

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/checkpoint"
	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/estimators"
	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
)

// rhoMeterFixture is the golden finetune's per-epoch ρ: f* of the demo,
// the last 3 layers' parameters and BatchNorm statistics fed, ρ of the
// tail pairs on n test samples attacked with PGD against the model.
type rhoMeterFixture struct {
	m      *onnxio.Model
	names  []string
	values finetune.Params // the model's own values of names
	data   *dataset.Dataset
	atk    attacks.Attack
	pairs  [][2]int
	o      RhoOptions
}

func loadRhoMeterFixture(tb testing.TB, n int) *rhoMeterFixture {
	tb.Helper()
	m, err := onnxio.Read(demoRobust)
	if err != nil {
		tb.Fatal(err)
	}
	an, err := analyzer.Analyze(m)
	if err != nil {
		tb.Fatal(err)
	}
	cut, err := an.CutTail(3)
	if err != nil {
		tb.Fatal(err)
	}
	part := an.Partition(cut)
	f := &rhoMeterFixture{m: m, names: append(slices.Clone(part.TailParams), part.TailStats...), values: finetune.Params{}}
	ts, err := checkpoint.Export(m)
	if err != nil {
		tb.Fatal(err)
	}
	for _, name := range f.names {
		t, ok := ts[name]
		if !ok {
			tb.Fatalf("parameter %q not exported", name)
		}
		if f.values[name], err = t.Float32s(); err != nil {
			tb.Fatal(err)
		}
	}
	if f.data, err = dataset.Load(demoTest, dataset.Options{N: n}); err != nil {
		tb.Fatal(err)
	}
	if f.pairs, err = TailPairs(len(an.Layers), 3); err != nil {
		tb.Fatal(err)
	}
	est, err := estimators.New("edge", nil)
	if err != nil {
		tb.Fatal(err)
	}
	f.atk = &attacks.PGD{Epsilon: 0.1, Steps: 3, Seed: 5}
	f.o = RhoOptions{Estimator: est, PerClass: true, Seed: 5, Batch: 64, Engine: ort.Options{Threads: 2}}
	return f
}

// perturbed returns the fixture's values with every tail weight moved by
// Gaussian noise (1% of its scale) and the running variances scaled: a
// second, different model.
func (f *rhoMeterFixture) perturbed() finetune.Params {
	rng := rand.New(rand.NewPCG(11, 13))
	out := f.values.Clone()
	for _, name := range f.names {
		for i, v := range out[name] {
			out[name][i] = v + 0.01*float32(rng.NormFloat64())*(abs32(v)+0.01)
		}
	}
	return out
}

func abs32(v float32) float32 {
	if v < 0 {
		return -v
	}
	return v
}

// TestRhoMeterMatchesFreshModel: ρ measured through the meter's reused
// sessions, for two parameter sets in turn (and the first again), equals
// bit for bit ρ measured by RhosOnAttacked on a fresh copy of the model
// holding these values — attacked ρ data and clean.
func TestRhoMeterMatchesFreshModel(t *testing.T) {
	f := loadRhoMeterFixture(t, 200)
	ctx := context.Background()
	sets := []finetune.Params{f.values, f.perturbed(), f.values}
	for _, atk := range []attacks.Attack{f.atk, nil} {
		meter, err := NewRhoMeter(f.m, f.names, f.data, atk, f.pairs, f.o)
		if err != nil {
			t.Fatal(err)
		}
		var first []Pair
		for i, p := range sets {
			got, err := meter.Measure(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			m, err := WithParams(f.m, p)
			if err != nil {
				t.Fatal(err)
			}
			want, err := RhosOnAttacked(ctx, m, f.data, atk, f.pairs, f.o)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) || len(got) != len(f.pairs) {
				t.Fatalf("attack %v, set %d: %d pairs, want %d", atk, i, len(got), len(want))
			}
			for j := range got {
				g, w := got[j], want[j]
				if g.Value != w.Value || g.Parent != w.Parent || g.Child != w.Child || g.ParentDim != w.ParentDim || g.ChildDim != w.ChildDim ||
					g.Relation != w.Relation || !slices.Equal(g.Skipped, w.Skipped) {
					t.Errorf("attack %v, set %d, pair %d:%d: meter %+v, fresh model %+v", atk, i, w.Parent, w.Child, g, w)
				}
			}
			if i == 0 {
				first = got
			} else if i == 1 && first[len(first)-1].Value == got[len(got)-1].Value {
				t.Errorf("attack %v: the perturbed model gives the same ρ %v; the test would not see a stale parameter", atk, got[len(got)-1].Value)
			}
		}
		if err := meter.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkEpochRho times one epoch's ρ in the golden finetune's setting
// (300 samples attacked with PGD, 5 steps, 3 tail pairs, 2 threads):
// "fresh" as before the meter, a copy of the model with the epoch's values
// and its classifier and tapped session built for the epoch; "meter" a
// later epoch through a RhoMeter (built and used once before the timing);
// "meter-first" a run's first epoch, building the meter.
func BenchmarkEpochRho(b *testing.B) {
	f := loadRhoMeterFixture(b, 300)
	f.atk = &attacks.PGD{Epsilon: 0.1, Steps: 5, Seed: 5}
	ctx := context.Background()
	p := f.perturbed()
	b.Run("fresh", func(b *testing.B) {
		for b.Loop() {
			m, err := WithParams(f.m, p)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := RhosOnAttacked(ctx, m, f.data, f.atk, f.pairs, f.o); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("meter", func(b *testing.B) {
		meter, err := NewRhoMeter(f.m, f.names, f.data, f.atk, f.pairs, f.o)
		if err != nil {
			b.Fatal(err)
		}
		defer meter.Close()
		if _, err := meter.Measure(ctx, f.values); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := meter.Measure(ctx, p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("meter-first", func(b *testing.B) {
		for b.Loop() {
			meter, err := NewRhoMeter(f.m, f.names, f.data, f.atk, f.pairs, f.o)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := meter.Measure(ctx, p); err != nil {
				b.Fatal(err)
			}
			meter.Close()
		}
	})
}
