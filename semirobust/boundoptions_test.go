package semirobust

import (
	"errors"
	"testing"

	"github.com/semirobust/srtool/hessian"
)

func TestBoundOptionsValidate(t *testing.T) {
	ok := BoundOptions{FbLayers: 3, Power: hessian.PowerOptions{Tol: 1e-4, MaxIter: 100}, FDStep: hessian.DefaultStep, FDLossChange: hessian.DefaultLossChange}
	if err := ok.Validate(); err != nil {
		t.Fatalf("Validate(%+v) = %v", ok, err)
	}
	for _, tc := range []struct {
		edit func(*BoundOptions)
		want string
	}{
		{func(o *BoundOptions) { o.At = 2 }, "give exactly one of --fb-layers K and --at A"},
		{func(o *BoundOptions) { o.FbLayers = 0 }, "give exactly one of --fb-layers K and --at A"},
		{func(o *BoundOptions) { o.FbLayers = -1 }, "--fb-layers and --at must be positive"},
		{func(o *BoundOptions) { o.Power.Tol = 0 }, "--tol must be a positive number, got 0"},
		{func(o *BoundOptions) { o.Power.MaxIter = 0 }, "--max-iter must be at least 1, got 0"},
		{func(o *BoundOptions) { o.FDStep = 1 }, "--fd-step must be in (0, 1), got 1"},
		{func(o *BoundOptions) { o.FDLossChange = -1 }, "--fd-loss-change must be a positive number, got -1"},
	} {
		o := ok
		tc.edit(&o)
		if err := o.Validate(); err == nil || err.Error() != tc.want || !errors.Is(err, ErrOption) {
			t.Errorf("Validate(%+v) = %v; want %q wrapping ErrOption", o, err, tc.want)
		}
	}
}
