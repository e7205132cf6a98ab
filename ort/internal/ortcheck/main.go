// Command ortcheck loads ONNX Runtime through package ort, prints its version
// and runs a one-node model, to check that a library works with srtool.
// scripts/fetch_ort.sh runs it after fetching the library.
//
//	go run ./ort/internal/ortcheck [-lib PATH] [-want 1.30.0]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/semirobust/srtool/ort"
	"github.com/semirobust/srtool/ort/internal/onnxtest"
)

func main() {
	lib := flag.String("lib", "", "ONNX Runtime shared library (default: ort.LibraryLookup)")
	want := flag.String("want", "", "fail unless the library reports this version")
	flag.Parse()
	if err := run(*lib, *want); err != nil {
		fmt.Fprintln(os.Stderr, "ortcheck:", err)
		os.Exit(1)
	}
}

func run(lib, want string) error {
	if err := ort.Init(lib); err != nil {
		return err
	}
	v := ort.Version()
	if want != "" && v != want {
		return fmt.Errorf("library reports version %s, want %s", v, want)
	}
	// Y = Relu(X·1 + 0) on X = [-1, 2].
	s, err := ort.NewSession(onnxtest.Linear([]float32{1}, []float32{0}).Marshal(), ort.Options{LibraryPath: lib, Threads: 1})
	if err != nil {
		return err
	}
	defer s.Close()
	out, err := s.Run(context.Background(), map[string]ort.Tensor{"X": {Shape: []int64{2, 1}, Float32: []float32{-1, 2}}}, nil)
	if err != nil {
		return err
	}
	if y := out["Y"].Float32; len(y) != 2 || y[0] != 0 || y[1] != 2 {
		return fmt.Errorf("Relu([-1 2]) = %v; want [0 2]", y)
	}
	if lib == "" {
		lib, _ = ort.LibraryLookup()
	}
	fmt.Printf("ONNX Runtime %s loads and runs (%s)\n", v, lib)
	return nil
}
