//go:build cgo

package ort

/*
#include <signal.h>
#include <string.h>

#ifndef NSIG
#define NSIG 65
#endif

// The Go runtime's signal handlers, saved before ONNX Runtime is loaded.
static struct sigaction srtool_saved[NSIG];
static int srtool_saved_ok[NSIG];

static void srtool_save_signals(void) {
	for (int s = 1; s < NSIG; s++) {
		srtool_saved_ok[s] = sigaction(s, NULL, &srtool_saved[s]) == 0;
	}
}

// srtool_fix_signals puts back the saved handler of every signal whose
// current handler was installed without SA_ONSTACK (the CUDA execution
// provider does this; Go then dies with "non-Go code set up signal handler
// without SA_ONSTACK flag" on Ctrl-C). It returns how many it restored.
static int srtool_fix_signals(void) {
	int fixed = 0;
	for (int s = 1; s < NSIG; s++) {
		struct sigaction cur;
		if (!srtool_saved_ok[s] || sigaction(s, NULL, &cur) != 0) continue;
		if (cur.sa_handler == SIG_DFL || cur.sa_handler == SIG_IGN) continue;
		if (cur.sa_flags & SA_ONSTACK) continue;
		if (sigaction(s, &srtool_saved[s], NULL) == 0) fixed++;
	}
	return fixed;
}

// For tests: whether sig's handler has SA_ONSTACK (-1 on error), and a way
// to install a foreign handler without it.
static int srtool_signal_onstack(int sig) {
	struct sigaction cur;
	if (sigaction(sig, NULL, &cur) != 0) return -1;
	return (cur.sa_flags & SA_ONSTACK) != 0;
}

static void srtool_foreign_handler(int sig) { (void)sig; }

static int srtool_install_foreign(int sig) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = srtool_foreign_handler;
	return sigaction(sig, &sa, NULL);
}
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"

	"github.com/semirobust/srtool/ort/internal/nchwc"
	ortgo "github.com/yalue/onnxruntime_go"
)

var (
	initMu   sync.Mutex
	initPath string // the library loaded; "" until Init succeeds
)

// Init loads the ONNX Runtime shared library at libPath ("" = LibraryLookup())
// and creates the process-wide environment. It is idempotent and safe for
// concurrent callers: after a success, further calls with "" or the same file
// return nil, and a call naming a different file is an error (a process holds
// one ONNX Runtime). A failed Init may be retried.
func Init(libPath string) (err error) {
	initMu.Lock()
	defer initMu.Unlock()
	if initPath != "" {
		if libPath == "" || sameFile(libPath, initPath) {
			return nil
		}
		return fmt.Errorf("ort: ONNX Runtime is already loaded from %s; cannot also load %s", initPath, libPath)
	}
	if libPath == "" {
		if libPath, err = LibraryLookup(); err != nil {
			return err
		}
	}
	defer recoverErr(&err, "init")
	if err := isFile(libPath); err != nil {
		return fmt.Errorf("ort: load ONNX Runtime: %v", err)
	}
	// Save Go's signal handlers before any ONNX Runtime code runs.
	C.srtool_save_signals()
	ortgo.SetSharedLibraryPath(libPath)
	// Log only fatal errors: the package never prints, and every error ONNX
	// Runtime would log also comes back as a status that Run returns.
	if err := ortgo.InitializeEnvironment(ortgo.WithLogLevelFatal()); err != nil {
		return fmt.Errorf("ort: load ONNX Runtime from %s (want version 1.30.x, at least 1.29): %w", libPath, err)
	}
	initPath = libPath
	return nil
}

func sameFile(a, b string) bool {
	if a == b {
		return true
	}
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

// Version returns the loaded ONNX Runtime's version, such as "1.30.0", or ""
// before a successful Init.
func Version() string {
	initMu.Lock()
	defer initMu.Unlock()
	if initPath == "" {
		return ""
	}
	return ortgo.GetVersion()
}

func libraryPath() string {
	initMu.Lock()
	defer initMu.Unlock()
	return initPath
}

// Session is a loaded model ready to run. Run may be called from several
// goroutines at once; Close waits for running calls to finish.
type Session struct {
	mu      sync.RWMutex
	sess    *ortgo.DynamicAdvancedSession
	device  Device
	inputs  []ValueInfo
	outputs []ValueInfo
	lowered nchwc.Stats // what newModelSession moved to NCHWc kernels
	// derived are inputs Run computes from sources (blocked weights of a
	// lowered graph); sources are the inputs they come from, which callers
	// feed although the graph may no longer take them.
	derived []nchwc.Derived
	sources map[string]ValueInfo
	// prealloc names the outputs Run allocates in Go memory for ONNX
	// Runtime to write into (see preallocate).
	prealloc map[string]bool
	// pinned holds derived inputs computed ahead by pin, by derived name.
	pinned map[string]pinnedInput
}

// NewSession loads a serialized ONNX ModelProto (model is only read, and may
// be reused or dropped afterwards) on opts.Device. It calls Init with
// opts.LibraryPath first. Asking for CUDA with an ONNX Runtime that cannot
// provide it gives a *CUDAUnavailableError.
func NewSession(model []byte, opts Options) (s *Session, err error) {
	defer recoverErr(&err, "new session")
	dev := opts.Device
	if dev.Kind == "" {
		dev.Kind = "cpu"
	}
	if dev.Kind != "cpu" && dev.Kind != "cuda" {
		return nil, fmt.Errorf("ort: new session: unknown device kind %q (want cpu or cuda)", dev.Kind)
	}
	if opts.Threads < 0 {
		return nil, fmt.Errorf("ort: new session: %d threads", opts.Threads)
	}
	var cudaOpts map[string]string
	if dev.Kind == "cuda" {
		if cudaOpts, err = cudaProviderOptions(dev, opts.CUDAOptions); err != nil {
			return nil, err
		}
	}
	info, err := parseModelInfo(model)
	if err != nil {
		return nil, fmt.Errorf("ort: new session: %w", err)
	}
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
		defer C.srtool_fix_signals()
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
	if len(s.derived) == 0 {
		return cloneInfo(s.inputs)
	}
	// What callers feed: the graph's inputs less the derived ones, plus
	// the sources they are made from.
	var vs []ValueInfo
	for _, v := range s.inputs {
		if !slices.ContainsFunc(s.derived, func(d nchwc.Derived) bool { return d.Name == v.Name }) {
			vs = append(vs, v)
		}
	}
	for _, d := range s.derived {
		if !slices.ContainsFunc(vs, func(v ValueInfo) bool { return v.Name == d.From }) {
			vs = append(vs, s.sources[d.From])
		}
	}
	return cloneInfo(vs)
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
		if _, ok := s.sources[name]; ok {
			continue
		}
		if !slices.ContainsFunc(s.inputs, func(v ValueInfo) bool { return v.Name == name }) {
			return nil, fmt.Errorf("ort: run: unknown input %q (the model takes %q)", name, s.InputNames())
		}
	}
	if len(s.derived) > 0 {
		if inputs, err = s.deriveInputs(inputs); err != nil {
			return nil, fmt.Errorf("ort: run: %w", err)
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
	// by preallocate get a Go slice too, which saves copying them out of
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
		C.srtool_fix_signals()
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

const (
	elemFloat = 1 // TensorProto.FLOAT
	elemInt64 = 7 // TensorProto.INT64
)

// newValue wraps t's data (not copied; ONNX Runtime only reads inputs) in an
// OrtValue that the caller must destroy.
func newValue(t Tensor, want ValueInfo) (ortgo.Value, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	got := int32(elemFloat)
	if t.Int64 != nil {
		got = elemInt64
	}
	if want.ElemType != 0 && want.ElemType != got {
		return nil, fmt.Errorf("got %s data, the model wants %s", elemName(got), elemName(want.ElemType))
	}
	// Typed results become a Value only when there is no error, so a
	// failed constructor never leaves a non-nil Value holding a nil pointer.
	switch {
	case len(t.Shape) == 0 && t.Int64 != nil:
		return valueOf(ortgo.NewScalar(t.Int64[0]))
	case len(t.Shape) == 0:
		return valueOf(ortgo.NewScalar(t.Float32[0]))
	case t.Int64 != nil:
		return valueOf(ortgo.NewTensor(ortgo.Shape(t.Shape), t.Int64))
	}
	return valueOf(ortgo.NewTensor(ortgo.Shape(t.Shape), t.Float32))
}

// newScalar allocates a rank-0 output of the given ONNX element type, or
// returns nil for other types (ONNX Runtime then allocates it).
func newScalar(elem int32) (ortgo.Value, error) {
	switch elem {
	case elemFloat:
		return valueOf(ortgo.NewEmptyScalar[float32]())
	case elemInt64:
		return valueOf(ortgo.NewEmptyScalar[int64]())
	}
	return nil, nil
}

func valueOf[V ortgo.Value](v V, err error) (ortgo.Value, error) {
	if err != nil {
		return nil, err
	}
	return v, nil
}

// fromValue takes the data of a float32 or int64 output. The slices are Go
// memory that stays valid after the value is destroyed.
// preallocate marks float outputs whose declared shape is fully static and
// certainly right (srtool wrote it, e.g. a weight gradient: ONNX Runtime
// refuses a preallocated output whose computed shape differs) to be written
// straight into Go memory by every later Run. Call it before the session
// is shared.
func (s *Session) preallocate(names ...string) {
	if s.prealloc == nil {
		s.prealloc = map[string]bool{}
	}
	for _, n := range names {
		s.prealloc[n] = true
	}
}

// newStaticOutput allocates a Go-backed float32 tensor for an output whose
// declared shape is fully static, or returns nil (ONNX Runtime allocates).
func newStaticOutput(o ValueInfo) (ortgo.Value, error) {
	if o.ElemType != elemFloat {
		return nil, nil
	}
	n := int64(1)
	for _, d := range o.Shape {
		if d < 1 {
			return nil, nil
		}
		n *= d
	}
	return valueOf(ortgo.NewTensor(ortgo.Shape(slices.Clone(o.Shape)), make([]float32, n)))
}

func fromValue(v ortgo.Value) (Tensor, error) {
	switch v := v.(type) {
	case *ortgo.Tensor[float32]:
		return Tensor{Shape: slices.Clone([]int64(v.GetShape())), Float32: v.GetData()}, nil
	case *ortgo.Tensor[int64]:
		return Tensor{Shape: slices.Clone([]int64(v.GetShape())), Int64: v.GetData()}, nil
	case *ortgo.Scalar[float32]:
		return Tensor{Shape: []int64{}, Float32: []float32{v.GetData()}}, nil
	case *ortgo.Scalar[int64]:
		return Tensor{Shape: []int64{}, Int64: []int64{v.GetData()}}, nil
	case nil:
		return Tensor{}, errors.New("no value")
	}
	return Tensor{}, fmt.Errorf("element type %v is not supported (ort.Tensor holds float32 and int64)", ortgo.TensorElementDataType(v.DataType()))
}

func elemName(t int32) string {
	switch t {
	case elemFloat:
		return "float32"
	case elemInt64:
		return "int64"
	}
	return ortgo.TensorElementDataType(t).String()
}

func destroyAll(vs []ortgo.Value) {
	for i, v := range vs {
		if v != nil {
			v.Destroy()
			vs[i] = nil
		}
	}
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

// fixSignalHandlers and the two helpers below exist for tests of the
// SA_ONSTACK guard.
func fixSignalHandlers() int { return int(C.srtool_fix_signals()) }

func signalOnStack(sig int) int { return int(C.srtool_signal_onstack(C.int(sig))) }

func installForeignHandler(sig int) error {
	if C.srtool_install_foreign(C.int(sig)) != 0 {
		return fmt.Errorf("sigaction(%d) failed", sig)
	}
	return nil
}
