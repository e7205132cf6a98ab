//go:build cgo

package ort

import (
	"syscall"
	"testing"
)

// The guard that puts Go's signal handlers back after the CUDA provider
// replaced them with ones lacking SA_ONSTACK (onnxruntime_go issue #140).
func TestSignalGuard(t *testing.T) {
	needLib(t) // Init saves Go's handlers
	sig := int(syscall.SIGUSR2)
	if signalOnStack(sig) != 1 {
		t.Skip("SIGUSR2 has no Go handler with SA_ONSTACK in this process")
	}
	if err := installForeignHandler(sig); err != nil {
		t.Fatal(err)
	}
	if got := signalOnStack(sig); got != 0 {
		t.Fatalf("after installing a foreign handler, SA_ONSTACK = %d; want 0", got)
	}
	if n := fixSignalHandlers(); n < 1 {
		t.Errorf("fixSignalHandlers() = %d; want ≥ 1", n)
	}
	if got := signalOnStack(sig); got != 1 {
		t.Errorf("after fixSignalHandlers, SA_ONSTACK = %d; want 1 (Go's handler back)", got)
	}
	if n := fixSignalHandlers(); n != 0 {
		t.Errorf("second fixSignalHandlers() = %d; want 0", n)
	}
}
