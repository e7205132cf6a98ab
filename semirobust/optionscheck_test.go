package semirobust

import (
	"errors"
	"testing"

	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/finetune"
)

func TestOptionsValidate(t *testing.T) {
	ok := Options{RhoN: 1000, Finetune: finetune.Options{Trials: 1}, FeatureCacheMiB: 2048}
	if err := ok.Validate(); err != nil {
		t.Fatalf("Validate(defaults) = %v", err)
	}
	for _, tc := range []struct {
		edit func(*Options)
		want string
	}{
		{func(o *Options) { o.FeatureCacheMiB = -1 }, "--feature-cache-mb must not be negative"},
		{func(o *Options) { o.Finetune.Trials = 0 }, "--trials 0: must be at least 1"},
		{func(o *Options) { o.Finetune.Tolerance = -2 }, "--tolerance -2: must not be negative"},
		{func(o *Options) { o.RhoN = 0 }, "--rho-n 0: must be at least 1"},
		{func(o *Options) { o.Permutations = -1 }, "--permutations -1: must not be negative"},
		{func(o *Options) { o.ReferenceAdvTraining = true }, "--reference-adv-training needs --cost"},
		{func(o *Options) { o.ReferenceAdvTraining, o.Cost, o.Sharded = true, true, true }, "--reference-adv-training does not run with --shard (run it unsharded)"},
		{func(o *Options) { o.ReferenceAdvTraining, o.Cost = true, true }, "--reference-adv-training needs --adv pgd (full adversarial training)"},
	} {
		o := ok
		tc.edit(&o)
		if err := o.Validate(); err == nil || err.Error() != tc.want || !errors.Is(err, ErrOption) {
			t.Errorf("Validate = %v; want %q wrapping ErrOption", err, tc.want)
		}
	}
	o := ok
	o.ReferenceAdvTraining, o.Cost, o.Adv = true, true, &attacks.PGD{}
	if err := o.Validate(); err != nil {
		t.Errorf("Validate(reference adversarial training with --cost and --adv pgd) = %v", err)
	}
}

func TestParseTarget(t *testing.T) {
	if v, auto, err := ParseTarget("AUTO"); v != 0 || !auto || err != nil {
		t.Errorf("ParseTarget(AUTO) = %v, %v, %v", v, auto, err)
	}
	if v, auto, err := ParseTarget("85.5"); v != 85.5 || auto || err != nil {
		t.Errorf("ParseTarget(85.5) = %v, %v, %v", v, auto, err)
	}
	for _, s := range []string{"101", "-1", "x"} {
		if _, _, err := ParseTarget(s); err == nil || err.Error() != `--target "`+s+`": want auto or a percentage` || !errors.Is(err, ErrOption) {
			t.Errorf("ParseTarget(%q) = %v", s, err)
		}
	}
}
