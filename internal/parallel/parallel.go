// Package parallel runs independent pieces of work on a bounded number of
// goroutines: the one worker pool behind srtool's fan-outs (optimizer
// updates, attack batches, bootstrap resamples, estimator chunks).
//
// The pool decides only which goroutine runs which index, never how the
// work is divided: callers that combine floating-point partial results fix
// the partition themselves (Split), so the bits of a result do not depend
// on the number of CPUs.
package parallel

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
)

// Workers returns the number of goroutines For and Do use when asked for
// workers ≤ 0: GOMAXPROCS.
func Workers() int { return runtime.GOMAXPROCS(0) }

// For calls f(i) for every i in [0, n), on at most workers goroutines
// (Workers() when workers ≤ 0) that take indices in increasing order as
// they become free. With one worker, or n ≤ 1, it calls f in index order on
// the calling goroutine. It returns when every call has returned. f must
// only write state owned by its index.
func For(n, workers int, f func(i int)) {
	w := poolSize(n, workers)
	if w <= 1 {
		for i := range n {
			f(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range w {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(i)
			}
		})
	}
	wg.Wait()
}

// Do is For for work that can fail or be cancelled: it calls f(ctx, i) for
// i in [0, n) on at most workers goroutines (Workers() when workers ≤ 0)
// and returns the first error (in time) that a call returned, or nil. After
// an error, and once ctx is done, no further index starts (an index that
// would start once ctx is done counts as failing with ctx.Err()); the ctx
// given to f is cancelled at the first error, so calls running at that
// moment can stop early. Do returns when every started call has returned.
func Do(ctx context.Context, n, workers int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next  atomic.Int64
		mu    sync.Mutex
		first error // the first failure; later ones may only report the cancellation it caused
		wg    sync.WaitGroup
	)
	stopped := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return first != nil
	}
	for range poolSize(n, workers) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || stopped() {
					return
				}
				err := ctx.Err()
				if err == nil {
					err = f(ctx, i)
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// Split returns the bounds [lo, hi) of part i when [0, n) is cut into parts
// contiguous parts of sizes differing by at most one (the larger ones
// last).
func Split(n, parts, i int) (lo, hi int) {
	return i * n / parts, (i + 1) * n / parts
}

func poolSize(n, workers int) int {
	if workers <= 0 {
		workers = Workers()
	}
	return max(0, min(workers, n))
}
