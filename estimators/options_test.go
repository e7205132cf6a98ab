package estimators

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Issue 12: estimator options and counts were not range-checked where
// they were decoded; L = 10^9 or K = 2^31 − 1 passed New and made the
// estimate run (or allocate) without end. Each bad value is now one error
// from New naming the option.
func TestNewRejectsOutOfRangeOptions(t *testing.T) {
	cases := []struct {
		name, options, want string
	}{
		{"edge", `{"L":-1}`, "L = -1"},
		{"edge", `{"L":1000000000}`, "L = 1000000000"},
		{"edge", `{"U":-3}`, "U = -3"},
		{"edge", `{"Gamma":[-1,1]}`, "Gamma"},
		{"edge", `{"Epsilon":[1,0]}`, "Epsilon"},
		{"edge", `{"Epsilon":[0,2]}`, "Epsilon"},
		{"edge", `{"EpsRangeFactor":-2}`, "EpsRangeFactor"},
		{"edge", `{"Hashing":"lsh"}`, "hashing"},
		{"edge", `{"Units":"decibels"}`, "units"},
		{"edge", `{"L":2,"Bogus":1}`, "Bogus"},
		{"edge", `{"L":2} {"L":3}`, "after the JSON object"},
		{"edge", `{"L":1e30}`, "L"},
		{"edge", `[1]`, "edge options"},
		{"ksg", `{"K":-5}`, "K = -5"},
		{"ksg", `{"K":2147483647}`, "K = 2147483647"},
		{"gauss", `{"Shrinkage":2}`, "Shrinkage = 2"},
		{"cka", `{"Kernel":"poly"}`, "Kernel"},
		{"cka", `{"Sigma":-1}`, "Sigma = -1"},
		{"hsic", `{"Sigma":-0.5}`, "Sigma"},
		{"nocco", `{"Epsilon":-1}`, "Epsilon = -1"},
		{"nocco", `{"Sigma":-1}`, "Sigma = -1"},
		{"corr", `{"K":3}`, "K"},
	}
	for _, c := range cases {
		_, err := New(c.name, []byte(c.options))
		if err == nil || !errors.Is(err, ErrOption) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("New(%s, %s) = %v; want one line wrapping ErrOption and containing %q", c.name, c.options, err, c.want)
		}
	}
	for name, options := range map[string]string{
		"edge": `{"L":10,"U":5,"Gamma":[0.5,2],"Epsilon":[0.1,0.2],"RNG":"reference","Deterministic":true}`,
		"ksg":  `{"K":3,"Jitter":-1}`, "gauss": `{"Shrinkage":0.5}`, "cka": `{"Kernel":"rbf","Sigma":2}`,
		"hsic": `{"Kernel":"linear"}`, "nocco": `{"Epsilon":0.001}`, "corr": `{}`,
	} {
		if _, err := New(name, []byte(options)); err != nil {
			t.Errorf("New(%s, %s): %v", name, options, err)
		}
	}
}

// Repetition counts beyond MaxReps (10^9 permutations would allocate 8 GB
// of results and run for ever) are refused before any work.
func TestRepetitionLimits(t *testing.T) {
	x, y, _ := pairsGauss(40, 2, 2, 1, 0.5, 1)
	done := make(chan [2]error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, e1 := PermutationNull(ctx, Gaussian{}, x, y, nil, NullOptions{P: 1e9})
		_, e2 := BootstrapCI(ctx, Gaussian{}, x, y, nil, BootstrapOptions{B: 1e9})
		done <- [2]error{e1, e2}
	}()
	select {
	case errs := <-done:
		for i, err := range errs {
			if !errors.Is(err, ErrOption) {
				t.Errorf("%s with 10^9 repetitions: err = %v; want ErrOption", []string{"PermutationNull", "BootstrapCI"}[i], err)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("10^9 repetitions were not refused at once")
	}
	if _, err := PermutationNull(context.Background(), KSG{K: -2}, x, y, nil, NullOptions{P: 3}); !errors.Is(err, ErrOption) {
		t.Errorf("PermutationNull with KSG{K: -2}: err = %v; want ErrOption", err)
	}
}

// FuzzNewOptions decodes fuzzed --options JSON for every estimator: New
// must accept only options Validate accepts, what it accepts must survive
// a JSON round trip, and estimating on a small sample must return a value
// or an error, never panic. The seed corpus (testdata/fuzz/FuzzNewOptions)
// holds valid and out-of-range options of each estimator.
func FuzzNewOptions(f *testing.F) {
	x, y, _ := pairsGauss(30, 2, 2, 1, 0.5, 1)
	f.Fuzz(func(t *testing.T, name string, options []byte) {
		est, err := New(name, options)
		if err != nil {
			if !errors.Is(err, ErrOption) {
				t.Fatalf("New(%q, %q) = %v; want an error wrapping ErrOption", name, options, err)
			}
			return
		}
		if err := Validate(est); err != nil {
			t.Fatalf("New accepted options that Validate refuses: %v", err)
		}
		b, err := json.Marshal(est)
		if err != nil {
			t.Fatalf("accepted options do not marshal: %v", err)
		}
		back, err := New(name, b)
		if err != nil || !reflect.DeepEqual(back, est) {
			t.Fatalf("round trip of %s: %+v, %v; want %+v", b, back, err, est)
		}
		est.Estimate(x, y)
	})
}
