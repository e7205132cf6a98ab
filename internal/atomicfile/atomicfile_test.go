package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Write replaces the file, keeps the mode of the one it replaces, and on a
// failure leaves the old file and no temporary file.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.bin")
	if err := WriteFile(path, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o644 {
		t.Fatalf("new file: %v, %v; want mode 0644", st, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("two")); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("replaced file: %v, %v; want the old mode 0600", st, err)
	}
	boom := errors.New("boom")
	err := Write(path, func(w io.Writer) error {
		io.WriteString(w, "partial")
		return boom
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), path) {
		t.Errorf("Write with a failing fill = %v; want an error wrapping boom and naming %s", err, path)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "two" {
		t.Errorf("after a failed write the file holds %q, %v; want the old %q", b, err, "two")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("folder holds %d entries after a failed write; want 1 (no temporary files)", len(ents))
	}
	if err := WriteFile(filepath.Join(dir, "no", "such", "f"), nil); err == nil {
		t.Error("WriteFile into a missing folder: nil error")
	}
}

// A SIGKILL between CreateTemp and Rename leaves a temporary file; the next
// write of the same output removes those of dead processes only.
func TestWriteRemovesStaleTemps(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.onnx")
	const deadPID = 1<<22 + 12345 // above Linux's largest pid_max
	dead := filepath.Join(dir, ".out.onnx"+tempMarker+strconv.Itoa(deadPID)+"-1")
	live := filepath.Join(dir, ".out.onnx"+tempMarker+strconv.Itoa(os.Getppid())+"-2")
	other := filepath.Join(dir, ".other.onnx"+tempMarker+strconv.Itoa(deadPID)+"-3")
	legacyOld := filepath.Join(dir, ".out.onnx.tmp123456")
	legacyNew := filepath.Join(dir, ".out.onnx.tmp654321")
	for _, p := range []string{dead, live, other, legacyOld, legacyNew} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(legacyOld, old, old); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(out, []byte("new")); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{dead: false, legacyOld: false, live: true, other: true, legacyNew: true, out: true} {
		_, err := os.Stat(p)
		if got := err == nil; got != want {
			t.Errorf("%s exists = %v after WriteFile; want %v", filepath.Base(p), got, want)
		}
	}
	// The temporary file of a write in progress says what it is.
	var names []string
	err := Write(out, func(io.Writer) error {
		ents, err := os.ReadDir(dir)
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	prefix := ".out.onnx.srtool-tmp-" + strconv.Itoa(os.Getpid()) + "-"
	found := false
	for _, n := range names {
		found = found || strings.HasPrefix(n, prefix)
	}
	if !found {
		t.Errorf("no temporary file named %s… during the write; folder held %v", prefix, names)
	}
}
