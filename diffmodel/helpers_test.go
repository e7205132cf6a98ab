//go:build cgo

package diffmodel

import (
	"os"
	"strconv"
	"testing"

	"github.com/semirobust/srtool/ort"
)

// needLib loads ONNX Runtime or fails the test: the library is part of the
// test setup (`make test` fetches it), so a missing one is not a skip.
func needLib(t testing.TB) {
	t.Helper()
	p, err := ort.LibraryLookup()
	if err != nil {
		t.Fatalf("this test needs ONNX Runtime: %v", err)
	}
	if err := ort.Init(p); err != nil {
		t.Fatalf("this test needs ONNX Runtime: %v (run `make ort`)", err)
	}
}

// benchThreads is $SRTOOL_BENCH_THREADS, default 2.
func benchThreads(b *testing.B) int {
	v := os.Getenv("SRTOOL_BENCH_THREADS")
	if v == "" {
		return 2
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		b.Fatalf("SRTOOL_BENCH_THREADS=%q: want a number ≥ 0", v)
	}
	return n
}
