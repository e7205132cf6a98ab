//go:build !cgo

package ort

import (
	"context"

	"github.com/semirobust/srtool/onnxio"
)

// Init returns ErrUnavailable: ONNX Runtime needs cgo.
func Init(libPath string) error { return ErrUnavailable }

// Version returns "": no ONNX Runtime is loaded without cgo.
func Version() string { return "" }

// Session is a loaded model; without cgo none can be made.
type Session struct{}

// NewSession returns ErrUnavailable: ONNX Runtime needs cgo.
func NewSession(model []byte, opts Options) (*Session, error) { return nil, ErrUnavailable }

// NewModelSession returns ErrUnavailable: ONNX Runtime needs cgo.
func NewModelSession(m *onnxio.Model, opts Options) (*Session, error) { return nil, ErrUnavailable }

// Device returns the zero Device.
func (s *Session) Device() Device { return Device{} }

// InputNames returns nil.
func (s *Session) InputNames() []string { return nil }

// OutputNames returns nil.
func (s *Session) OutputNames() []string { return nil }

// Inputs returns nil.
func (s *Session) Inputs() []ValueInfo { return nil }

// Outputs returns nil.
func (s *Session) Outputs() []ValueInfo { return nil }

// Run returns ErrUnavailable.
func (s *Session) Run(ctx context.Context, inputs map[string]Tensor, outputs []string) (map[string]Tensor, error) {
	return nil, ErrUnavailable
}

// Close does nothing.
func (s *Session) Close() error { return nil }

// Preallocate does nothing.
func (s *Session) Preallocate(names ...string) {}
