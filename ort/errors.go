package ort

import (
	"errors"
	"fmt"
)

// ErrUnavailable is returned by every constructor when srtool was built
// without cgo (CGO_ENABLED=0), so ONNX Runtime cannot be loaded.
var ErrUnavailable = errors.New("ort: ONNX Runtime is unavailable: srtool was built without cgo (CGO_ENABLED=0); rebuild with cgo and a C compiler")

// ErrClosed is returned by Run on a closed Session.
var ErrClosed = errors.New("ort: session is closed")

// CUDAUnavailableError reports that a CUDA device was asked for but ONNX
// Runtime's CUDA execution provider could not be set up: the loaded library
// is the CPU build, the provider libraries are not beside it, or CUDA/cuDNN
// are missing. Err is ONNX Runtime's own message.
type CUDAUnavailableError struct {
	Device  Device
	Library string // the libonnxruntime that was loaded
	Err     error
}

func (e *CUDAUnavailableError) Error() string {
	return fmt.Sprintf("ort: %s is unavailable with %s: install the GPU build of ONNX Runtime 1.30 "+
		"(the onnxruntime-linux-x64-gpu-1.30.x tarball: libonnxruntime.so.1 with "+
		"libonnxruntime_providers_shared.so and libonnxruntime_providers_cuda.so beside it), "+
		"CUDA 12.x and cuDNN 9, and set ONNXRUNTIME_SHARED_LIBRARY_PATH to that libonnxruntime.so.1 "+
		"(onnxruntime said: %v)", e.Device, e.Library, e.Err)
}

func (e *CUDAUnavailableError) Unwrap() error { return e.Err }
