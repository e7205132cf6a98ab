package report

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/semirobust/srtool/shard"
)

// TestHeaderJSON: the header's field order, names and omitempty rules are
// the reports' format; an embedding report flattens them.
func TestHeaderJSON(t *testing.T) {
	h := New(RunInfo{Tool: "srtool", Version: "v", GoVersion: "go", Command: "eval", CommandLine: []string{"srtool", "eval"}, Flags: map[string]any{"n": 1}})
	doc := struct {
		Header
		N int `json:"n"`
	}{h, 3}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"complete":true,"run":{"tool":"srtool","version":"v","go_version":"go","command":"eval","command_line":["srtool","eval"],"flags":{"n":1}},"n":3}`
	if string(b) != want {
		t.Errorf("JSON = %s; want %s", b, want)
	}
	doc.Fingerprint = "ab"
	doc.Sharding = &Sharding{Shard: shard.Shard{Index: 1, Count: 2}, Lo: 5, Hi: 10, Total: 10}
	doc.MarkIncomplete(nil)
	b, _ = json.Marshal(doc.Header)
	want = `{"complete":false,"incomplete_reason":"interrupted","run":{"tool":"srtool","version":"v","go_version":"go","command":"eval","command_line":["srtool","eval"],"flags":{"n":1}},"fingerprint":"ab","sharding":{"shard":{"index":1,"count":2},"lo":5,"hi":10,"total":10}}`
	if string(b) != want {
		t.Errorf("JSON = %s; want %s", b, want)
	}
}

func TestMarkIncomplete(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, "interrupted"},
		{context.Canceled, "interrupted"},
		{fmt.Errorf("batch 3: %w", context.DeadlineExceeded), "interrupted"},
		{errors.New(" read x.npy:\nshort file \n"), "read x.npy:; short file"},
	} {
		h := New(RunInfo{})
		h.MarkIncomplete(c.err)
		if h.Complete || h.Incomplete != c.want {
			t.Errorf("MarkIncomplete(%v): complete %v, reason %q; want false, %q", c.err, h.Complete, h.Incomplete, c.want)
		}
	}
}

func TestWriteJSONAndDigests(t *testing.T) {
	if err := WriteJSON("", 1); err != nil {
		t.Errorf("WriteJSON(\"\") = %v; want nil", err)
	}
	p := filepath.Join(t.TempDir(), "r.json")
	if err := WriteJSON(p, map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "{\n  \"a\": 1\n}\n" {
		t.Errorf("file = %q, %v; want indented JSON and a newline", b, err)
	}
	d, err := FileDigests(p)
	sum := sha256.Sum256(b)
	if err != nil || d[p] != hex.EncodeToString(sum[:]) {
		t.Errorf("FileDigests = %v, %v", d, err)
	}
	if _, err := FileDigests(p + ".missing"); err == nil {
		t.Error("FileDigests of a missing file: no error")
	}
}

func TestVersion(t *testing.T) {
	if v := Version("abc123"); v != "abc123" {
		t.Errorf("Version(stamped) = %q; want the stamp", v)
	}
	if v := Version(""); v == "" {
		t.Error("Version(\"\") is empty; want devel, a module version or unknown")
	}
	ri := NewRunInfo("v1", "zoo list", []string{"srtool", "zoo", "list"}, map[string]any{"json": ""})
	if ri.Tool != "srtool" || ri.Version != "v1" || ri.Command != "zoo list" || len(ri.CommandLine) != 3 || ri.GoVersion == "" {
		t.Errorf("NewRunInfo = %+v", ri)
	}
}
