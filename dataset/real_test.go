package dataset

import (
	"os"
	"slices"
	"testing"
)

// fashionDir is where Debian's dataset-fashion-mnist package installs the
// Fashion-MNIST IDX files (the Makefile installs it on real machines).
const fashionDir = "/usr/share/datasets/fashion-mnist"

func TestRealFashionMNIST(t *testing.T) {
	if _, err := os.Stat(fashionDir); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found: .ci/run installs dataset-fashion-mnist, so CI must have it", fashionDir)
		}
		t.Skipf("%s not found; install Fashion-MNIST with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu)", fashionDir)
	}
	test, err := Load("fashion-mnist:"+fashionDir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if test.Len() != 10000 || test.C != 1 || test.H != 28 || test.W != 28 {
		t.Fatalf("test split: Len, C, H, W = %d, %d, %d, %d; want 10000, 1, 28, 28", test.Len(), test.C, test.H, test.W)
	}
	// The first test labels, from github.com/zalandoresearch/fashion-mnist
	// (and torchvision's FashionMNIST(train=False) targets[:10]).
	if want := []int64{9, 2, 1, 1, 6, 1, 4, 6, 5, 7}; !slices.Equal(test.Y[:10], want) {
		t.Errorf("first test labels = %v; want %v", test.Y[:10], want)
	}
	if err := test.Validate(); err != nil {
		t.Error(err)
	}
	if !testing.Short() { // the train split is 47 MB of pixels
		train, err := LoadFashionMNIST(fashionDir, Options{Split: "train"})
		if err != nil {
			t.Fatal(err)
		}
		counts := make([]int, 10)
		for _, y := range train.Y {
			counts[y]++
		}
		if train.Len() != 60000 || !slices.Equal(counts, []int{6000, 6000, 6000, 6000, 6000, 6000, 6000, 6000, 6000, 6000}) {
			t.Errorf("train split: %d samples, per class %v; want 60000, 6000 each", train.Len(), counts)
		}
	}

	// The attack fixture holds test images 5000..5299 as written by
	// PyTorch; the same window read here must match byte for byte.
	const fixture = "../testdata/fixtures/attacks/fmnist_test_5000_5300.npz"
	if _, err := os.Stat(fixture); err != nil {
		t.Fatalf("fixture %s missing from the repository: %v", fixture, err)
	}
	want, err := Load("npz:"+fixture, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Load("fashion-mnist:"+fashionDir, Options{Offset: 5000, N: 300})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.X, want.X) || !slices.Equal(got.Y, want.Y) {
		t.Errorf("fashion-mnist test[5000:5300] differs from %s", fixture)
	}
	if !slices.Equal(got.X, test.X[5000*784:5300*784]) {
		t.Error("the window differs from the same samples of the whole split")
	}
}
