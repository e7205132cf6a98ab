package ort

import (
	"context"
	"fmt"
)

// Forward runs a single-input, single-output model over x, which holds n
// samples of sampleShape in row-major order, in batches of batchSize (the last
// batch may be smaller). It calls progress(done, total) with sample counts
// after each batch (progress may be nil) and checks ctx between batches. It
// returns the concatenated float32 outputs and their shape [n, …]. x is only
// read.
func Forward(ctx context.Context, s *Session, input, output string, x []float32, sampleShape []int, batchSize int, progress func(done, total int)) (out []float32, outShape []int64, err error) {
	size := 1
	for _, d := range sampleShape {
		size *= d
	}
	n := 0
	if size > 0 {
		n = len(x) / size
	}
	var outSize int // elements per output sample
	err = Stream(ctx, s, input, []string{output}, x, sampleShape, batchSize, func(lo, hi int, res map[string]Tensor) error {
		y := res[output]
		if y.Float32 == nil {
			return fmt.Errorf("ort: forward: output %q is not float32", output)
		}
		if outShape == nil {
			outShape = append([]int64{int64(n)}, y.Shape[1:]...)
			outSize = len(y.Float32) / (hi - lo)
			out = make([]float32, 0, n*outSize)
		} else if !equalShape(outShape[1:], y.Shape[1:]) {
			return fmt.Errorf("ort: forward: output %q has shape %v for samples %d-%d, earlier batches gave per-sample shape %v", output, y.Shape, lo, hi-1, outShape[1:])
		}
		out = append(out, y.Float32...)
		if progress != nil {
			progress(hi, n)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return out, outShape, nil
}

func equalShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Stream runs a single-input model over x (n samples of sampleShape) in
// batches of batchSize and hands each batch's requested outputs to fn
// together with the sample range [lo, hi) they belong to. The tensors passed
// to fn are owned by fn. Memory stays at one batch of outputs, so a caller
// can reduce activations (e.g. channel means) as they stream by.
func Stream(ctx context.Context, s *Session, input string, outputs []string, x []float32, sampleShape []int, batchSize int, fn func(lo, hi int, out map[string]Tensor) error) error {
	if batchSize < 1 {
		return fmt.Errorf("ort: stream: batch size %d, want ≥ 1", batchSize)
	}
	size := 1
	for _, d := range sampleShape {
		if d < 1 {
			return fmt.Errorf("ort: stream: sample shape %v has a dimension < 1", sampleShape)
		}
		size *= d
	}
	if len(x) == 0 || len(x)%size != 0 {
		return fmt.Errorf("ort: stream: %d values are not a whole, non-zero number of samples of shape %v", len(x), sampleShape)
	}
	n := len(x) / size
	shape := make([]int64, 1+len(sampleShape))
	for i, d := range sampleShape {
		shape[1+i] = int64(d)
	}
	for lo := 0; lo < n; {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("ort: stream: %w", err)
		}
		b := min(batchSize, n-lo)
		shape[0] = int64(b)
		res, err := s.Run(ctx, map[string]Tensor{input: {Shape: append([]int64(nil), shape...), Float32: x[lo*size : (lo+b)*size]}}, outputs)
		if err != nil {
			return fmt.Errorf("ort: stream: samples %d-%d: %w", lo, lo+b-1, err)
		}
		for _, o := range outputs {
			if t := res[o]; len(t.Shape) == 0 || t.Shape[0] != int64(b) {
				return fmt.Errorf("ort: stream: output %q has shape %v for a batch of %d; want the batch first", o, t.Shape, b)
			}
		}
		if err := fn(lo, lo+b, res); err != nil {
			return err
		}
		lo += b
	}
	return nil
}
