//go:build linux || darwin

package dataset

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/semirobust/srtool/onnxio"
)

// A named pipe where a loader expects a file is refused at once: opening
// one for reading blocks until a writer comes, which hung every command.
func TestLoadersRefuseFIFOs(t *testing.T) {
	img, lbl := mnistFiles(0, 2)
	cases := []struct {
		name  string
		files map[string][]byte
		fifo  string
		load  func(string, Options) (*Dataset, error)
	}{
		{"folder image", map[string][]byte{"cls/a.png": pngBytes(t, grayImage(0, 4, 3))}, "cls/b.png", LoadFolder},
		{"cifar10 batch", nil, "test_batch.bin", LoadCIFAR10},
		{"cifar100 names", map[string][]byte{"test.bin": cifarBytes(0, 2, cifar100Label)}, "fine_label_names.txt", LoadCIFAR100},
		{"mnist images", map[string][]byte{"t10k-labels-idx1-ubyte": lbl, "t10k-images-idx3-ubyte.gz": gz(img)}, "t10k-images-idx3-ubyte", LoadMNIST},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, b := range c.files {
				writeFile(t, filepath.Join(dir, name), b)
			}
			fifo := filepath.Join(dir, c.fifo)
			if err := syscall.Mkfifo(fifo, 0o644); err != nil {
				t.Skipf("no FIFOs here: %v", err)
			}
			t.Cleanup(func() {
				if f, err := os.OpenFile(fifo, os.O_RDWR, 0); err == nil {
					f.Close()
				}
			})
			done := make(chan error, 1)
			go func() {
				_, err := c.load(dir, Options{})
				done <- err
			}()
			select {
			case err := <-done:
				// MNIST skips a non-regular file and takes the .gz beside it.
				if c.name == "mnist images" {
					if err != nil {
						t.Errorf("err = %v; want the .gz read", err)
					}
					return
				}
				if !errors.Is(err, onnxio.ErrNotRegular) {
					t.Errorf("err = %v; want onnxio.ErrNotRegular", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("loading %s hangs on the FIFO %s", dir, c.fifo)
			}
		})
	}
}
