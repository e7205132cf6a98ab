//go:build linux || darwin

package npy

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/semirobust/srtool/onnxio"
)

// A FIFO or folder given as an array file is refused at once, not waited on.
func TestReadFileNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "a.npy")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("no FIFOs here: %v", err)
	}
	t.Cleanup(func() {
		if f, err := os.OpenFile(fifo, os.O_RDWR, 0); err == nil {
			f.Close()
		}
	})
	for _, p := range []string{fifo, dir} {
		done := make(chan error, 2)
		go func() {
			_, err := ReadFile(p)
			done <- err
			_, err = ReadNPZ(p)
			done <- err
		}()
		for range 2 {
			select {
			case err := <-done:
				if !errors.Is(err, onnxio.ErrNotRegular) {
					t.Errorf("%s: err = %v; want onnxio.ErrNotRegular", p, err)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("reading %s hangs", p)
			}
		}
	}
}
