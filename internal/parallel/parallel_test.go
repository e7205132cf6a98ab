package parallel

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

func TestFor(t *testing.T) {
	for _, c := range []struct{ n, workers int }{{0, 4}, {1, 4}, {7, 1}, {100, 3}, {100, 0}, {5, 50}} {
		hits := make([]atomic.Int32, c.n)
		For(c.n, c.workers, func(i int) { hits[i].Add(1) })
		for i := range hits {
			if got := hits[i].Load(); got != 1 {
				t.Errorf("For(%d, %d): index %d ran %d times; want 1", c.n, c.workers, i, got)
			}
		}
	}
	// One worker runs in index order on the caller's goroutine.
	var order []int
	For(5, 1, func(i int) { order = append(order, i) })
	for i, v := range order {
		if v != i {
			t.Fatalf("For(5, 1) ran %v; want 0..4 in order", order)
		}
	}
}

func TestDo(t *testing.T) {
	var ran atomic.Int32
	if err := Do(context.Background(), 50, 3, func(_ context.Context, i int) error {
		ran.Add(1)
		return nil
	}); err != nil || ran.Load() != 50 {
		t.Errorf("Do: %d calls, error %v; want 50, nil", ran.Load(), err)
	}
	// The first error wins, stops new indices and cancels the others' ctx.
	boom := errors.New("boom")
	ran.Store(0)
	err := Do(context.Background(), 1000, 2, func(ctx context.Context, i int) error {
		ran.Add(1)
		if i == 3 {
			return boom
		}
		if i == 2 {
			<-ctx.Done() // released by the failure of index 3
			return ctx.Err()
		}
		return nil
	})
	if !errors.Is(err, boom) || ran.Load() >= 1000 {
		t.Errorf("Do with a failing index: %d calls, error %v; want boom and fewer than 1000 calls", ran.Load(), err)
	}
	// A cancelled context starts nothing and reports the cancellation.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran.Store(0)
	if err := Do(ctx, 10, 2, func(context.Context, int) error { ran.Add(1); return nil }); !errors.Is(err, context.Canceled) || ran.Load() != 0 {
		t.Errorf("Do with a cancelled context: %d calls, error %v; want 0, context.Canceled", ran.Load(), err)
	}
}

func TestSplit(t *testing.T) {
	for _, c := range []struct{ n, parts int }{{10, 3}, {5, 5}, {3, 7}, {64, 64}, {1000, 64}} {
		next := 0
		for i := range c.parts {
			lo, hi := Split(c.n, c.parts, i)
			if lo != next || hi < lo || hi-lo > c.n/c.parts+1 {
				t.Fatalf("Split(%d, %d, %d) = [%d, %d); want a contiguous part from %d", c.n, c.parts, i, lo, hi, next)
			}
			next = hi
		}
		if next != c.n {
			t.Errorf("Split(%d, %d, ·) covers [0, %d); want [0, %d)", c.n, c.parts, next, c.n)
		}
	}
}
