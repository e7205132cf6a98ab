package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/semirobust/srtool/npy"
)

// TestMain lets the test binary act as srtool itself (SRTOOL_TEST_AS_MAIN=1),
// so the signal tests run the real process without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("SRTOOL_TEST_AS_MAIN") == "1" {
		os.Args = append([]string{"srtool"}, os.Args[1:]...)
		if p := os.Getenv("SRTOOL_TEST_READY"); p != "" {
			onSignalsReady = func() { os.WriteFile(p, nil, 0o644) }
		}
		main()
		return
	}
	os.Exit(m.Run())
}

const demoTest = "npz:../../testdata/demo/fmnist_test_1000.npz"

// writeNPZ writes a small Fashion-MNIST-shaped data set with the given
// channel count, labels and pixel scale.
func writeNPZ(t *testing.T, c int, labels []int64, scale float32) string {
	t.Helper()
	n := len(labels)
	x := make([]float32, n*c*28*28)
	for i := range x {
		x[i] = scale * float32(i%251) / 250
	}
	p := filepath.Join(t.TempDir(), "data.npz")
	if err := npy.WriteNPZ(p, map[string]*npy.Array{"x": npy.FromFloat32(x, n, c, 28, 28), "y": npy.FromInt64(labels, n)}); err != nil {
		t.Fatal(err)
	}
	return "npz:" + p
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"nosuch"}, `unknown command "nosuch"`},
		{"missing required flag", []string{"split", sharedModel, "--at", "2"}, "Required flag"},
		{"threads above 4 × CPUs", []string{"eval", sharedModel, "--data", demoTest, "--threads", "100000"}, "--threads 100000 is outside"},
		{"negative threads", []string{"eval", sharedModel, "--data", demoTest, "--threads", "-1"}, "--threads -1 is outside"},
		{"n above the data", []string{"eval", sharedModel, "--data", demoTest, "--n", "5000"}, "has only 1000 samples"},
		{"bad split", []string{"eval", sharedModel, "--data", demoTest, "--split", "val"}, `--split "val"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := srtool(t, tc.args...)
			if code != exitUsage || !strings.Contains(errs, tc.want) || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
				t.Errorf("exit %d, stderr %q; want exit 2 and one line with %q", code, errs, tc.want)
			}
		})
	}
}

func TestEvalRefusesLabelsOutsideClasses(t *testing.T) {
	data := writeNPZ(t, 1, []int64{0, 1, 10, 3}, 1)
	code, out, errs := srtool(t, "eval", sharedModel, "--data", data)
	if code != exitFailed || !strings.Contains(errs, "label 10 of sample 2") || !strings.Contains(errs, "10 classes") || out != "" {
		t.Errorf("exit %d, stdout %q, stderr %q; want the label refused", code, out, errs)
	}
}

func TestEvalShapeMismatchOneSentence(t *testing.T) {
	data := writeNPZ(t, 3, []int64{0, 1}, 1)
	code, _, errs := srtool(t, "eval", sharedModel, "--data", data)
	if code != exitFailed || !strings.Contains(errs, "1×28×28") || !strings.Contains(errs, "3×28×28") || strings.Contains(errs, "onnxruntime") {
		t.Errorf("exit %d, stderr %q; want both shapes named", code, errs)
	}
}

func TestEvalReportRecordsRun(t *testing.T) {
	js := filepath.Join(t.TempDir(), "eval.json")
	code, _, errs := srtool(t, "eval", sharedModel, "--data", demoTest, "--n", "200", "--batch", "64", "--json", js)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rep struct {
		Complete bool `json:"complete"`
		Run      struct {
			Tool        string         `json:"tool"`
			Version     string         `json:"version"`
			Command     string         `json:"command"`
			CommandLine []string       `json:"command_line"`
			Flags       map[string]any `json:"flags"`
		} `json:"run"`
		CleanAccuracy *float64 `json:"clean_accuracy"`
		Evaluated     int      `json:"evaluated"`
	}
	readJSON(t, js, &rep)
	if !rep.Complete || rep.CleanAccuracy == nil || rep.Evaluated != 200 {
		t.Errorf("complete %v, accuracy %v, evaluated %d", rep.Complete, rep.CleanAccuracy, rep.Evaluated)
	}
	if rep.Run.Tool != "srtool" || rep.Run.Version == "" || rep.Run.Command != "eval" || len(rep.Run.CommandLine) < 3 {
		t.Errorf("run = %+v", rep.Run)
	}
	// Every flag with the value it had, given or default.
	if rep.Run.Flags["batch"] != float64(64) || rep.Run.Flags["split"] != "test" || rep.Run.Flags["seed"] != float64(1) {
		t.Errorf("flags = %v", rep.Run.Flags)
	}
}

func TestEvalInterruptedReportsNoAccuracy(t *testing.T) {
	js := filepath.Join(t.TempDir(), "eval.json")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errb bytes.Buffer
	code := run(ctx, []string{"srtool", "eval", sharedModel, "--data", demoTest, "--json", js}, &out, &errb)
	if code != exitInterrupted {
		t.Fatalf("exit %d; want 130: %s", code, errb.String())
	}
	if !strings.HasPrefix(errb.String(), "interrupted: ") || strings.Count(errb.String(), "\n") != 1 {
		t.Errorf("stderr %q; want one interrupted: line", errb.String())
	}
	if !strings.Contains(out.String(), "not finished") || strings.Contains(out.String(), "%") {
		t.Errorf("stdout %q; want no accuracy", out.String())
	}
	var rep map[string]any
	readJSON(t, js, &rep)
	if rep["complete"] != false || rep["clean_accuracy"] != nil || rep["correct"] != nil {
		t.Errorf("report %v; want complete false and no accuracy", rep)
	}
}

// startSrtool starts this test binary as srtool with args.
func startSrtool(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ready := filepath.Join(t.TempDir(), "ready")
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), "SRTOOL_TEST_AS_MAIN=1", "SRTOOL_TEST_READY="+ready)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Signals sent before the handlers are installed kill the process the
	// default way; wait until main has installed them.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("srtool did not start within 30 s; stderr %q", errb.String())
		}
	}
	return cmd, &errb
}

// TestSignalsStopTheProcess sends SIGTERM and SIGINT to a real srtool
// process early (model loading and session creation) and during an attack:
// it must exit within 5 s with 143 or 130, print an interrupted: line and
// leave no half-written output.
func TestSignalsStopTheProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts real processes")
	}
	for _, tc := range []struct {
		name  string
		sig   syscall.Signal
		after time.Duration
		code  int
	}{
		{"SIGTERM while starting", syscall.SIGTERM, 0, exitTerminated},
		{"SIGTERM during the attack", syscall.SIGTERM, 1500 * time.Millisecond, exitTerminated},
		{"SIGINT during the attack", syscall.SIGINT, 1500 * time.Millisecond, exitInterrupted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			js := filepath.Join(dir, "attack.json")
			cmd, errb := startSrtool(t, "attack", "../../testdata/demo/fmnist_robust.onnx", "--data", demoTest,
				"--attack", "pgd", "--eps", "0.1", "--steps", "200", "--threads", "1", "--json", js)
			time.Sleep(tc.after)
			sent := time.Now()
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			waited := make(chan error, 1)
			go func() { waited <- cmd.Wait() }()
			select {
			case <-waited:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-waited
				t.Fatalf("still running 5 s after %v; stderr %q", tc.sig, errb.String())
			}
			took := time.Since(sent)
			if got := cmd.ProcessState.ExitCode(); got != tc.code {
				t.Errorf("exit %d after %v; want %d; stderr %q", got, tc.sig, tc.code, errb.String())
			}
			if !strings.Contains(errb.String(), "interrupted: ") {
				t.Errorf("stderr %q lacks an interrupted: line", errb.String())
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if e.Name() != "attack.json" {
					t.Errorf("left %s behind", e.Name())
				}
			}
			if b, err := os.ReadFile(js); err == nil {
				var rep map[string]any
				if err := json.Unmarshal(b, &rep); err != nil {
					t.Errorf("half-written report: %v", err)
				} else if rep["complete"] != false || rep["robust_accuracy"] != nil {
					t.Errorf("interrupted report says complete=%v robust_accuracy=%v", rep["complete"], rep["robust_accuracy"])
				}
			}
			t.Logf("%v: exited %d in %v", tc.sig, cmd.ProcessState.ExitCode(), took.Round(time.Millisecond))
		})
	}
}

// TestSplitReportHashesItsFiles: the split report, written last, holds the
// SHA-256 of the head and tail it wrote.
func TestSplitReportHashesItsFiles(t *testing.T) {
	dir := t.TempDir()
	js := filepath.Join(dir, "split.json")
	if code, _, errs := srtool(t, "split", sharedModel, "--fb-layers", "4", "-o", dir, "--json", js); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rep struct {
		Head, Tail string
		SHA256     map[string]string `json:"sha256"`
	}
	readJSON(t, js, &rep)
	for _, p := range []string{rep.Head, rep.Tail} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%x", sha256.Sum256(b)); rep.SHA256[p] != got {
			t.Errorf("sha256[%s] = %q; the file hashes to %s", p, rep.SHA256[p], got)
		}
	}
}

func TestFloatPixels0To255GetAdvice(t *testing.T) {
	data := writeNPZ(t, 1, []int64{0, 1, 2}, 255)
	code, _, errs := srtool(t, "eval", sharedModel, "--data", data)
	if code != exitFailed || !strings.Contains(errs, "divide x by 255") || strings.Contains(errs, "AllowUnnormalized") {
		t.Errorf("exit %d, stderr %q; want advice to divide by 255", code, errs)
	}
	data = writeNPZ(t, 1, []int64{0, 1, 2}, -2)
	if code, _, errs := srtool(t, "eval", sharedModel, "--data", data); code != exitFailed || !strings.Contains(errs, "--mean/--std") {
		t.Errorf("exit %d, stderr %q; want advice about --mean/--std", code, errs)
	}
}

func TestClassFoldersMustMatchTheModel(t *testing.T) {
	dir := t.TempDir()
	for _, class := range []string{"a", "b", "c"} {
		if err := os.MkdirAll(filepath.Join(dir, class), 0o755); err != nil {
			t.Fatal(err)
		}
		img := image.NewGray(image.Rect(0, 0, 28, 28))
		f, err := os.Create(filepath.Join(dir, class, "0.png"))
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	code, _, errs := srtool(t, "eval", sharedModel, "--data", "folder:"+dir)
	if code != exitFailed || !strings.Contains(errs, "3 classes") || !strings.Contains(errs, "10 outputs") {
		t.Errorf("exit %d, stderr %q; want the class count refused", code, errs)
	}
}
