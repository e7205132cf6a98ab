package attacks

import (
	"context"

	"github.com/semirobust/srtool/internal/parallel"
)

// Parallel is implemented by models that can serve concurrent calls on
// independent workers, such as diffmodel.Classifier with two or more CPU threads
// (one single-threaded session per thread). Evaluate and
// AdversarialAccuracy then split every batch of the package's attacks into
// one part per worker and attack the parts concurrently. Every attack here
// draws its random numbers per sample (sampleRands) and treats samples
// independently, so the split changes no per-point result as long as the
// workers' outputs for a sample do not depend on the other samples of its
// batch; only the call counts (GradCalls, ForwardCalls) grow.
type Parallel interface {
	Model
	// Workers returns models that compute the receiver's function, one per
	// concurrent caller; fewer than two means no split.
	Workers() []Model
}

// splittable reports whether a's result for a sample does not depend on
// the other samples of its batch, so that runSplit may split the batch.
func splittable(a Attack) bool {
	switch a.(type) {
	case *FGSM, *PGD, *MIFGSM, *APGD, *APGDT, *FAB, *Square:
		return true
	}
	return false
}

// runSplit runs a on x (labels y) like a.Run(ctx, m, x, y), but when m has
// workers and a is splittable, on one contiguous part of the batch per
// worker, concurrently, and joins the parts' results in order.
func runSplit(ctx context.Context, a Attack, m Model, x []float32, y []int64) (*Result, error) {
	var ws []Model
	if p, ok := m.(Parallel); ok && splittable(a) {
		ws = p.Workers()
	}
	n := len(y)
	parts := min(len(ws), n)
	if parts < 2 {
		return a.Run(ctx, m, x, y)
	}
	d := len(x) / n
	res := make([]*Result, parts)
	err := parallel.Do(ctx, parts, parts, func(ctx context.Context, i int) error {
		lo, hi := parallel.Split(n, parts, i)
		r, err := a.Run(ctx, ws[i], x[lo*d:hi*d], y[lo:hi])
		res[i] = r
		return err
	})
	if err != nil {
		return nil, err
	}
	out := &Result{Adv: make([]float32, 0, len(x)), Pred: make([]int64, 0, n), Success: make([]bool, 0, n), Dist: make([]float32, 0, n)}
	for _, r := range res {
		out.Adv = append(out.Adv, r.Adv...)
		out.Pred = append(out.Pred, r.Pred...)
		out.Success = append(out.Success, r.Success...)
		out.Dist = append(out.Dist, r.Dist...)
		out.Counts.Add(r.Counts)
		out.ZeroGrad += r.ZeroGrad
	}
	return out, nil
}
