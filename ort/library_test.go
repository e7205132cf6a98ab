package ort

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestLibraryLookup(t *testing.T) {
	cache := t.TempDir()
	cached := filepath.Join(cache, "srtool", LibraryFile)
	other := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	touch := func(p string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("XDG_CACHE_HOME", cache)

	// Nothing anywhere: the error says to run make ort.
	t.Setenv(LibraryEnv, "")
	if p, err := LibraryLookup(); err == nil || !strings.Contains(err.Error(), "make ort") || !strings.Contains(err.Error(), cached) {
		t.Errorf("LibraryLookup() with no library = %q, %v; want an error naming %s and `make ort`", p, err, cached)
	}

	// The cache.
	touch(cached)
	if p, err := LibraryLookup(); err != nil || p != cached {
		t.Errorf("LibraryLookup() = %q, %v; want the cache %q", p, err, cached)
	}

	// The variable wins over the cache.
	touch(other)
	t.Setenv(LibraryEnv, other)
	if p, err := LibraryLookup(); err != nil || p != other {
		t.Errorf("LibraryLookup() with %s set = %q, %v; want %q", LibraryEnv, p, err, other)
	}

	// A variable naming a missing file is an error, not a fall back to the cache.
	missing := filepath.Join(t.TempDir(), "nope.so")
	t.Setenv(LibraryEnv, missing)
	if p, err := LibraryLookup(); err == nil || !strings.Contains(err.Error(), LibraryEnv) || !strings.Contains(err.Error(), missing) {
		t.Errorf("LibraryLookup() with %s=%s = %q, %v; want an error naming both", LibraryEnv, missing, p, err)
	}

	// A directory is not a library.
	t.Setenv(LibraryEnv, cache)
	if p, err := LibraryLookup(); err == nil {
		t.Errorf("LibraryLookup() with %s=%s (a directory) = %q, nil; want an error", LibraryEnv, cache, p)
	}
}

// scripts/fetch_ort.sh must put the library where LibraryLookup looks.
func TestFetchScriptAgrees(t *testing.T) {
	cache := t.TempDir()
	cmd := exec.Command("bash", "../scripts/fetch_ort.sh", "--print-path")
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+cache)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("fetch_ort.sh --print-path: %v", err)
	}
	if got, want := strings.TrimSpace(string(out)), filepath.Join(cache, "srtool", LibraryFile); got != want {
		t.Errorf("fetch_ort.sh --print-path = %q; LibraryLookup looks at %q", got, want)
	}
}
