//go:build linux || darwin

package onnxio

import (
	"os"
	"syscall"
)

func mkfifo(path string) error { return syscall.Mkfifo(path, 0o644) }

// unblockFIFO opens the FIFO read-write, which releases a reader blocked
// in open, and closes it again.
func unblockFIFO(path string) {
	if f, err := os.OpenFile(path, os.O_RDWR, 0); err == nil {
		f.Close()
	}
}
