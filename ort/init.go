//go:build cgo

package ort

import (
	"fmt"
	"os"
	"sync"

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
	saveSignals()
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
