package semirobust

import (
	"strings"

	"github.com/semirobust/srtool/internal/number"
)

// Validate checks o's settings before anything is read or trained:
// FeatureCacheMiB ≥ 0, Finetune's Trials and Tolerance (CheckTrials),
// RhoN ≥ 1, Permutations ≥ 0, and ReferenceAdvTraining's needs (Cost, an
// unsharded run, Adv). Errors wrap ErrOption and name semirobust's flags.
func (o Options) Validate() error {
	if o.FeatureCacheMiB < 0 {
		return optionf("--feature-cache-mb must not be negative")
	}
	if err := CheckTrials(o.Finetune.Trials, o.Finetune.Tolerance); err != nil {
		return err
	}
	switch {
	case o.RhoN < 1:
		return optionf("--rho-n %d: must be at least 1", o.RhoN)
	case o.Permutations < 0:
		return optionf("--permutations %d: must not be negative", o.Permutations)
	case o.ReferenceAdvTraining && !o.Cost:
		return optionf("--reference-adv-training needs --cost")
	case o.ReferenceAdvTraining && o.Sharded:
		return optionf("--reference-adv-training does not run with --shard (run it unsharded)")
	case o.ReferenceAdvTraining && o.Adv == nil:
		return optionf("--reference-adv-training needs --adv pgd (full adversarial training)")
	}
	return nil
}

// ParseTarget reads finetune's stopping target: "auto" (any case) for
// Acc*, the robust model's accuracy, or a percentage in [0, 100]. The
// error wraps ErrOption.
func ParseTarget(s string) (target float64, auto bool, err error) {
	if strings.EqualFold(s, "auto") {
		return 0, true, nil
	}
	if target, err = number.Parse(s); err != nil || target < 0 || target > 100 {
		return 0, false, optionf("--target %q: want auto or a percentage", s)
	}
	return target, false, nil
}
