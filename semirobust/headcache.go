package semirobust

import (
	"context"
	"fmt"
	"time"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
)

// HeadFeatures is a training set pushed through the frozen head once: the
// tail with its cut tensors packed into one input, and the packed features.
type HeadFeatures struct {
	Tail    *onnxio.Model    // the tail of the semirobust start model, one packed input
	Train   *dataset.Dataset // features [N, D] (C = D, H = W = 1) with the original labels
	MiB     float64          // size of Train.X
	Seconds float64          // time to compute them
}

// featureCacheEligible says whether clean fine-tuning of s can train the
// tail on cached head features: no adversarial examples (they depend on
// the tail), the head's BN in inference mode (so its output does not
// depend on the batch) and no augmentation (every epoch sees the same
// inputs). reason says why not.
func featureCacheEligible(r FinetuneJob) (ok bool, reason string) {
	switch {
	case r.FeatureCacheMiB <= 0:
		return false, "--feature-cache-mb 0"
	case r.Adv != nil || r.TRADES != nil:
		return false, "adversarial fine-tuning"
	case r.Setup.HeadBN != finetune.HeadBNEval:
		return false, "--head-bn " + string(r.Setup.HeadBN)
	case r.Options.Augment != (dataset.Augment{}):
		return false, "augmentation"
	}
	return true, ""
}

// CacheHeadFeatures runs the frozen head of s.Start over train once. It
// returns nil and a reason when the features would take more than
// limitBytes.
func CacheHeadFeatures(ctx context.Context, s *Setup, train *dataset.Dataset, eng ort.Options, batch int, limitBytes int64) (*HeadFeatures, string, error) {
	start := time.Now()
	an, err := analyzer.Analyze(s.Start)
	if err != nil {
		return nil, "", err
	}
	names := make([]string, len(s.Cut.Tensors))
	for i, t := range s.Cut.Tensors {
		names[i] = t.Name
	}
	cut, err := an.CutAt(names)
	if err != nil {
		return nil, "", err
	}
	head, tail, err := an.Split(cut)
	if err != nil {
		return nil, "", err
	}
	packed, parts, err := analyzer.PackInputs(tail, "srtool_head_features")
	if err != nil {
		return nil, err.Error(), nil // e.g. a cut tensor with a dynamic shape: run the head every step
	}
	var d int64
	for _, p := range parts {
		d += p.Size
	}
	n := train.Len()
	bytes := int64(n) * d * 4
	mib := float64(bytes) / (1 << 20)
	if bytes > limitBytes {
		return nil, fmt.Sprintf("%d samples × %d head features = %.1f MiB > the limit of %d bytes (--feature-cache-mb)", n, d, mib, limitBytes), nil
	}
	hb, err := head.Encode()
	if err != nil {
		return nil, "", err
	}
	hs, err := ort.NewSession(hb, eng)
	if err != nil {
		return nil, "", fmt.Errorf("head: %w", err)
	}
	defer hs.Close()
	inputs := hs.InputNames()
	if len(inputs) != 1 {
		return nil, fmt.Sprintf("the head takes %d inputs", len(inputs)), nil
	}
	for _, name := range names {
		if name == inputs[0] {
			return nil, "the tail reads the model's input itself", nil
		}
	}
	feats := make([]float32, int64(n)*d)
	err = ort.Stream(ctx, hs, inputs[0], names, train.X, []int{train.C, train.H, train.W}, batch, func(lo, hi int, out map[string]ort.Tensor) error {
		for _, p := range parts {
			v := out[p.Name].Float32
			if int64(len(v)) != int64(hi-lo)*p.Size {
				return fmt.Errorf("head output %s has %d values for %d samples of %d", p.Name, len(v), hi-lo, p.Size)
			}
			for i := lo; i < hi; i++ {
				k := int64(i - lo)
				copy(feats[int64(i)*d+p.Offset:int64(i)*d+p.Offset+p.Size], v[k*p.Size:(k+1)*p.Size])
			}
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("head features: %w", err)
	}
	return &HeadFeatures{
		Tail:    packed,
		Train:   &dataset.Dataset{X: feats, Y: train.Y, C: int(d), H: 1, W: 1, Classes: train.Classes, ClassNames: train.ClassNames, Name: "head features of " + train.Name},
		MiB:     mib,
		Seconds: time.Since(start).Seconds(),
	}, "", nil
}
