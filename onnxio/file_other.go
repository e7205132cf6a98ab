//go:build !unix

package onnxio

import "os"

func openNonBlocking(path string) (*os.File, error) { return os.Open(path) }
