package estimators

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
)

// edgeHasher groups rows by their exact integer bucket vectors (the
// reference's H1 with tuple keys, no lossy hashing) using open addressing
// over the rows' keys, then counts joint buckets. Buffers are reused
// between calls.
type edgeHasher struct {
	n      int
	keys   []int64 // n×dp bucket indices of one side
	table  []int32 // open-addressing slots: representative row + 1, 0 = empty
	ids    [2][]int32
	counts [2][]int32
	jkeys  []uint64 // joint table keys
	jslot  []int32  // joint table: joint id + 1
	jfirst []uint64 // (x id, y id) of each joint id, in first-occurrence order
	jcount []int32
}

func newEdgeHasher(n int) *edgeHasher {
	size := 1 << bits.Len(uint(2*n))
	return &edgeHasher{
		n:     n,
		table: make([]int32, size),
		ids:   [2][]int32{make([]int32, n), make([]int32, n)},
		jkeys: make([]uint64, size),
		jslot: make([]int32, size),
	}
}

func mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// group assigns each row the id of its bucket vector ⌊(v_c + b_c)/ε_c⌋ (ids
// in order of first occurrence) and returns the bucket sizes.
func (h *edgeHasher) group(side int, cols [][]float64, eps, b []float64) ([]int32, []int32, error) {
	n, dp := h.n, len(cols)
	if cap(h.keys) < n*dp {
		h.keys = make([]int64, n*dp)
	}
	keys := h.keys[:n*dp]
	for c, col := range cols {
		e, bc := eps[c], b[c]
		for i, v := range col {
			f := math.Floor(1.0 * (v + bc) / e)
			if !(f >= -(1<<62) && f <= 1<<62) {
				return nil, nil, fmt.Errorf("edge: bucket index %v of column %d overflows (bandwidth %g): %w", f, c, e, ErrOption)
			}
			keys[i*dp+c] = int64(f)
		}
	}
	clear(h.table)
	mask := uint64(len(h.table) - 1)
	ids := h.ids[side]
	counts := h.counts[side][:0]
	// The table stores row+1 of a representative row; its id is ids[row].
	for i := 0; i < n; i++ {
		k := keys[i*dp : (i+1)*dp]
		var hv uint64 = 0x2545f4914f6cdd1d
		for _, v := range k {
			hv = mix64(hv ^ uint64(v))
		}
		s := hv & mask
		for {
			r := h.table[s]
			if r == 0 {
				h.table[s] = int32(i + 1)
				ids[i] = int32(len(counts))
				counts = append(counts, 1)
				break
			}
			if slices.Equal(keys[int(r-1)*dp:int(r)*dp], k) {
				id := ids[r-1]
				ids[i] = id
				counts[id]++
				break
			}
			s = (s + 1) & mask
		}
	}
	h.counts[side] = counts
	return ids, counts, nil
}

// mi is the reference's Compute_MI for one bandwidth/shift member: the
// joint buckets are visited in order of first occurrence (the reference's
// dict order) and each adds N_ij·clip(log₂(N_ij·N/(N_i·M_j)), 0.001, U).
func (h *edgeHasher) mi(xc, yc [][]float64, epsx, epsy, bx, by []float64, perm []int, U float64) (float64, error) {
	idx, cx, err := h.group(0, xc, epsx, bx)
	if err != nil {
		return 0, err
	}
	idy, cy, err := h.group(1, yc, epsy, by)
	if err != nil {
		return 0, err
	}
	clear(h.jslot)
	mask := uint64(len(h.jslot) - 1)
	h.jfirst, h.jcount = h.jfirst[:0], h.jcount[:0]
	for i := 0; i < h.n; i++ {
		j := i
		if perm != nil {
			j = perm[i]
		}
		key := uint64(idx[i])<<32 | uint64(idy[j])
		s := mix64(key) & mask
		for {
			id := h.jslot[s]
			if id == 0 {
				h.jslot[s] = int32(len(h.jfirst) + 1)
				h.jkeys[s] = key
				h.jfirst = append(h.jfirst, key)
				h.jcount = append(h.jcount, 1)
				break
			}
			if h.jkeys[s] == key {
				h.jcount[id-1]++
				break
			}
			s = (s + 1) & mask
		}
	}
	N := float64(h.n)
	ln2 := math.Log(2)
	I, Nc := 0.0, 0
	for e, key := range h.jfirst {
		nij := h.jcount[e]
		ni, mj := cx[key>>32], cy[uint32(key)]
		r := 1.0 * float64(nij) * N / float64(int64(ni)*int64(mj))
		I += float64(nij) * math.Max(math.Min(math.Log(r)/ln2, U), 0.001)
		Nc += int(nij)
	}
	return 1.0 * I / float64(Nc), nil
}
