package estimators

import (
	"math"
	"slices"
)

// kdTree is a k-d tree under the max-norm (Chebyshev distance) used by KSG
// for exact k-th neighbour and strict range-count queries in low dimension.
type kdTree struct {
	d     int
	pts   []float64 // points in tree order, row-major
	idx   []int32   // original index of each point in tree order
	nodes []kdNode
}

type kdNode struct {
	lo, hi      int32 // point range [lo, hi) in tree order
	left, right int32 // children (-1 for a leaf)
	box         []float64
}

const kdLeaf = 12

// newKDTree builds a tree over the n points of dimension d in p (row-major).
func newKDTree(p []float64, n, d int) *kdTree {
	t := &kdTree{d: d, idx: make([]int32, n)}
	for i := range t.idx {
		t.idx[i] = int32(i)
	}
	t.build(p, 0, n)
	t.pts = make([]float64, n*d)
	for k, i := range t.idx {
		copy(t.pts[k*d:(k+1)*d], p[int(i)*d:int(i)*d+d])
	}
	return t
}

func (t *kdTree) build(p []float64, lo, hi int) int32 {
	d := t.d
	box := make([]float64, 2*d)
	for c := 0; c < d; c++ {
		box[2*c], box[2*c+1] = math.Inf(1), math.Inf(-1)
	}
	for _, i := range t.idx[lo:hi] {
		for c := 0; c < d; c++ {
			v := p[int(i)*d+c]
			box[2*c] = min(box[2*c], v)
			box[2*c+1] = max(box[2*c+1], v)
		}
	}
	id := int32(len(t.nodes))
	t.nodes = append(t.nodes, kdNode{lo: int32(lo), hi: int32(hi), left: -1, right: -1, box: box})
	if hi-lo <= kdLeaf {
		return id
	}
	split, spread := 0, -1.0
	for c := 0; c < d; c++ {
		if s := box[2*c+1] - box[2*c]; s > spread {
			split, spread = c, s
		}
	}
	if spread <= 0 {
		return id
	}
	mid := (lo + hi) / 2
	sub := t.idx[lo:hi]
	quickselect(sub, mid-lo, func(i int32) float64 { return p[int(i)*d+split] })
	l := t.build(p, lo, mid)
	r := t.build(p, mid, hi)
	t.nodes[id].left, t.nodes[id].right = l, r
	return id
}

// minDist is the max-norm distance from q to the node's box.
func (n *kdNode) minDist(q []float64) float64 {
	m := 0.0
	for c, v := range q {
		if d := n.box[2*c] - v; d > m {
			m = d
		} else if d := v - n.box[2*c+1]; d > m {
			m = d
		}
	}
	return m
}

// maxDist is the largest max-norm distance from q to a point of the box.
func (n *kdNode) maxDist(q []float64) float64 {
	m := 0.0
	for c, v := range q {
		m = max(m, v-n.box[2*c], n.box[2*c+1]-v)
	}
	return m
}

func chebyshev(a, b []float64) float64 {
	m := 0.0
	b = b[:len(a)]
	for c, v := range a {
		if d := math.Abs(v - b[c]); d > m {
			m = d
		}
	}
	return m
}

// chebyshevCapped returns the max-norm distance, or any value ≥ limit as
// soon as one coordinate reaches limit.
func chebyshevCapped(a, b []float64, limit float64) float64 {
	m := 0.0
	b = b[:len(a)]
	for c, v := range a {
		if d := math.Abs(v - b[c]); d > m {
			m = d
			if m >= limit {
				return m
			}
		}
	}
	return m
}

// kthDist returns the max-norm distance from point self (an original index)
// to its k-th nearest other point. heap is scratch of length k.
func (t *kdTree) kthDist(q []float64, self int32, k int, heap []float64) float64 {
	h := heap[:0]
	var walk func(id int32)
	walk = func(id int32) {
		n := &t.nodes[id]
		if len(h) == k && n.minDist(q) >= h[0] {
			return
		}
		if n.left < 0 {
			for p := n.lo; p < n.hi; p++ {
				if t.idx[p] == self {
					continue
				}
				dv := chebyshev(q, t.pts[int(p)*t.d:int(p+1)*t.d])
				if len(h) < k {
					h = append(h, dv)
					heapUp(h, len(h)-1)
				} else if dv < h[0] {
					h[0] = dv
					heapDown(h, 0)
				}
			}
			return
		}
		l, r := &t.nodes[n.left], &t.nodes[n.right]
		if l.minDist(q) <= r.minDist(q) {
			walk(n.left)
			walk(n.right)
		} else {
			walk(n.right)
			walk(n.left)
		}
	}
	walk(0)
	return h[0]
}

// countLess returns the number of points at max-norm distance < r from q
// (q itself included when it is a tree point).
func (t *kdTree) countLess(q []float64, r float64) int {
	var walk func(id int32) int
	walk = func(id int32) int {
		n := &t.nodes[id]
		if n.minDist(q) >= r {
			return 0
		}
		if n.maxDist(q) < r {
			return int(n.hi - n.lo)
		}
		if n.left < 0 {
			c := 0
			for p := n.lo; p < n.hi; p++ {
				if chebyshev(q, t.pts[int(p)*t.d:int(p+1)*t.d]) < r {
					c++
				}
			}
			return c
		}
		return walk(n.left) + walk(n.right)
	}
	return walk(0)
}

// max-heap helpers on a float slice.
func heapUp(h []float64, i int) {
	for i > 0 {
		p := (i - 1) / 2
		if h[p] >= h[i] {
			return
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func heapDown(h []float64, i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		if r := l + 1; r < len(h) && h[r] > h[l] {
			l = r
		}
		if h[i] >= h[l] {
			return
		}
		h[i], h[l] = h[l], h[i]
		i = l
	}
}

// countSorted returns #{v in s: |v − q| < r} for sorted s.
func countSorted(s []float64, q, r float64) int {
	lo, _ := slices.BinarySearchFunc(s, q, func(v, q float64) int {
		if q-v < r { // v > q − r
			return 1
		}
		return -1
	})
	hi, _ := slices.BinarySearchFunc(s, q, func(v, q float64) int {
		if v-q < r { // v < q + r
			return -1
		}
		return 1
	})
	return hi - lo
}
