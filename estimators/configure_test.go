package estimators

import "testing"

func TestWithRun(t *testing.T) {
	for _, c := range []struct {
		name, options string
		keep          bool
		wantSeed      uint64
		wantUnits     string
	}{
		{"edge", "", false, 7, "nats"},
		{"edge", `{"Seed":3}`, true, 3, "nats"},
		{"edge", `{"Seed":3}`, false, 7, "nats"},
		{"ksg", "", false, 7, "nats"},
		{"gauss", "", false, 0, "nats"},
		{"cka", "", false, 7, "unitless"},
		{"corr", "", false, 0, "unitless"},
	} {
		est, err := New(c.name, []byte(c.options))
		if err != nil {
			t.Fatal(err)
		}
		got, units := WithRun(est, 7, Nats, c.keep)
		var seed uint64
		switch e := got.(type) {
		case EDGE:
			seed = e.Seed
		case KSG:
			seed = e.Seed
		case CKA:
			seed = e.Seed
		}
		if seed != c.wantSeed || units != c.wantUnits {
			t.Errorf("%s %s (keep %v): seed %d, units %q; want %d, %q", c.name, c.options, c.keep, seed, units, c.wantSeed, c.wantUnits)
		}
	}
}
