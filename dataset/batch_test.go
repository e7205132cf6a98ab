package dataset

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// numbered returns n samples of c×h×w whose pixel values are unique and
// positive (sample s, pixel j: s*1000 + j + 1) and label s%3.
func numbered(n, c, h, w int) *Dataset {
	d := &Dataset{C: c, H: h, W: w, Classes: 3, Name: "numbered"}
	for s := range n {
		for j := range c * h * w {
			d.X = append(d.X, float32(s*1000+j+1))
		}
		d.Y = append(d.Y, int64(s%3))
	}
	return d
}

func collect(d *Dataset, size int, opt BatchOptions) (idx []int, sizes []int, batches []Batch) {
	for k, b := range d.Batches(size, opt) {
		if k != len(batches) {
			panic("batch numbers out of order")
		}
		idx = append(idx, b.Index...)
		sizes = append(sizes, b.Len())
		batches = append(batches, b)
	}
	return
}

func TestBatchesOrder(t *testing.T) {
	d := numbered(10, 1, 2, 2)
	orig := slices.Clone(d.X)
	cases := []struct {
		name   string
		size   int
		opt    BatchOptions
		sizes  []int
		inSeq  bool
		nBatch int
	}{
		{"in order", 4, BatchOptions{}, []int{4, 4, 2}, true, 3},
		{"drop last", 4, BatchOptions{DropLast: true}, []int{4, 4}, true, 2},
		{"one batch", 0, BatchOptions{}, []int{10}, true, 1},
		{"larger than the set", 64, BatchOptions{DropLast: true}, nil, true, 0},
		{"shuffled", 3, BatchOptions{Shuffle: true, Seed: 1}, []int{3, 3, 3, 1}, false, 4},
	}
	for _, c := range cases {
		idx, sizes, batches := collect(d, c.size, c.opt)
		if !slices.Equal(sizes, c.sizes) || d.NumBatches(c.size, c.opt.DropLast) != c.nBatch {
			t.Errorf("%s: batch sizes %v, NumBatches %d; want %v, %d", c.name, sizes, d.NumBatches(c.size, c.opt.DropLast), c.sizes, c.nBatch)
		}
		if sorted := slices.Sorted(slices.Values(idx)); c.sizes != nil && len(idx) == 10 && !slices.Equal(sorted, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
			t.Errorf("%s: indices %v are not a permutation", c.name, idx)
		}
		if slices.IsSorted(idx) != c.inSeq {
			t.Errorf("%s: indices %v; in order = %v, want %v", c.name, idx, slices.IsSorted(idx), c.inSeq)
		}
		for _, b := range batches {
			for j, i := range b.Index {
				x, y := d.Sample(i)
				if !slices.Equal(b.X[j*4:(j+1)*4], x) || b.Y[j] != y {
					t.Fatalf("%s: batch sample %d is not dataset sample %d", c.name, j, i)
				}
			}
			b.X[0] = -1 // the caller owns the batch
		}
	}
	if !slices.Equal(d.X, orig) {
		t.Error("Batches changed the dataset")
	}
}

func TestBatchesSeeded(t *testing.T) {
	d := numbered(50, 1, 1, 1)
	opt := BatchOptions{Shuffle: true, Seed: 7, Epoch: 3}
	a, _, _ := collect(d, 8, opt)
	b, _, _ := collect(d, 8, opt)
	if !slices.Equal(a, b) {
		t.Errorf("same seed and epoch gave orders %v and %v", a, b)
	}
	opt.Epoch = 4
	if c, _, _ := collect(d, 8, opt); slices.Equal(a, c) {
		t.Error("epochs 3 and 4 gave the same order")
	}
	opt.Epoch, opt.Seed = 3, 8
	if c, _, _ := collect(d, 8, opt); slices.Equal(a, c) {
		t.Error("seeds 7 and 8 gave the same order")
	}
	// Stopping early is allowed.
	n := 0
	for range d.Batches(8, opt) {
		n++
		break
	}
	if n != 1 {
		t.Errorf("break after one batch ran %d", n)
	}
}

func TestAugmentCrop(t *testing.T) {
	const c, h, w, pad = 2, 5, 4, 2
	d := numbered(200, c, h, w)
	shifts := map[[3]int]int{}
	_, _, batches := collect(d, 50, BatchOptions{Seed: 1, Augment: Augment{Pad: pad, Flip: true}})
	for _, b := range batches {
		for j, i := range b.Index {
			src, _ := d.Sample(i)
			got := b.X[j*c*h*w : (j+1)*c*h*w]
			// Find the shift and flip that explain got.
			found := false
			for dy := -pad; dy <= pad && !found; dy++ {
				for dx := -pad; dx <= pad && !found; dx++ {
					for _, flip := range []bool{false, true} {
						if slices.Equal(got, shifted(src, c, h, w, dy, dx, flip)) {
							shifts[[3]int{dy, dx, b2i(flip)}]++
							found = true
							break
						}
					}
				}
			}
			if !found {
				t.Fatalf("augmented sample %d is no crop of padding %d, flipped or not:\n%v\nfrom\n%v", i, pad, got, src)
			}
		}
	}
	// 200 samples over 50 outcomes: most outcomes occur (a broken
	// generator that always picks one would leave almost all out).
	if len(shifts) < 35 {
		t.Errorf("only %d of 50 crop/flip outcomes occurred in 200 samples", len(shifts))
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// shifted is the reference: out(y, x) = in(y+dy, x'+dx), x' = x or w-1-x.
func shifted(src []float32, c, h, w, dy, dx int, flip bool) []float32 {
	out := make([]float32, len(src))
	for ch := range c {
		for y := range h {
			for x := range w {
				sx := x
				if flip {
					sx = w - 1 - x
				}
				sy, sx := y+dy, sx+dx
				if sy >= 0 && sy < h && sx >= 0 && sx < w {
					out[ch*h*w+y*w+x] = src[ch*h*w+sy*w+sx]
				}
			}
		}
	}
	return out
}

func TestAugmentFlipOnly(t *testing.T) {
	d := numbered(100, 3, 2, 3)
	rng := rand.New(rand.NewPCG(1, 2))
	x := slices.Clone(d.X)
	Augment{Flip: true}.Apply(x, 3, 2, 3, rng)
	flipped := 0
	for i := range 100 {
		src, _ := d.Sample(i)
		got := x[i*18 : (i+1)*18]
		switch {
		case slices.Equal(got, src):
		case slices.Equal(got, shifted(src, 3, 2, 3, 0, 0, true)):
			flipped++
		default:
			t.Fatalf("sample %d is neither itself nor its mirror image", i)
		}
	}
	if flipped < 30 || flipped > 70 {
		t.Errorf("%d of 100 samples flipped; want about 50", flipped)
	}
	// The zero value changes nothing and draws nothing.
	before := rng.Uint64()
	rng2 := rand.New(rand.NewPCG(1, 2))
	Augment{Flip: true}.Apply(slices.Clone(d.X), 3, 2, 3, rng2)
	y := slices.Clone(d.X)
	Augment{}.Apply(y, 3, 2, 3, rng2)
	if !slices.Equal(y, d.X) || rng2.Uint64() != before {
		t.Error("Augment{} changed the images or drew random numbers")
	}
}
