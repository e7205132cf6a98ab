package dataset

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestSelectionRefusals(t *testing.T) {
	npz := "npz:" + filepath.Join("..", "testdata", "demo", "fmnist_test_1000.npz")
	for _, tc := range []struct {
		name  string
		load  func() (*Dataset, error)
		want  string
		usage bool // wraps ErrOption
	}{
		{"no spec", Selection{Split: "test", Batch: 1}.Load, "--data is required", true},
		{"batch", Selection{Spec: npz, Split: "test"}.Load, "--batch must be at least 1", true},
		{"split", Selection{Spec: npz, Split: "val", Batch: 1}.Load, `--split "val": want train or test`, true},
		{"negative", Selection{Spec: npz, Split: "test", Batch: 1, N: -1}.Load, "--n and --offset must not be negative", true},
		{"too few", Selection{Spec: npz, Split: "test", Batch: 1, N: 10, Offset: 995}.Load, "--n 10 but " + npz + " has only 5 samples after --offset 995", true},
		{"missing", Selection{Spec: "npz:nowhere.npz", Split: "test", Batch: 1}.Load, "data npz:nowhere.npz: ", false},
		{"train offset", Selection{Spec: npz, Split: "train", Batch: 1, Offset: 1000}.LoadTrain, "training data " + npz + ": ", false},
		{"train negative", Selection{Spec: npz, Split: "x", Batch: 1, N: -1}.LoadTrain, "--n and --offset must not be negative", true},
		{"eval n", func() (*Dataset, error) { return LoadEval("", npz, -1) }, "--eval-n -1: must not be negative (0 = all)", true},
		{"eval split", func() (*Dataset, error) { return LoadEval("", npz, 0) }, "--data " + npz + " has no separate test split", true},
	} {
		_, err := tc.load()
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || errors.Is(err, ErrOption) != tc.usage {
			t.Errorf("%s: error %v; want one starting %q (wraps ErrOption: %v)", tc.name, err, tc.want, tc.usage)
		}
	}
}

func TestSelectionLoads(t *testing.T) {
	npz := "npz:" + filepath.Join("..", "testdata", "demo", "fmnist_test_1000.npz")
	d, err := Selection{Spec: npz, Split: "test", Batch: 1, N: 10, Offset: 5}.Load()
	if err != nil || d.Len() != 10 {
		t.Fatalf("Load = %v samples, %v; want 10", d, err)
	}
	e, err := LoadEval(npz, "cifar10:x", 20)
	if err != nil || e.Len() != 20 {
		t.Fatalf("LoadEval = %v, %v; want 20 samples", e, err)
	}
}
