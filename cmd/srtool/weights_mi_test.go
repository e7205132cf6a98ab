package main

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/semirobust/srtool/checkpoint"
	"github.com/semirobust/srtool/npy"
)

// torchSave writes a torch.save zip checkpoint of tensors (all F32) plus
// extra entries given as protocol-2 pickle fragments, in a dict.
func torchSave(t *testing.T, path string, tensors map[string]checkpoint.Tensor, extra map[string]string) {
	t.Helper()
	str := func(s string) string {
		return "X" + string(binary.LittleEndian.AppendUint32(nil, uint32(len(s)))) + s
	}
	num := func(n int64) string {
		return "\x8a\x08" + string(binary.LittleEndian.AppendUint64(nil, uint64(n)))
	}
	tuple := func(v []int64) string {
		s := "("
		for _, x := range v {
			s += num(x)
		}
		return s + "t"
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range tensors {
			if !yield(k) {
				return
			}
		}
	})
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	pkl := "\x80\x02}("
	for i, k := range names {
		ts := tensors[k]
		if ts.DType != checkpoint.F32 {
			t.Fatalf("%s is %s", k, ts.DType)
		}
		stride := make([]int64, len(ts.Shape))
		s := int64(1)
		for j := len(ts.Shape) - 1; j >= 0; j-- {
			stride[j], s = s, s*ts.Shape[j]
		}
		key := fmt.Sprint(i)
		pkl += str(k) + "ctorch._utils\n_rebuild_tensor_v2\n(" +
			"(" + str("storage") + "ctorch\nFloatStorage\n" + str(key) + str("cpu") + num(ts.NumElements()) + "tQ" +
			num(0) + tuple(ts.Shape) + tuple(stride) + "\x89ccollections\nOrderedDict\n)RtR"
		w, err := zw.CreateHeader(&zip.FileHeader{Name: "m/data/" + key, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(ts.Data)
	}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range extra {
			if !yield(k) {
				return
			}
		}
	}) {
		pkl += str(k) + extra[k]
	}
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "m/data.pkl", Method: zip.Store})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(pkl + "u."))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Issue 12: weights import of a state_dict that also held non-tensor
// entries (an os.system global) succeeded with exit 0 and no word. Every
// ignored entry is now listed, in the output and in the JSON.
func TestWeightsImportListsIgnoredEntries(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(models, "wrn16_1_train.onnx")
	st := filepath.Join(dir, "w.safetensors")
	if code, _, errs := srtool(t, "weights", "export", model, "-o", st); code != 0 {
		t.Fatalf("export: %s", errs)
	}
	tensors, _, err := checkpoint.ReadSafetensors(st)
	if err != nil {
		t.Fatal(err)
	}
	pt := filepath.Join(dir, "evil.pt")
	torchSave(t, pt, tensors, map[string]string{
		"evil":  "cposix\nsystem\n",
		"hook":  "cposix\nsystem\n(X\x04\x00\x00\x00echotR",
		"notes": "X\x02\x00\x00\x00hi",
	})
	js := filepath.Join(dir, "r.json")
	code, out, errs := srtool(t, "weights", "import", model, "--from", pt, "-o", filepath.Join(dir, "m.onnx"), "--json", js)
	if code != 0 {
		t.Fatalf("import: exit %d: %s", code, errs)
	}
	for _, want := range []string{"ignored 3 entries", "evil (class posix.system): not a tensor", "hook (posix.system): not a tensor", "notes (str): not a tensor"} {
		if !strings.Contains(out, want) {
			t.Errorf("output %q does not contain %q", out, want)
		}
	}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Complete bool                 `json:"complete"`
		Loaded   []string             `json:"loaded"`
		Ignored  []checkpoint.Ignored `json:"ignored"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, ig := range rep.Ignored {
		keys = append(keys, ig.Key)
	}
	if !rep.Complete || len(rep.Loaded) != len(tensors) || !slices.Equal(keys, []string{"evil", "hook", "notes"}) {
		t.Errorf("JSON: complete %v, %d loaded, ignored %v; want true, %d, [evil hook notes]", rep.Complete, len(rep.Loaded), keys, len(tensors))
	}
}

// Issue 12: --options values and the repetition counts of mi were not
// range-checked; each bad value is now one usage line (exit 2).
func TestMIRejectsBadOptions(t *testing.T) {
	dir := t.TempDir()
	x := make([]float32, 60)
	for i := range x {
		x[i] = float32(i*7%11) / 11
	}
	xp, yp := filepath.Join(dir, "x.npy"), filepath.Join(dir, "y.npy")
	if err := npy.WriteFile(xp, npy.FromFloat32(x, 30, 2)); err != nil {
		t.Fatal(err)
	}
	if err := npy.WriteFile(yp, npy.FromFloat32(x, 30, 2)); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--options", `{"L":-1}`}, "L = -1"},
		{[]string{"--options", `{"L":1000000000}`}, "L = 1000000000"},
		{[]string{"--options", `{"Bogus":true}`}, "Bogus"},
		{[]string{"--options", `{"U":5} junk`}, "after the JSON object"},
		{[]string{"--estimator", "ksg", "--options", `{"K":-5}`}, "K = -5"},
		{[]string{"--estimator", "ksg", "--options", `{"K":2147483647}`}, "K = 2147483647"},
		{[]string{"--estimator", "gauss", "--options", `{"Shrinkage":-0.1}`}, "Shrinkage"},
		{[]string{"--permutations", "-3"}, "--permutations -3"},
		{[]string{"--permutations", "1"}, "--permutations 1"},
		{[]string{"--permutations", "1000000000"}, "--permutations 1000000000"},
		{[]string{"--bootstrap", "-1"}, "--bootstrap -1"},
		{[]string{"--bootstrap", "2000000000"}, "--bootstrap 2000000000"},
	}
	for _, c := range cases {
		args := append([]string{"mi", "--x", xp, "--y", yp}, c.args...)
		code, _, errs := srtool(t, args...)
		if code != 2 || !strings.Contains(errs, c.want) || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
			t.Errorf("srtool %s: exit %d, stderr %q; want exit 2 and one line containing %q", strings.Join(args, " "), code, errs, c.want)
		}
	}
	// An array with no columns is an error, not a panic in the matrix code.
	empty := filepath.Join(dir, "e.npy")
	if err := npy.WriteFile(empty, npy.FromFloat32(nil, 30, 0)); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := srtool(t, "mi", "--x", empty, "--y", yp); code != 1 || !strings.Contains(errs, "no columns") {
		t.Errorf("mi with a (30, 0) array: exit %d, %q; want exit 1 and a no-columns error", code, errs)
	}
}
