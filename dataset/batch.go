package dataset

import (
	"iter"
	"math/rand/v2"
)

// BatchOptions control the order and augmentation of Batches. The zero
// value gives the samples in order, unaugmented, with a short last batch.
type BatchOptions struct {
	// Shuffle visits the samples in a random order.
	Shuffle bool `json:"shuffle,omitempty"`
	// Seed and Epoch seed every random choice (order and augmentation):
	// the same pair gives the same batches, so a run resumed at epoch e
	// sees what it would have seen.
	Seed  uint64 `json:"seed"`
	Epoch int    `json:"epoch,omitempty"`
	// DropLast leaves out a last batch smaller than the batch size.
	DropLast bool `json:"drop_last,omitempty"`
	// Augment is applied to every sample of every batch.
	Augment Augment `json:"augment"`
}

// Augment is the standard CIFAR training augmentation. The zero value
// changes nothing.
type Augment struct {
	// Pad > 0 crops a random H×W window out of the image padded with Pad
	// zero pixels on every side (torchvision's RandomCrop(size, padding=Pad)).
	Pad int `json:"pad,omitempty"`
	// Flip mirrors the image left to right with probability 1/2
	// (torchvision's RandomHorizontalFlip).
	Flip bool `json:"flip,omitempty"`
}

// Batch is one batch of samples. X and Y are fresh copies the caller owns.
type Batch struct {
	X     []float32 // Len()×C×H×W
	Y     []int64
	Index []int // position of each sample in the Dataset
}

// Len returns the number of samples in the batch.
func (b Batch) Len() int { return len(b.Y) }

// rng returns the generator for opt's seed and epoch.
func (opt BatchOptions) rng() *rand.Rand {
	return rand.New(rand.NewPCG(opt.Seed, uint64(opt.Epoch)))
}

// NumBatches returns how many batches Batches(size, …) yields.
func (d *Dataset) NumBatches(size int, dropLast bool) int {
	if size <= 0 {
		size = d.Len()
	}
	if size == 0 {
		return 0
	}
	if dropLast {
		return d.Len() / size
	}
	return (d.Len() + size - 1) / size
}

// Batches iterates over one epoch of d in batches of size samples (size ≤ 0
// means one batch of every sample), yielding each batch with its number
// from 0. The samples come in order, or shuffled by opt's seed and epoch,
// and each batch is augmented as opt says; d is not changed.
func (d *Dataset) Batches(size int, opt BatchOptions) iter.Seq2[int, Batch] {
	return func(yield func(int, Batch) bool) {
		n := d.Len()
		if size <= 0 {
			size = n
		}
		rng := opt.rng()
		order := make([]int, n)
		for i := range order {
			order[i] = i
		}
		if opt.Shuffle {
			rng.Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
		}
		dim := d.Dim()
		for k := 0; k*size < n; k++ {
			idx := order[k*size : min((k+1)*size, n)]
			if opt.DropLast && len(idx) < size {
				return
			}
			b := Batch{X: make([]float32, len(idx)*dim), Y: make([]int64, len(idx)), Index: append([]int(nil), idx...)}
			for j, i := range idx {
				copy(b.X[j*dim:(j+1)*dim], d.X[i*dim:(i+1)*dim])
				b.Y[j] = d.Y[i]
			}
			opt.Augment.Apply(b.X, d.C, d.H, d.W, rng)
			if !yield(k, b) {
				return
			}
		}
	}
}

// Apply augments, in place, every whole C×H×W image in x, drawing from
// rng: for each image first the crop offset (row, then column) when Pad > 0,
// then whether to flip when Flip is set.
func (a Augment) Apply(x []float32, c, h, w int, rng *rand.Rand) {
	if a.Pad <= 0 && !a.Flip || c <= 0 || h <= 0 || w <= 0 {
		return
	}
	hw := h * w
	tmp := make([]float32, c*hw)
	for s := 0; (s+1)*c*hw <= len(x); s++ {
		img := x[s*c*hw : (s+1)*c*hw]
		dy, dx := 0, 0
		if a.Pad > 0 {
			dy = rng.IntN(2*a.Pad+1) - a.Pad
			dx = rng.IntN(2*a.Pad+1) - a.Pad
		}
		flip := a.Flip && rng.IntN(2) == 1
		if dy == 0 && dx == 0 && !flip {
			continue
		}
		// out(y, x) = in(y+dy, x'+dx) with x' = x, or w-1-x when flipped
		// (crop, then flip); pixels from outside the image are zero.
		for ch := range c {
			plane, out := img[ch*hw:(ch+1)*hw], tmp[ch*hw:(ch+1)*hw]
			for y := range h {
				sy := y + dy
				for xx := range w {
					sx := xx
					if flip {
						sx = w - 1 - xx
					}
					sx += dx
					if sy < 0 || sy >= h || sx < 0 || sx >= w {
						out[y*w+xx] = 0
					} else {
						out[y*w+xx] = plane[sy*w+sx]
					}
				}
			}
		}
		copy(img, tmp)
	}
}
