//go:build cgo

package ort

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/semirobust/srtool/onnxio"
	ortgo "github.com/yalue/onnxruntime_go"
)

// Session is a loaded model ready to run. Run may be called from several
// goroutines at once; Close waits for running calls to finish.
type Session struct {
	mu      sync.RWMutex
	sess    *ortgo.DynamicAdvancedSession
	device  Device
	inputs  []ValueInfo
	outputs []ValueInfo
	// prealloc names the outputs Run allocates in Go memory for ONNX
	// Runtime to write into (see Preallocate).
	prealloc map[string]bool
}

// NewSession loads a serialized ONNX ModelProto (model is only read, and may
// be reused or dropped afterwards) on opts.Device. It calls Init with
// opts.LibraryPath first. Asking for CUDA with an ONNX Runtime that cannot
// provide it gives a *CUDAUnavailableError.
func NewSession(model []byte, opts Options) (s *Session, err error) {
	defer recoverErr(&err, "new session")
	dev, cudaOpts, err := checkOptions(opts)
	if err != nil {
		return nil, err
	}
	info, err := parseModelInfo(model)
	if err != nil {
		return nil, fmt.Errorf("ort: new session: %w", err)
	}
	return openSession(model, info, dev, cudaOpts, opts)
}

// NewModelSession is NewSession for a model held as an onnxio.Model: it
// encodes m (only read) and takes the inputs and outputs from its graph
// without decoding the bytes again.
func NewModelSession(m *onnxio.Model, opts Options) (s *Session, err error) {
	defer recoverErr(&err, "new session")
	dev, cudaOpts, err := checkOptions(opts)
	if err != nil {
		return nil, err
	}
	b, err := m.Encode()
	if err != nil {
		return nil, fmt.Errorf("ort: new session: %w", err)
	}
	return openSession(b, graphInfo(m), dev, cudaOpts, opts)
}

// checkOptions returns the device opts asks for and, for CUDA, the
// execution provider's options.
func checkOptions(opts Options) (dev Device, cudaOpts map[string]string, err error) {
	dev = opts.Device
	if dev.Kind == "" {
		dev.Kind = "cpu"
	}
	if dev.Kind != "cpu" && dev.Kind != "cuda" {
		return Device{}, nil, fmt.Errorf("ort: new session: unknown device kind %q (want cpu or cuda)", dev.Kind)
	}
	if opts.Threads < 0 {
		return Device{}, nil, fmt.Errorf("ort: new session: %d threads", opts.Threads)
	}
	if dev.Kind == "cuda" {
		if cudaOpts, err = cudaProviderOptions(dev, opts.CUDAOptions); err != nil {
			return Device{}, nil, err
		}
	}
	return dev, cudaOpts, nil
}

// openSession opens a session on device dev for the serialized model whose
// inputs and outputs info describes.
func openSession(model []byte, info *modelInfo, dev Device, cudaOpts map[string]string, opts Options) (*Session, error) {
	if len(info.inputs) == 0 || len(info.outputs) == 0 {
		return nil, fmt.Errorf("ort: new session: model has %d inputs to feed and %d outputs; want at least one of each", len(info.inputs), len(info.outputs))
	}
	if err := Init(opts.LibraryPath); err != nil {
		return nil, err
	}

	so, err := ortgo.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("ort: new session: options: %w", err)
	}
	defer so.Destroy()
	if err := so.SetIntraOpNumThreads(opts.Threads); err != nil {
		return nil, fmt.Errorf("ort: new session: threads: %w", err)
	}
	level := ortgo.GraphOptimizationLevel(ortgo.GraphOptimizationLevelEnableAll)
	if opts.DisableOptimizations {
		level = ortgo.GraphOptimizationLevelDisableAll
	}
	if err := so.SetGraphOptimizationLevel(level); err != nil {
		return nil, fmt.Errorf("ort: new session: optimization level: %w", err)
	}
	if err := so.SetMemPattern(opts.MemoryPattern); err != nil {
		return nil, fmt.Errorf("ort: new session: memory pattern: %w", err)
	}
	if opts.ProfilePrefix != "" {
		if err := so.EnableProfiling(opts.ProfilePrefix); err != nil {
			return nil, fmt.Errorf("ort: new session: profiling: %w", err)
		}
	}
	if dev.Kind == "cuda" {
		// The CUDA provider may install signal handlers while it is
		// appended, while the session is built and while it runs.
		defer fixSignalHandlers()
		if err := appendCUDA(so, cudaOpts); err != nil {
			return nil, &CUDAUnavailableError{Device: dev, Library: libraryPath(), Err: err}
		}
	}

	inNames := make([]string, len(info.inputs))
	for i, v := range info.inputs {
		inNames[i] = v.Name
	}
	outNames := make([]string, len(info.outputs))
	for i, v := range info.outputs {
		outNames[i] = v.Name
	}
	sess, err := ortgo.NewDynamicAdvancedSessionWithONNXData(model, inNames, outNames, so)
	if err != nil {
		return nil, fmt.Errorf("ort: new session on %s: %w", dev, err)
	}
	return &Session{sess: sess, device: dev, inputs: info.inputs, outputs: info.outputs}, nil
}

// appendCUDA adds the CUDA execution provider (OrtCUDAProviderOptionsV2)
// with the given options to so. With the CPU build of ONNX Runtime this is
// where it fails.
func appendCUDA(so *ortgo.SessionOptions, kv map[string]string) error {
	co, err := ortgo.NewCUDAProviderOptions()
	if err != nil {
		return err
	}
	defer co.Destroy()
	if err := co.Update(kv); err != nil {
		return err
	}
	return so.AppendExecutionProviderCUDA(co)
}

// Device returns the device the session runs on.
func (s *Session) Device() Device {
	if s == nil {
		return Device{}
	}
	return s.device
}

// InputNames returns the names of the inputs Run must be given (graph
// inputs that are not initializers), in graph order.
func (s *Session) InputNames() []string {
	if s == nil {
		return nil
	}
	return names(s.Inputs())
}

// OutputNames returns the model's output names in graph order.
func (s *Session) OutputNames() []string {
	if s == nil {
		return nil
	}
	return names(s.outputs)
}

// Inputs describes the inputs Run must be given, as the model declares them.
func (s *Session) Inputs() []ValueInfo {
	if s == nil {
		return nil
	}
	return cloneInfo(s.inputs)
}

// Outputs describes the model's outputs as the model declares them.
func (s *Session) Outputs() []ValueInfo {
	if s == nil {
		return nil
	}
	return cloneInfo(s.outputs)
}

// Run feeds inputs (every name in InputNames, no others) and returns the
// named outputs, or all of them if outputs is empty. ONNX Runtime computes
// every model output on each run, so a graph meant for a subset should be
// written with only those outputs. Results are in Go-owned slices the caller
// keeps; inputs are only read. Cancelling ctx stops a run in progress
// between nodes (RunOptions terminate) and Run returns an error wrapping
// ctx.Err().
//
// Outputs declared with rank 0 (scalars, such as a loss) must be float32 or
// int64 and are returned with an empty Shape.
func (s *Session) Run(ctx context.Context, inputs map[string]Tensor, outputs []string) (res map[string]Tensor, err error) {
	if s == nil {
		return nil, ErrClosed
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.sess == nil {
		return nil, ErrClosed
	}
	defer recoverErr(&err, "run")
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ort: run: %w", err)
	}
	want, err := s.selectOutputs(outputs)
	if err != nil {
		return nil, err
	}
	for name := range inputs {
		if !slices.ContainsFunc(s.inputs, func(v ValueInfo) bool { return v.Name == name }) {
			return nil, fmt.Errorf("ort: run: unknown input %q (the model takes %q)", name, s.InputNames())
		}
	}

	ins := make([]ortgo.Value, len(s.inputs))
	outs := make([]ortgo.Value, len(s.outputs))
	defer destroyAll(ins)
	defer destroyAll(outs)
	for i, in := range s.inputs {
		t, ok := inputs[in.Name]
		if !ok {
			return nil, fmt.Errorf("ort: run: missing input %q (the model takes %q)", in.Name, s.InputNames())
		}
		if ins[i], err = newValue(t, in); err != nil {
			return nil, fmt.Errorf("ort: run: input %q: %w", in.Name, err)
		}
	}
	// onnxruntime_go cannot wrap an ORT-allocated rank-0 output, so scalar
	// outputs get a Go-allocated scalar to be written into. Outputs marked
	// by Preallocate get a Go slice too, which saves copying them out of
	// ONNX Runtime's memory.
	for i, o := range s.outputs {
		if !o.HasShape {
			continue
		}
		if len(o.Shape) == 0 {
			if outs[i], err = newScalar(o.ElemType); err != nil {
				return nil, fmt.Errorf("ort: run: output %q: %w", o.Name, err)
			}
			continue
		}
		if s.prealloc[o.Name] {
			if outs[i], err = newStaticOutput(o); err != nil {
				return nil, fmt.Errorf("ort: run: output %q: %w", o.Name, err)
			}
		}
	}

	ro, err := ortgo.NewRunOptions()
	if err != nil {
		return nil, fmt.Errorf("ort: run: options: %w", err)
	}
	defer ro.Destroy()
	terminated := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(terminated)
		ro.Terminate()
	})
	runErr := s.sess.RunWithOptions(ins, outs, ro)
	if !stop() {
		<-terminated // Terminate has run; ro may be destroyed now
	}
	if s.device.Kind == "cuda" {
		fixSignalHandlers()
	}
	if runErr != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("ort: run: %w", ctx.Err())
		}
		return nil, fmt.Errorf("ort: run: %w", runErr)
	}

	res = make(map[string]Tensor, len(want))
	for _, i := range want {
		t, err := fromValue(outs[i])
		if err != nil {
			return nil, fmt.Errorf("ort: run: output %q: %w", s.outputs[i].Name, err)
		}
		res[s.outputs[i].Name] = t
	}
	return res, nil
}

// selectOutputs returns the indices of the named outputs (all if none).
func (s *Session) selectOutputs(outputs []string) ([]int, error) {
	if len(outputs) == 0 {
		idx := make([]int, len(s.outputs))
		for i := range idx {
			idx[i] = i
		}
		return idx, nil
	}
	idx := make([]int, 0, len(outputs))
	for _, name := range outputs {
		i := slices.IndexFunc(s.outputs, func(v ValueInfo) bool { return v.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("ort: run: unknown output %q (the model has %q)", name, names(s.outputs))
		}
		if slices.Contains(idx, i) {
			return nil, fmt.Errorf("ort: run: output %q asked for twice", name)
		}
		idx = append(idx, i)
	}
	return idx, nil
}

// Preallocate marks float outputs whose declared shape is fully static and
// certainly right (the caller wrote it, e.g. a weight gradient: ONNX Runtime
// refuses a preallocated output whose computed shape differs) to be written
// straight into Go memory by every later Run, which saves copying them out
// of ONNX Runtime's memory. Names that are not float outputs with a static
// shape are ignored. It waits for running calls to Run; nil-safe. Do not
// use it on user models, which may declare output shapes their runs do not
// produce.
func (s *Session) Preallocate(names ...string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.prealloc == nil {
		s.prealloc = map[string]bool{}
	}
	for _, n := range names {
		s.prealloc[n] = true
	}
}

// Close releases the ONNX Runtime session. It is safe on a nil or zero
// Session and when called twice; it waits for running calls to Run.
func (s *Session) Close() (err error) {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sess == nil {
		return nil
	}
	defer recoverErr(&err, "close")
	sess := s.sess
	s.sess = nil
	if err := sess.Destroy(); err != nil {
		return fmt.Errorf("ort: close: %w", err)
	}
	return nil
}

func names(vs []ValueInfo) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Name
	}
	return out
}

func cloneInfo(vs []ValueInfo) []ValueInfo {
	out := make([]ValueInfo, len(vs))
	for i, v := range vs {
		v.Shape = slices.Clone(v.Shape)
		out[i] = v
	}
	return out
}

// recoverErr turns a panic from the binding into an error, so none escapes.
func recoverErr(err *error, op string) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("ort: %s: internal error: %v", op, r)
	}
}
