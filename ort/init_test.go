//go:build cgo

package ort

import (
	"strings"
	"sync"
	"testing"
)

func TestInit(t *testing.T) {
	needLib(t)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = Init("") })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent Init #%d = %v", i, err)
		}
	}
	p, _ := LibraryLookup()
	if err := Init(p); err != nil {
		t.Errorf("Init(%s) again = %v; want nil", p, err)
	}
	if err := Init(t.TempDir() + "/other.so"); err == nil || !strings.Contains(err.Error(), "already loaded") {
		t.Errorf("Init(another library) = %v; want an \"already loaded\" error", err)
	}
	if v := Version(); !strings.HasPrefix(v, "1.30.") && !strings.HasPrefix(v, "1.29.") {
		t.Errorf("Version() = %q; want 1.30.x", v)
	}
}
