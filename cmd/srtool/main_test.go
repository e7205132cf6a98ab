package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sharedModel = "../../testdata/fixtures/attacks/fmnist_rn_w8_pgd.onnx"

// srtool runs the command line in-process and returns exit code, stdout, stderr.
func srtool(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"srtool"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestLayersJSON(t *testing.T) {
	js := filepath.Join(t.TempDir(), "layers.json")
	code, out, errs := srtool(t, "layers", sharedModel, "--json", js)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "13 weight layers") {
		t.Errorf("stdout lacks the layer count:\n%s", out)
	}
	var rep struct {
		Layers []struct {
			Index      int      `json:"index"`
			Name       string   `json:"name"`
			Op         string   `json:"op"`
			Params     []string `json:"params"`
			Output     string   `json:"output"`
			Shape      []int64  `json:"shape"`
			ParamCount int64    `json:"param_count"`
			MACs       int64    `json:"macs"`
		} `json:"layers"`
		Params int64 `json:"params"`
		MACs   int64 `json:"macs"`
	}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Layers) != 13 || rep.Layers[0].Index != 1 || rep.Layers[12].Op != "Gemm" || rep.Layers[0].MACs == 0 || rep.Params == 0 {
		t.Errorf("report = %+v", rep)
	}
}

func TestSplitWritesHeadAndTail(t *testing.T) {
	dir := t.TempDir()
	js := filepath.Join(dir, "split.json")
	// Flags after the positional argument, as users type them.
	code, out, errs := srtool(t, "split", sharedModel, "--fb-layers", "4", "-o", filepath.Join(dir, "out"), "--json", js)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, f := range []string{"head.onnx", "tail.onnx"} {
		if _, err := os.Stat(filepath.Join(dir, "out", f)); err != nil {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	if !strings.Contains(out, "cut tensors") {
		t.Errorf("stdout lacks the cut tensors:\n%s", out)
	}
	var rep struct {
		At  int `json:"at"`
		Cut []struct {
			Name  string  `json:"name"`
			Shape []int64 `json:"shape"`
		} `json:"cut"`
	}
	b, _ := os.ReadFile(js)
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.At != 9 || len(rep.Cut) == 0 || len(rep.Cut[0].Shape) != 4 {
		t.Errorf("split report = %+v; want at 9 with 4-D cut tensors", rep)
	}
}

func TestBadInputOneLineError(t *testing.T) {
	dir := t.TempDir()
	notOnnx := filepath.Join(dir, "notes.onnx")
	os.WriteFile(notOnnx, []byte("hello, not a model"), 0o644)
	raw, err := os.ReadFile(sharedModel)
	if err != nil {
		t.Fatal(err)
	}
	trunc := filepath.Join(dir, "trunc.onnx")
	os.WriteFile(trunc, raw[:len(raw)/3], 0o644)
	out := filepath.Join(dir, "split-out")
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"not onnx", []string{"layers", notOnnx}, 1, "not an ONNX model"},
		{"truncated", []string{"layers", trunc}, 1, "not an ONNX model"},
		{"missing file", []string{"layers", filepath.Join(dir, "nope.onnx")}, 1, "no such file"},
		{"at out of range", []string{"split", sharedModel, "--at", "13", "-o", out}, 1, "out of range"},
		{"at zero", []string{"split", sharedModel, "--at", "0", "-o", out}, 1, "out of range"},
		{"fb-layers too many", []string{"split", sharedModel, "--fb-layers", "13", "-o", out}, 1, "out of range"},
		{"two cut flags", []string{"split", sharedModel, "--at", "3", "--fb-layers", "2", "-o", out}, 2, "exactly one"},
		{"no model", []string{"layers"}, 2, "exactly one MODEL"},
		{"unknown flag", []string{"layers", sharedModel, "--frobnicate"}, 2, "frobnicate"},
		{"bad device", []string{"eval", sharedModel, "--device", "tpu", "--data", "npz:x.npz"}, 2, "device"},
		{"bad data spec", []string{"eval", sharedModel, "--data", "imagenet:/x"}, 1, "unknown format"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errs := srtool(t, c.args...)
			if code != c.code {
				t.Errorf("exit code %d; want %d (stderr %q)", code, c.code, errs)
			}
			if !strings.Contains(errs, c.want) {
				t.Errorf("stderr %q; want it to mention %q", errs, c.want)
			}
			if n := strings.Count(strings.TrimSpace(errs), "\n"); n != 0 {
				t.Errorf("stderr has %d lines; want one: %q", n+1, errs)
			}
		})
	}
	if _, err := os.Stat(out); err == nil {
		ents, _ := os.ReadDir(out)
		if len(ents) != 0 {
			t.Errorf("failed splits left files behind: %v", ents)
		}
	}
}
