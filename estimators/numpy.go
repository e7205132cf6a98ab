package estimators

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"runtime"
)

// This file rebuilds the pieces of numpy that EDGE's reference code relies
// on, so that RNG "reference" reproduces the authors' numbers: the legacy
// RandomState (MT19937 with init_genrand seeding, 53-bit doubles, the
// Marsaglia polar Gaussian with its cached second value, masked rejection
// for choice) and numpy's pairwise summation. See docs/edge.md §5.

// mt19937 is numpy's legacy RandomState generator.
type mt19937 struct {
	mt       [624]uint32
	pos      int
	hasGauss bool
	gauss    float64
}

// newMT19937 is numpy.random.seed(seed) for an integer seed (init_genrand);
// it also clears the cached Gaussian.
func newMT19937(seed uint32) *mt19937 {
	m := &mt19937{}
	m.mt[0] = seed
	for i := 1; i < 624; i++ {
		m.mt[i] = 1812433253*(m.mt[i-1]^(m.mt[i-1]>>30)) + uint32(i)
	}
	m.pos = 624
	return m
}

func (m *mt19937) generate() {
	const upper, lower, matrixA = 0x80000000, 0x7fffffff, 0x9908b0df
	var i int
	for i = 0; i < 624-397; i++ {
		y := (m.mt[i] & upper) | (m.mt[i+1] & lower)
		m.mt[i] = m.mt[i+397] ^ (y >> 1) ^ (-(y & 1) & matrixA)
	}
	for ; i < 623; i++ {
		y := (m.mt[i] & upper) | (m.mt[i+1] & lower)
		m.mt[i] = m.mt[i+397-624] ^ (y >> 1) ^ (-(y & 1) & matrixA)
	}
	y := (m.mt[623] & upper) | (m.mt[0] & lower)
	m.mt[623] = m.mt[396] ^ (y >> 1) ^ (-(y & 1) & matrixA)
	m.pos = 0
}

func (m *mt19937) uint32() uint32 {
	if m.pos >= 624 {
		m.generate()
	}
	y := m.mt[m.pos]
	m.pos++
	y ^= y >> 11
	y ^= (y << 7) & 0x9d2c5680
	y ^= (y << 15) & 0xefc60000
	y ^= y >> 18
	return y
}

// Float64 is numpy's legacy random_sample: (a·2²⁶ + b)/2⁵³.
func (m *mt19937) Float64() float64 {
	a := m.uint32() >> 5
	b := m.uint32() >> 6
	return (float64(a)*67108864.0 + float64(b)) / 9007199254740992.0
}

// NormFloat64 is numpy's legacy_gauss (polar method, caches f·x1).
func (m *mt19937) NormFloat64() float64 {
	if m.hasGauss {
		m.hasGauss = false
		g := m.gauss
		m.gauss = 0
		return g
	}
	var x1, x2, r2 float64
	for {
		x1 = 2*m.Float64() - 1
		x2 = 2*m.Float64() - 1
		r2 = x1*x1 + x2*x2
		if r2 < 1 && r2 != 0 {
			break
		}
	}
	f := math.Sqrt(-2 * math.Log(r2) / r2)
	m.gauss = f * x1
	m.hasGauss = true
	return f * x2
}

// IntN is numpy's legacy randint(0, n) for n ≤ 2³²: draw 32 bits, mask to
// the next power of two minus one, reject values ≥ n.
func (m *mt19937) IntN(n int) int {
	rng := uint32(n - 1)
	if rng == 0 {
		return 0
	}
	mask := uint32(1)<<(32-bits.LeadingZeros32(rng)) - 1
	for {
		v := m.uint32() & mask
		if v <= rng {
			return int(v)
		}
	}
}

// source is the random stream EDGE, KSG and the calibration helpers draw
// from: numpy's legacy generator in reference mode, math/rand/v2 otherwise.
type source interface {
	Float64() float64
	NormFloat64() float64
	IntN(n int) int
}

// newPCG returns a math/rand/v2 PCG stream for (seed, stream).
func newPCG(seed, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, stream^0x9e3779b97f4a7c15))
}

// pairwiseSum is numpy's pairwise summation of a strided float64 sequence
// (numpy/core/src/umath/loops_utils.h.src, PW_BLOCKSIZE 128), which is what
// np.sum, np.mean and np.std use on a contiguous reduction.
func pairwiseSum(a []float64, n, stride int) float64 {
	if n < 8 {
		res := 0.0
		for i := 0; i < n; i++ {
			res += a[i*stride]
		}
		return res
	}
	if n <= 128 {
		var r [8]float64
		for j := range r {
			r[j] = a[j*stride]
		}
		i := 8
		for ; i < n-n%8; i += 8 {
			for j := range r {
				r[j] += a[(i+j)*stride]
			}
		}
		res := ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
		for ; i < n; i++ {
			res += a[i*stride]
		}
		return res
	}
	n2 := n / 2
	n2 -= n2 % 8
	return pairwiseSum(a, n2, stride) + pairwiseSum(a[n2*stride:], n-n2, stride)
}

// colPairwise computes, for every column c, numpy's pairwise sum over rows
// of f(row)[c], visiting rows in order (cache friendly for row-major data).
// f writes the transformed row into buf and returns it.
type colPairwise struct {
	d    int
	f    func(i int, buf []float64) []float64
	buf  []float64
	acc  [8][]float64
	pool [][]float64
}

func newColPairwise(d int, f func(i int, buf []float64) []float64) *colPairwise {
	p := &colPairwise{d: d, f: f, buf: make([]float64, d)}
	for j := range p.acc {
		p.acc[j] = make([]float64, d)
	}
	return p
}

func (p *colPairwise) get() []float64 {
	if k := len(p.pool); k > 0 {
		s := p.pool[k-1]
		p.pool = p.pool[:k-1]
		return s
	}
	return make([]float64, p.d)
}

// sum returns the column sums over rows [a, a+n) in a fresh slice.
func (p *colPairwise) sum(a, n int) []float64 {
	out := p.get()
	if n < 8 {
		clear(out)
		for i := 0; i < n; i++ {
			for c, v := range p.f(a+i, p.buf) {
				out[c] += v
			}
		}
		return out
	}
	if n <= 128 {
		r := &p.acc
		for j := 0; j < 8; j++ {
			copy(r[j], p.f(a+j, p.buf))
		}
		i := 8
		for ; i < n-n%8; i += 8 {
			for j := 0; j < 8; j++ {
				rj := r[j]
				for c, v := range p.f(a+i+j, p.buf) {
					rj[c] += v
				}
			}
		}
		for c := range out {
			out[c] = ((r[0][c] + r[1][c]) + (r[2][c] + r[3][c])) + ((r[4][c] + r[5][c]) + (r[6][c] + r[7][c]))
		}
		for ; i < n; i++ {
			for c, v := range p.f(a+i, p.buf) {
				out[c] += v
			}
		}
		return out
	}
	n2 := n / 2
	n2 -= n2 % 8
	left := p.sum(a, n2)
	right := p.sum(a+n2, n-n2)
	for c := range left {
		left[c] += right[c]
	}
	p.pool = append(p.pool, right)
	return left
}

// pairwiseColsPar is colPairwise.sum(a, n) with the top depth levels of
// numpy's pairwise tree run on separate goroutines; the tree, and so the
// result, is the same.
func pairwiseColsPar(d int, f func(i int, buf []float64) []float64, a, n, depth int) []float64 {
	if depth <= 0 || n <= 128 {
		return newColPairwise(d, f).sum(a, n)
	}
	n2 := n / 2
	n2 -= n2 % 8
	var left []float64
	done := make(chan struct{})
	go func() {
		left = pairwiseColsPar(d, f, a, n2, depth-1)
		close(done)
	}()
	right := pairwiseColsPar(d, f, a+n2, n-n2, depth-1)
	<-done
	for c := range left {
		left[c] += right[c]
	}
	return left
}

// numpyColStd returns np.std(x[:, [c]]) (population, ddof 0) for every
// column, with numpy's summation order, streaming rows in order (blocks of
// up to 4096 columns) with the top of the pairwise tree in parallel.
func numpyColStd(x rows) []float64 {
	n := float64(x.n)
	out := make([]float64, x.d)
	depth := bits.Len(uint(runtime.GOMAXPROCS(0) - 1))
	const block = 4096
	for c0 := 0; c0 < x.d; c0 += block {
		c1 := min(x.d, c0+block)
		sum := pairwiseColsPar(c1-c0, func(i int, _ []float64) []float64 { return x.row(i)[c0:c1] }, 0, x.n, depth)
		mean := make([]float64, c1-c0)
		for c := range mean {
			mean[c] = sum[c] / n
		}
		sq := pairwiseColsPar(c1-c0, func(i int, buf []float64) []float64 {
			for c, v := range x.row(i)[c0:c1] {
				dv := v - mean[c]
				buf[c] = dv * dv
			}
			return buf
		}, 0, x.n, depth)
		for c := range sq {
			out[c0+c] = math.Sqrt(sq[c] / n)
		}
	}
	return out
}

// linspace is np.linspace(start, stop, num, endpoint).
func linspace(start, stop float64, num int, endpoint bool) []float64 {
	out := make([]float64, num)
	div := num
	if endpoint {
		div = num - 1
	}
	if num == 1 {
		out[0] = start
		return out
	}
	step := (stop - start) / float64(div)
	for i := range out {
		out[i] = float64(i)*step + start
	}
	if endpoint {
		out[num-1] = stop
	}
	return out
}
