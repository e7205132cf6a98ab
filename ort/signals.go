//go:build cgo

package ort

// #include "signals.h"
import "C"

import "fmt"

// The CUDA execution provider may install signal handlers without
// SA_ONSTACK while it is appended to a session, while the session is built
// and while it runs (onnxruntime_go issue #140); the Go runtime then dies on
// the next signal, such as Ctrl-C. Init saves Go's handlers before ONNX
// Runtime is loaded, and CUDA sessions put them back after each of those
// steps. The C side is signals.c.

// saveSignals records the current (Go's) signal handlers.
func saveSignals() { C.srtool_save_signals() }

// fixSignalHandlers restores every saved handler that was replaced by one
// without SA_ONSTACK and returns how many it restored.
func fixSignalHandlers() int { return int(C.srtool_fix_signals()) }

// signalOnStack and installForeignHandler exist for tests of the guard:
// whether sig's handler has SA_ONSTACK (1, 0, or -1 on error), and
// installing a handler without it.
func signalOnStack(sig int) int { return int(C.srtool_signal_onstack(C.int(sig))) }

func installForeignHandler(sig int) error {
	if C.srtool_install_foreign(C.int(sig)) != 0 {
		return fmt.Errorf("sigaction(%d) failed", sig)
	}
	return nil
}
