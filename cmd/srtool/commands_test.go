//go:build cgo

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/npy"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
	"github.com/semirobust/srtool/semirobust"
)

const models = "../../testdata/models"

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func relErr(a, b []float32) float64 {
	var num, den float64
	for i := range a {
		d := float64(a[i] - b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
	}
	return math.Sqrt(num / math.Max(den, 1e-30))
}

func TestGradMatchesPyTorch(t *testing.T) {
	dir := t.TempDir()
	g, err := npy.ReadNPZ(filepath.Join(models, "resnet10_cifar_golden.npz"))
	if err != nil {
		t.Fatal(err)
	}
	xp, yp := filepath.Join(dir, "x.npy"), filepath.Join(dir, "y.npy")
	npy.WriteFile(xp, g["x"])
	npy.WriteFile(yp, g["y"])
	model := filepath.Join(models, "resnet10_cifar_train.onnx")
	out := filepath.Join(dir, "g.npy")
	code, stdout, errs := srtool(t, "grad", model, "--input", xp, "--labels", yp, "-o", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	got, err := npy.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if e := relErr(got.Float32(), g["grad_input_ce"].Float32()); e > 1e-4 {
		t.Errorf("input gradient: relative L2 error %.2g vs PyTorch", e)
	}
	if !strings.Contains(stdout, "loss (ce, mean)") {
		t.Errorf("stdout lacks the loss: %q", stdout)
	}
	// Several --wrt: a folder of <name>.npy.
	folder := filepath.Join(dir, "grads")
	code, _, errs = srtool(t, "grad", model, "--input", xp, "--labels", yp, "--wrt", "input", "--wrt", "conv1.weight", "-o", folder)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	w, err := npy.ReadFile(filepath.Join(folder, "conv1.weight.npy"))
	if err != nil {
		t.Fatal(err)
	}
	if e := relErr(w.Float32(), g["grad/conv1.weight"].Float32()); e > 1e-4 {
		t.Errorf("conv1.weight gradient: relative L2 error %.2g vs PyTorch", e)
	}
	// Bad input: one line, non-zero, nothing written.
	bad := filepath.Join(dir, "bad.npy")
	npy.WriteFile(filepath.Join(dir, "ybad.npy"), npy.FromInt64([]int64{0, 1, 2, 99}, 4))
	npy.WriteFile(filepath.Join(dir, "y3.npy"), npy.FromInt64([]int64{0, 1, 2}, 3))
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown wrt", []string{"--labels", yp, "--wrt", "no.such.weight"}, "no.such.weight"},
		{"label out of range", []string{"--labels", filepath.Join(dir, "ybad.npy")}, "outside"},
		{"count mismatch", []string{"--labels", filepath.Join(dir, "y3.npy")}, "labels"},
		{"bad loss", []string{"--labels", yp, "--loss", "hinge"}, "hinge"},
	} {
		args := append([]string{"grad", model, "--input", xp, "-o", bad}, c.args...)
		code, _, errs := srtool(t, args...)
		if code == 0 || !strings.Contains(errs, c.want) || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
			t.Errorf("%s: exit %d, stderr %q; want one line mentioning %q", c.name, code, errs, c.want)
		}
		if _, err := os.Stat(bad); err == nil {
			t.Errorf("%s: output written despite the error", c.name)
			os.Remove(bad)
		}
	}
}

func TestMIArraysReproducesAuthorsEDGE(t *testing.T) {
	const dir = "../../testdata/fixtures/edge"
	var cases struct {
		Cases []struct {
			Case int     `json:"case"`
			Ref  float64 `json:"edge_reference_bits"`
		} `json:"cases"`
	}
	readJSON(t, filepath.Join(dir, "cases.json"), &cases)
	for _, c := range cases.Cases[:4] {
		js := filepath.Join(t.TempDir(), "mi.json")
		x := filepath.Join(dir, "case"+string(rune('0'+c.Case))+"_x.npy")
		y := strings.Replace(x, "_x", "_y", 1)
		code, _, errs := srtool(t, "mi", "--x", x, "--y", y, "--estimator", "edge", "--options", `{"RNG":"reference","Deterministic":true}`, "--json", js)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		var rep struct {
			MI    float64 `json:"mi"`
			Units string  `json:"units"`
		}
		readJSON(t, js, &rep)
		if math.Abs(rep.MI-c.Ref) > 1e-6 || rep.Units != "bits" {
			t.Errorf("case %d: mi = %.9f %s; want %.9f bits (authors' EDGE)", c.Case, rep.MI, rep.Units, c.Ref)
		}
	}
	code, _, errs := srtool(t, "mi", "--x", filepath.Join(dir, "case0_x.npy"), "--y", filepath.Join(dir, "case2_y.npy"))
	if code == 0 || !strings.Contains(errs, "rows") {
		t.Errorf("mismatched rows: exit %d, %q", code, errs)
	}
}

// tinyData writes n random 1×8×8 images whose label is the brightest quadrant
// (a learnable rule) as an npz.
func tinyData(t *testing.T, path string, n int, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 1))
	x := make([]uint8, n*64)
	y := make([]int64, n)
	for i := range n {
		y[i] = int64(r.IntN(4))
		for p := range 64 {
			q := int64((p/32)*2 + (p%8)/4)
			v := r.IntN(120)
			if q == y[i] {
				v += 120
			}
			x[i*64+p] = uint8(v)
		}
	}
	if err := npy.WriteNPZ(path, map[string]*npy.Array{"x": npy.FromUint8(x, n, 1, 8, 8), "y": npy.FromInt64(y, n)}); err != nil {
		t.Fatal(err)
	}
}

// TestTrainFinetuneSemirobust runs the whole pipeline on a tiny model:
// init → train f and f* → finetune with the head frozen → semirobust report.
func TestTrainFinetuneSemirobust(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data.npz")
	tinyData(t, data, 256, 1)
	D := "npz:" + data
	E := D // the tiny set is also the evaluation set (npz has no test split)
	p := func(n string) string { return filepath.Join(dir, n) }
	run := func(args ...string) string {
		t.Helper()
		code, out, errs := srtool(t, args...)
		if code != 0 {
			t.Fatalf("srtool %s: exit %d: %s", strings.Join(args[:1], " "), code, errs)
		}
		return out
	}
	run("init", "--arch", "resnet-small", "--in", "1,8,8", "--width", "2", "--classes", "4", "--seed", "3", "-o", p("init.onnx"))
	run("train", p("init.onnx"), "--data", D, "--eval-data", E, "--epochs", "3", "--lr", "0.1", "--train-batch", "32", "--eval-n", "128", "-o", p("f.onnx"), "--json", p("f.json"))
	var tr struct {
		Result struct {
			Trials []struct {
				BestAcc float64 `json:"BestAcc"`
			} `json:"Trials"`
		} `json:"result"`
	}
	readJSON(t, p("f.json"), &tr)
	run("train", p("init.onnx"), "--data", D, "--eval-data", E, "--epochs", "2", "--lr", "0.1", "--train-batch", "32", "--eval-n", "128",
		"--adv", "pgd", "--adv-eps", "0.05", "--adv-alpha", "0.02", "--adv-steps", "2", "--seed", "2", "-o", p("fstar.onnx"))
	out := run("finetune", p("fstar.onnx"), "--tail-from", p("f.onnx"), "--fb-layers", "4", "--data", D, "--eval-data", E, "--epochs", "2",
		"--train-batch", "32", "--eval-n", "128", "--eval-attack", "fgsm", "--eps", "0.05", "--adv", "none", "-o", p("ft.onnx"), "--json", p("ft.json"),
		"--safetensors", p("ft.safetensors"))
	if !strings.Contains(out, "Acc*") {
		t.Errorf("finetune output lacks the accuracies:\n%s", out)
	}
	var ft struct {
		FbLayers int `json:"fb_layers"`
		Outcome  struct {
			AccStar  float64 `json:"acc_star"`
			AccSR    float64 `json:"acc_sr"`
			AccTilde float64 `json:"acc_tilde"`
		} `json:"outcome"`
	}
	readJSON(t, p("ft.json"), &ft)
	if ft.FbLayers != 4 {
		t.Errorf("fb_layers = %d; want 4", ft.FbLayers)
	}
	for _, v := range []float64{ft.Outcome.AccStar, ft.Outcome.AccSR, ft.Outcome.AccTilde} {
		if v < 0 || v > 100 {
			t.Errorf("accuracy %v outside [0,100]", v)
		}
	}
	// The head is frozen: every head parameter and BN statistic of the
	// result equals the robust model's bit for bit; the tail moved away
	// from the normal model's.
	robust, _ := onnxio.Read(p("fstar.onnx"))
	normal, _ := onnxio.Read(p("f.onnx"))
	res, err := onnxio.Read(p("ft.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	an, _ := analyzer.Analyze(robust)
	cut, _ := an.CutTail(4)
	part := an.Partition(cut)
	same := func(a, b *onnxio.Model, name string) bool {
		x, _ := onnxio.Float32s(a.Initializer(name))
		y, _ := onnxio.Float32s(b.Initializer(name))
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if x[i] != y[i] {
				return false
			}
		}
		return true
	}
	for _, name := range append(append([]string(nil), part.HeadParams...), part.HeadStats...) {
		if !same(res, robust, name) {
			t.Errorf("head tensor %s changed during fine-tuning", name)
		}
	}
	moved := 0
	for _, name := range part.TailParams {
		if !same(res, normal, name) {
			moved++
		}
	}
	if moved == 0 {
		t.Errorf("no tail parameter moved away from the normal model's")
	}
	if _, err := os.Stat(p("ft.safetensors")); err != nil {
		t.Errorf("safetensors not written: %v", err)
	}
	// TRADES fine-tuning keeps the head frozen too.
	run("finetune", p("fstar.onnx"), "--tail-from", p("f.onnx"), "--fb-layers", "4", "--data", D, "--eval-data", E, "--epochs", "1",
		"--train-batch", "32", "--eval-n", "64", "--adv", "trades", "--adv-eps", "0.05", "--adv-alpha", "0.02", "--adv-steps", "2", "-o", p("trades.onnx"))
	tres, err := onnxio.Read(p("trades.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range part.HeadParams {
		if !same(tres, robust, name) {
			t.Errorf("TRADES fine-tuning changed head tensor %s", name)
		}
	}
	// The experiment command writes its report.
	run("semirobust", "--normal", p("f.onnx"), "--robust", p("fstar.onnx"), "--data", D, "--eval-data", E, "--eval-n", "64", "--rho-n", "64",
		"--attacks", "fgsm", "--eps", "0.05", "--fb-layers", "2", "--epochs", "1", "--train-batch", "32", "--adv", "none", "--linear", "-o", p("run"))
	md, err := os.ReadFile(p("run/report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "| fgsm | 2 |") {
		t.Errorf("report.md lacks the fgsm K=2 row:\n%s", md)
	}
	var sr struct {
		Rows []struct {
			AccLinear *float64 `json:"acc_linear"`
		} `json:"rows"`
	}
	readJSON(t, p("run/report.json"), &sr)
	if len(sr.Rows) != 1 || sr.Rows[0].AccLinear == nil || *sr.Rows[0].AccLinear < 0 || *sr.Rows[0].AccLinear > 100 {
		t.Errorf("report.json rows = %+v; want one row with an Algorithm S1 accuracy", sr.Rows)
	}
	for _, f := range []string{"report.json", "accuracy_fgsm_K2.png", "rho_fgsm_K2.png", "semirobust_fgsm_K2.onnx"} {
		if _, err := os.Stat(p("run/" + f)); err != nil {
			t.Errorf("%s missing: %v", f, err)
		}
	}
	// Bad input: mismatched architectures, nothing to train.
	code, _, errs := srtool(t, "finetune", p("fstar.onnx"), "--tail-from", filepath.Join(models, "resnet10_cifar_train.onnx"), "--fb-layers", "2", "--data", D, "-o", p("x.onnx"))
	if code == 0 || !strings.Contains(errs, "do not match") {
		t.Errorf("mismatched architectures: exit %d, %q", code, errs)
	}
	code, _, errs = srtool(t, "train", p("init.onnx"), "--data", D, "-o", p("y.onnx"))
	if code != 2 || !strings.Contains(errs, "--eval-data") {
		t.Errorf("npz without --eval-data: exit %d, %q; want a usage error naming --eval-data", code, errs)
	}
	if _, err := os.Stat(p("x.onnx")); err == nil {
		t.Errorf("output written for a failed finetune")
	}
}

func TestWeightsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(models, "wrn16_1_train.onnx")
	st := filepath.Join(dir, "w.safetensors")
	if code, _, errs := srtool(t, "weights", "export", model, "-o", st); code != 0 {
		t.Fatalf("export: %s", errs)
	}
	out := filepath.Join(dir, "m.onnx")
	if code, _, errs := srtool(t, "weights", "import", model, "--from", st, "-o", out); code != 0 {
		t.Fatalf("import: %s", errs)
	}
	a, _ := onnxio.Read(model)
	b, err := onnxio.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, init := range a.Graph().Initializer {
		x, _ := onnxio.Float32s(init)
		y, _ := onnxio.Float32s(b.Initializer(init.Name))
		for i := range x {
			if x[i] != y[i] {
				t.Fatalf("%s changed in the round trip", init.Name)
			}
		}
	}
	code, _, errs := srtool(t, "weights", "export", filepath.Join(models, "wrn16_1_eval.onnx"), "-o", st)
	if code == 0 || !strings.Contains(errs, "PRESERVE") {
		t.Errorf("folded-BN export: exit %d, %q; want advice to re-export", code, errs)
	}
}

// tinyModelPair writes n tiny samples and trains a normal f and an f* (two
// seeds, one epoch) on them in a temporary folder. It returns the data
// SPEC and the folder's path maker.
func tinyModelPair(t *testing.T, n int) (data string, path func(string) string) {
	t.Helper()
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	tinyData(t, p("data.npz"), n, 5)
	D := "npz:" + p("data.npz")
	for _, args := range [][]string{
		{"init", "--arch", "resnet-small", "--in", "1,8,8", "--width", "2", "--classes", "4", "--seed", "3", "-o", p("init.onnx")},
		{"train", p("init.onnx"), "--data", D, "--eval-data", D, "--epochs", "1", "--lr", "0.1", "--train-batch", "32", "-o", p("f.onnx")},
		{"train", p("init.onnx"), "--data", D, "--eval-data", D, "--epochs", "1", "--lr", "0.1", "--train-batch", "32", "--seed", "2", "-o", p("fstar.onnx")},
	} {
		if code, _, errs := srtool(t, args...); code != 0 {
			t.Fatalf("%s: %s", args[0], errs)
		}
	}
	return D, p
}

// TestFinetuneResume stops a fine-tuning run after its first epoch's
// checkpoint (as Ctrl-C would) and resumes it; the final weights must equal
// those of an uninterrupted run.
func TestFinetuneResume(t *testing.T) {
	D, p := tinyModelPair(t, 192)
	ft := func(out, ckpt string, extra ...string) []string {
		return append([]string{"finetune", p("fstar.onnx"), "--tail-from", p("f.onnx"), "--fb-layers", "4", "--data", D, "--eval-data", D,
			"--epochs", "3", "--train-batch", "16", "--target", "100", "--adv", "none", "--threads", "1", "--checkpoint-dir", ckpt, "-o", out}, extra...)
	}
	if code, _, errs := srtool(t, ft(p("whole.onnx"), p("ck1"))...); code != 0 {
		t.Fatalf("uninterrupted run: %s", errs)
	}
	// Interrupted run: cancel as soon as the first checkpoint exists.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if _, err := os.Stat(p("ck2/checkpoint.safetensors")); err == nil {
				cancel()
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	var out, errb bytes.Buffer
	code := run(ctx, append([]string{"srtool"}, ft(p("part.onnx"), p("ck2"))...), &out, &errb)
	cancel()
	<-done
	if code == 0 {
		t.Skip("the run finished before it could be interrupted (machine too fast for this tiny model)")
	}
	if code, _, errs := srtool(t, ft(p("resumed.onnx"), p("ck2"), "--resume")...); code != 0 {
		t.Fatalf("resume: %s", errs)
	}
	a, err := onnxio.Read(p("whole.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := onnxio.Read(p("resumed.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	for _, init := range a.Graph().Initializer {
		x, _ := onnxio.Float32s(init)
		y, _ := onnxio.Float32s(b.Initializer(init.Name))
		for i := range x {
			if x[i] != y[i] {
				t.Fatalf("%s[%d] = %v after resume; %v uninterrupted", init.Name, i, y[i], x[i])
			}
		}
	}
}

func TestEvalAndSplitAtTensor(t *testing.T) {
	dir := t.TempDir()
	data := "npz:../../testdata/fixtures/attacks/fmnist_test_5000_5300.npz"
	js, logits := filepath.Join(dir, "e.json"), filepath.Join(dir, "z.npy")
	code, out, errs := srtool(t, "eval", sharedModel, "--data", data, "--batch", "64", "--json", js, "--save-logits", logits)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rep struct {
		N     int     `json:"n"`
		Clean float64 `json:"clean_accuracy"`
	}
	readJSON(t, js, &rep)
	// reference.json: clean accuracy 86.333 % on these 300 images.
	if rep.N != 300 || math.Abs(rep.Clean-86.3333) > 1e-3 {
		t.Errorf("eval = %d samples, %.4f%%; want 300 and 86.3333%% (reference.json)\n%s", rep.N, rep.Clean, out)
	}
	z, err := npy.ReadFile(logits)
	if err != nil || len(z.Shape) != 2 || z.Shape[0] != 300 || z.Shape[1] != 10 {
		t.Errorf("saved logits: %v, %v; want 300×10", z, err)
	}
	// --at-tensor at a block output equals --at 3.
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if code, _, errs := srtool(t, "split", sharedModel, "--at-tensor", "/layer1/layer1.0/Relu_1_output_0", "-o", a); code != 0 {
		t.Fatalf("split --at-tensor: %s", errs)
	}
	if code, _, errs := srtool(t, "split", sharedModel, "--at", "3", "-o", b); code != 0 {
		t.Fatalf("split --at: %s", errs)
	}
	for _, f := range []string{"head.onnx", "tail.onnx"} {
		x, _ := os.ReadFile(filepath.Join(a, f))
		y, _ := os.ReadFile(filepath.Join(b, f))
		if len(x) == 0 || !bytes.Equal(x, y) {
			t.Errorf("%s from --at-tensor differs from --at 3", f)
		}
	}
	if code, _, errs := srtool(t, "split", sharedModel, "--at-tensor", "/layer1/layer1.0/Relu_output_0", "-o", filepath.Join(dir, "c")); code == 0 || !strings.Contains(errs, "tail also needs") {
		t.Errorf("split inside a block: exit %d, %q", code, errs)
	}
}

// TestFinetuneFeatureCache checks that clean fine-tuning on cached head
// features trains the same tail as running the head in every step, and
// that the cache is refused where it would change the result.
func TestFinetuneFeatureCache(t *testing.T) {
	D, p := tinyModelPair(t, 160)
	ft := func(out string, extra ...string) string {
		args := append([]string{"finetune", p("fstar.onnx"), "--tail-from", p("f.onnx"), "--fb-layers", "5", "--data", D, "--eval-data", D,
			"--epochs", "2", "--train-batch", "16", "--lr", "0.05", "--target", "100", "--adv", "none", "--threads", "1", "-o", out}, extra...)
		code, stdout, errs := srtool(t, args...)
		if code != 0 {
			t.Fatalf("finetune %q: %s", extra, errs)
		}
		return stdout
	}
	if out := ft(p("cached.onnx")); !strings.Contains(out, "features computed once") {
		t.Fatalf("clean fine-tuning did not cache the head's features:\n%s", out)
	}
	if out := ft(p("plain.onnx"), "--feature-cache-mb", "0"); !strings.Contains(out, "head run every step: --feature-cache-mb 0") {
		t.Fatalf("--feature-cache-mb 0 did not turn the cache off:\n%s", out)
	}
	for flag, why := range map[string][]string{
		"adversarial fine-tuning": {"--adv", "pgd", "--epochs", "1"},
		"--head-bn train":         {"--head-bn", "train", "--epochs", "1"},
		"augmentation":            {"--flip", "--epochs", "1"},
	} {
		if out := ft(p("x.onnx"), why...); !strings.Contains(out, "head run every step: "+flag) {
			t.Errorf("%v: want the head run every step because of %s:\n%s", why, flag, out)
		}
	}
	a, err := onnxio.Read(p("cached.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := onnxio.Read(p("plain.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	changed := 0
	start, err := onnxio.Read(p("fstar.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	for _, init := range a.Graph().Initializer {
		x, _ := onnxio.Float32s(init)
		y, _ := onnxio.Float32s(b.Initializer(init.Name))
		var num, den float64
		for i := range x {
			num += float64(x[i]-y[i]) * float64(x[i]-y[i])
			den += float64(y[i]) * float64(y[i])
		}
		if num > 1e-8*math.Max(den, 1e-12) {
			t.Errorf("%s: cached and uncached fine-tuning differ (relative L2 %.2g)", init.Name, math.Sqrt(num/den))
		}
		if s := start.Initializer(init.Name); s != nil {
			z, _ := onnxio.Float32s(s)
			if len(z) == len(x) && !slices.Equal(z, x) {
				changed++
			}
		}
	}
	if changed == 0 {
		t.Fatal("fine-tuning changed no weight")
	}

	// Features larger than the limit are not cached.
	robust, _ := onnxio.Read(p("fstar.onnx"))
	normal, _ := onnxio.Read(p("f.onnx"))
	setup, err := semirobust.NewSetup(robust, normal, 0, 5, "eval")
	if err != nil {
		t.Fatal(err)
	}
	train := &dataset.Dataset{X: make([]float32, 10*64), Y: make([]int64, 10), C: 1, H: 8, W: 8, Classes: 4, Name: "zeros"}
	hf, reason, err := semirobust.CacheHeadFeatures(context.Background(), setup, train, ort.Options{Threads: 1}, 4, 100)
	if err != nil || hf != nil || !strings.Contains(reason, "> the limit of 100 bytes") {
		t.Fatalf("10 samples over a 100-byte limit: cached %v, reason %q, err %v; want a refusal", hf != nil, reason, err)
	}
	hf, _, err = semirobust.CacheHeadFeatures(context.Background(), setup, train, ort.Options{Threads: 1}, 4, 1<<20)
	if err != nil || hf == nil || hf.Train.Len() != 10 || len(hf.Train.X) != 10*hf.Train.C {
		t.Fatalf("10 samples within 1 MiB: %+v, %v", hf, err)
	}
}
