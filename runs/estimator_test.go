package runs

import (
	"errors"
	"testing"

	"github.com/semirobust/srtool/estimators"
	"github.com/semirobust/srtool/internal/option"
)

func TestEstimatorSpecNew(t *testing.T) {
	est, units, err := EstimatorSpec{Name: "ksg", Seed: 7, Nats: true, Permutations: 2}.New()
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := est.(estimators.KSG); !ok || k.Seed != 7 || k.Units != estimators.Nats || units != "nats" {
		t.Errorf("New() = %+v, %q; want KSG seeded 7 in nats", est, units)
	}
	for _, tc := range []struct {
		spec EstimatorSpec
		want string
	}{
		{EstimatorSpec{Name: "edge", Permutations: 1}, "--permutations 1: want 0 (none) or 2 to "},
		{EstimatorSpec{Name: "edge", Bootstrap: -1}, "--bootstrap -1: want 0 (none) or 2 to "},
		{EstimatorSpec{Name: "edge", Options: "{"}, "--options: "},
	} {
		_, _, err := tc.spec.New()
		if err == nil || len(err.Error()) < len(tc.want) || err.Error()[:len(tc.want)] != tc.want || !errors.Is(err, option.Err) {
			t.Errorf("New(%+v) = %v; want an error starting %q wrapping option.Err", tc.spec, err, tc.want)
		}
	}
}
