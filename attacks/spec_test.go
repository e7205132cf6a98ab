package attacks

import (
	"errors"
	"strings"
	"testing"
)

func TestSpecParse(t *testing.T) {
	given := func(names ...string) map[string]bool {
		m := map[string]bool{}
		for _, n := range names {
			m[n] = true
		}
		return m
	}
	for _, tc := range []struct {
		name string
		spec Spec
		want Params // Spec not compared
		err  string // substring; "" = no error
	}{
		{"defaults", Spec{Eps: "8/255", Norm: "linf", Steps: 7}, Params{Eps: 8.0 / 255, Norm: LInf}, ""},
		{"given", Spec{Eps: "0.5", Norm: "l2", Alpha: "0.1", Steps: 3, Restarts: 2, Given: given("steps", "restarts")},
			Params{Eps: 0.5, Norm: L2, Alpha: 0.1, Steps: 3, Restarts: 2}, ""},
		{"norm", Spec{Eps: "1", Norm: "l3"}, Params{}, "--norm: unknown norm"},
		{"eps junk", Spec{Eps: "x"}, Params{}, `--eps: "x" is not a number`},
		{"eps zero", Spec{Eps: "0"}, Params{}, "--eps 0: ε must be greater than 0"},
		{"eps linf", Spec{Eps: "8"}, Params{}, "--eps 8 is above 1, the whole [0,1] pixel range (pass 8/255, not 8)"},
		{"eps l2 big", Spec{Eps: "8", Norm: "l2"}, Params{Eps: 8, Norm: L2}, ""},
		{"alpha", Spec{Eps: "1", Alpha: "-1"}, Params{}, `--alpha must be a positive number, got "-1"`},
		{"steps", Spec{Eps: "1", Given: given("steps")}, Params{}, "--steps 0: must be at least 1"},
		{"restarts", Spec{Eps: "1", Restarts: -1, Given: given("restarts")}, Params{}, "--restarts -1: must be at least 1"},
	} {
		p, err := tc.spec.Parse()
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrOption) {
				t.Errorf("%s: Parse() error %v; want one with %q wrapping ErrOption", tc.name, err, tc.err)
			}
			continue
		}
		p.Spec = Spec{}
		if err != nil || p.Eps != tc.want.Eps || p.Norm != tc.want.Norm || p.Alpha != tc.want.Alpha || p.Steps != tc.want.Steps || p.Restarts != tc.want.Restarts {
			t.Errorf("%s: Parse() = %+v, %v; want %+v", tc.name, p, err, tc.want)
		}
	}
}

func TestParamsCheckEps(t *testing.T) {
	for _, tc := range []struct {
		eps, norm string
		d         int
		err       string
	}{
		{"1", "linf", 4, ""},
		{"2", "l2", 4, ""},
		{"2.1", "l2", 4, "--eps 2.1 is above √4 = 2, the largest L2 distance between two inputs in [0,1]^4"},
		{"4", "l1", 4, ""},
		{"9/2", "l1", 4, "--eps 9/2 is above 4, the largest L1 distance between two inputs in [0,1]^4"},
	} {
		p, err := Spec{Eps: tc.eps, Norm: tc.norm}.Parse()
		if err != nil {
			t.Fatalf("Parse(%s, %s): %v", tc.eps, tc.norm, err)
		}
		err = p.CheckEps(tc.d)
		if (tc.err == "") != (err == nil) || (err != nil && (err.Error() != tc.err || !errors.Is(err, ErrOption))) {
			t.Errorf("CheckEps(%s %s, d=%d) = %v; want %q", tc.norm, tc.eps, tc.d, err, tc.err)
		}
	}
}

func TestBuild(t *testing.T) {
	list, err := Build("fgsm, pgd", Spec{Eps: "8/255", Alpha: "1/255", Steps: 5, Seed: 9, Given: map[string]bool{"steps": true, "alpha": true}})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("Build gave %d attacks; want 2", len(list))
	}
	pgd, ok := list[1].(*PGD)
	if !ok || pgd.Steps != 5 || pgd.StepSize != 1.0/255 || pgd.Seed != 9 || pgd.Epsilon != 8.0/255 {
		t.Errorf("Build's pgd = %+v; want Steps 5, StepSize 1/255, Seed 9, ε 8/255", list[1])
	}
	for _, tc := range []struct{ list, err string }{
		{"nope", "--attack nope: "},
		{" , ", "--attack names no attack; choose from fgsm, pgd"},
		{"fgsm", "--steps applies to none of --attack fgsm"},
	} {
		_, err := Build(tc.list, Spec{Eps: "8/255", Steps: 3, Given: map[string]bool{"steps": true}})
		if err == nil || !strings.HasPrefix(err.Error(), tc.err) || !errors.Is(err, ErrOption) {
			t.Errorf("Build(%q) error %v; want one starting %q wrapping ErrOption", tc.list, err, tc.err)
		}
	}
}
