//go:build cgo

package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// TestOfficialReference compares srtool's attacks with the numbers in
// testdata/fixtures/attacks/reference.json: PyTorch 1.13's FGSM and PGD-20
// (no random start, step 0.01) and the official AutoAttack's APGD-CE and
// APGD-T (100 iterations, seed 0) on a PGD-trained Fashion-MNIST ResNet,
// 300 test images, ε = 0.1.
func TestOfficialReference(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the APGD runs take minutes")
	}
	const dir = "../../testdata/fixtures/attacks"
	var ref struct {
		Eps     float64            `json:"eps"`
		Results map[string]float64 `json:"results"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	model, data := filepath.Join(dir, "fmnist_rn_w8_pgd.onnx"), "npz:"+filepath.Join(dir, "fmnist_test_5000_5300.npz")
	cases := []struct {
		key, attack, convention string
		extra                   []string
		tol                     float64
	}{
		// PyTorch scripts measure accuracy on the adversarial examples of every point.
		{"fgsm", "fgsm", "adv-acc", nil, 0.34},
		{"pgd20_no_random_start_alpha0.01", "pgd", "adv-acc", []string{"--steps", "20", "--alpha", "0.01", "--no-random-start"}, 0.34},
		// The official AutoAttack attacks only clean-correct points.
		{"apgd-ce", "apgd-ce", "aa", []string{"--seed", "0"}, 1},
		{"apgd-t", "apgd-t", "aa", []string{"--seed", "0"}, 1},
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) {
			js := filepath.Join(t.TempDir(), "r.json")
			args := append([]string{"attack", model, "--data", data, "--attack", c.attack, "--eps", "0.1", "--convention", c.convention, "--json", js}, c.extra...)
			code, _, errs := srtool(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			var got struct {
				Clean  float64 `json:"clean_accuracy"`
				Robust float64 `json:"robust_accuracy"`
				Per    []struct {
					Accuracy float64 `json:"accuracy"`
				} `json:"per_attack"`
			}
			b, _ := os.ReadFile(js)
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			acc := got.Robust
			if c.convention == "adv-acc" {
				acc = got.Per[0].Accuracy
			}
			want := ref.Results[c.key]
			if math.Abs(acc-want) > c.tol {
				t.Errorf("%s robust accuracy = %.2f%%; want %.2f%% ± %.2f (reference.json)", c.key, acc, want, c.tol)
			}
			if math.Abs(got.Clean-ref.Results["clean"]) > 1e-4 { // reference.json holds float32 percentages
				t.Errorf("clean accuracy = %.2f%%; want %.2f%%", got.Clean, ref.Results["clean"])
			}
		})
	}
}
