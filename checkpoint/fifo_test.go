//go:build linux || darwin

package checkpoint

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/semirobust/srtool/onnxio"
)

// A named pipe given as a weights file is refused at once instead of
// blocking in open until a writer comes.
func TestReadersRefuseFIFOs(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "w.pt")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("no FIFOs here: %v", err)
	}
	t.Cleanup(func() {
		if f, err := os.OpenFile(fifo, os.O_RDWR, 0); err == nil {
			f.Close()
		}
	})
	readers := map[string]func(string) error{
		"Load":            func(p string) error { _, err := Load(p); return err },
		"ReadPyTorch":     func(p string) error { _, err := ReadPyTorch(p); return err },
		"ReadSafetensors": func(p string) error { _, _, err := ReadSafetensors(p); return err },
	}
	for name, read := range readers {
		done := make(chan error, 1)
		go func() { done <- read(fifo) }()
		select {
		case err := <-done:
			if !errors.Is(err, onnxio.ErrNotRegular) {
				t.Errorf("%s: err = %v; want onnxio.ErrNotRegular", name, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s hangs on a FIFO", name)
		}
	}
}
