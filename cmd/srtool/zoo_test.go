//go:build cgo

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/semirobust/srtool/checkpoint"
	"github.com/semirobust/srtool/npy"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/report"
)

// zooFixtures is testdata/zoo, written by testdata/gen_zoo.py.
const zooFixtures = "../../testdata/zoo"

func TestZooList(t *testing.T) {
	js := filepath.Join(t.TempDir(), "zoo.json")
	code, out, errs := srtool(t, "zoo", "list", "--dataset", "cifar100", "--json", js)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"cifar100/Linf/Rice2020Overfitting", "preact-resnet18-bn", "mu (0.5071, 0.4865, 0.4409)",
		"cifar100/Linf/Addepalli2021Towards_WRN34", "wrn-34-10 +sub_block1", "65.73", "30.35",
		"RobustBench 78fcc9e48a07",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("zoo list lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "cifar10/") {
		t.Errorf("--dataset cifar100 listed CIFAR-10 models:\n%s", out)
	}
	var rep struct {
		Complete bool `json:"complete"`
		Run      struct {
			Command string `json:"command"`
		} `json:"run"`
		Source struct {
			Commit string `json:"commit"`
		} `json:"source"`
		Models []struct {
			ID            string   `json:"id"`
			AutoAttackAcc *float64 `json:"autoattack_acc"`
		} `json:"models"`
	}
	readJSON(t, js, &rep)
	if !rep.Complete || !strings.HasSuffix(rep.Run.Command, "list") || len(rep.Source.Commit) != 40 || len(rep.Models) < 20 {
		t.Errorf("report: complete %v, command %q, commit %q, %d models", rep.Complete, rep.Run.Command, rep.Source.Commit, len(rep.Models))
	}
	if code, out, _ := srtool(t, "zoo", "list", "--excluded"); code != 0 || !strings.Contains(out, "DMWideResNet") {
		t.Errorf("zoo list --excluded: exit %d:\n%s", code, out)
	}
	if code, _, errs := srtool(t, "zoo", "list", "--threat", "L3"); code != exitUsage || !strings.Contains(errs, `--threat "L3" matches no model`) {
		t.Errorf("--threat L3: exit %d, %s; want a usage error", code, errs)
	}
}

// TestZooImport imports the WRN fixture with sub_block1 tensors and the
// PRIME ResNet-18 whose mu/sigma differ from the table by ID, and checks
// output, report and the model's logits against PyTorch's.
func TestZooImport(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		fixture, id, width string
		stdout             []string
	}{
		{"carmon2019unlabeled", "cifar10/Linf/Carmon2019Unlabeled", "1", []string{
			`(the state_dict under "state_dict")`, "dropped 41 sub_block1.* tensors", "sub_block1.layer.3.conv2.weight", "input normalisation: none",
			"clean 89.69 %, AutoAttack 59.53 % at Linf 8/255",
		}},
		{"modas2021prime_c100", "cifar100/Modas2021PRIMEResNet18", "2", []string{
			"cifar100/corruptions/Modas2021PRIMEResNet18: resnet18, 100 classes, base width 2",
			"mu (0.5071, 0.4865, 0.4409), sigma (0.2673, 0.2564, 0.2762), from the checkpoint's mu/sigma",
			"differ from RobustBench's class definition (mu (0.5, 0.5, 0.5), sigma (0.5, 0.5, 0.5)); the checkpoint's are used",
		}},
	}
	for _, c := range cases {
		t.Run(c.fixture, func(t *testing.T) {
			out := filepath.Join(dir, c.fixture+".onnx")
			js := filepath.Join(dir, c.fixture+".json")
			ck := filepath.Join(zooFixtures, c.fixture+".pt")
			code, stdout, errs := srtool(t, "zoo", "import", c.id, "--from", ck, "-o", out, "--width", c.width, "--json", js)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			for _, want := range c.stdout {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout)
				}
			}
			var rep struct {
				Complete bool              `json:"complete"`
				ID       string            `json:"id"`
				Arch     string            `json:"arch"`
				Dropped  []string          `json:"dropped"`
				SHA256   map[string]string `json:"sha256"`
				Entry    struct {
					CleanAcc float64 `json:"clean_acc"`
				} `json:"entry"`
				Normalization *struct {
					Source    string    `json:"source"`
					TableMean []float32 `json:"table_mean"`
				} `json:"normalization"`
				Run struct {
					Flags map[string]any `json:"flags"`
				} `json:"run"`
			}
			readJSON(t, js, &rep)
			digests, err := report.FileDigests(out)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Complete || rep.SHA256[out] != digests[out] || rep.Entry.CleanAcc == 0 || rep.Run.Flags["width"] == nil {
				t.Errorf("report: complete %v, sha256 %v (file %s), clean %v, flags %v", rep.Complete, rep.SHA256, digests[out], rep.Entry.CleanAcc, rep.Run.Flags)
			}
			if strings.HasPrefix(c.id, "cifar10/") && (len(rep.Dropped) != 41 || rep.Normalization != nil) {
				t.Errorf("WRN report: dropped %d, normalisation %+v; want 41 and none", len(rep.Dropped), rep.Normalization)
			}
			if c.fixture == "modas2021prime_c100" && (rep.Normalization == nil || rep.Normalization.Source != "checkpoint" || len(rep.Normalization.TableMean) != 3) {
				t.Errorf("PRIME report normalisation %+v; want the checkpoint's, with the table's recorded", rep.Normalization)
			}
			// Later commands see [0,1] inputs with no flags: eval's saved
			// logits are PyTorch's.
			g, err := npy.ReadNPZ(filepath.Join(zooFixtures, c.fixture+".npz"))
			if err != nil {
				t.Fatal(err)
			}
			xu8 := g["x_u8"]
			x := make([]float32, len(xu8.Data))
			for i, k := range xu8.Data {
				x[i] = float32(k) / 255
			}
			xp, yp, lp := filepath.Join(dir, c.fixture+"_x.npy"), filepath.Join(dir, c.fixture+"_y.npy"), filepath.Join(dir, c.fixture+"_logits.npy")
			if err := npy.WriteFile(xp, npy.FromFloat32(x, xu8.Shape...)); err != nil {
				t.Fatal(err)
			}
			if err := npy.WriteFile(yp, npy.FromInt64(make([]int64, xu8.Shape[0]), xu8.Shape[0])); err != nil {
				t.Fatal(err)
			}
			if code, _, errs := srtool(t, "eval", out, "--data", "npy:"+xp+","+yp, "--save-logits", lp); code != 0 {
				t.Fatalf("eval: exit %d: %s", code, errs)
			}
			got, err := npy.ReadFile(lp)
			if err != nil {
				t.Fatal(err)
			}
			if rel := relErr(got.Float32(), g["logits"].Float32()); rel > 1e-4 {
				t.Errorf("eval logits ‖ORT − PyTorch‖/‖PyTorch‖ = %.3g; want ≤ 1e-4", rel)
			}
		})
	}
}

// TestZooImportRefuses: a checkpoint that does not fit the ID exits 1 with
// the differences on stderr and in an incomplete report, and writes no model.
func TestZooImportRefuses(t *testing.T) {
	dir := t.TempDir()
	ck := filepath.Join(zooFixtures, "wong2020fast.pt")
	sd, err := checkpoint.Read(ck)
	if err != nil {
		t.Fatal(err)
	}
	delete(sd, "linear.bias")
	missing := filepath.Join(dir, "missing.safetensors")
	if err := checkpoint.WriteSafetensors(missing, sd, nil); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, id, from, width string
		stderr                []string
		missing, unexpected   int
	}{
		{"wrong id", "cifar10/L2/Rice2020Overfitting", ck, "2",
			[]string{"checkpoint does not fit cifar10/L2/Rice2020Overfitting (preact-resnet18-bn", "4 missing from the checkpoint (bn.bias, bn.running_mean, bn.running_var, bn.weight)", "looks like preact-resnet18 at base width 2"}, 4, 0},
		{"missing tensor", "cifar10/Linf/Wong2020Fast", missing, "2",
			[]string{"1 missing from the checkpoint (linear.bias)"}, 1, 0},
		{"wrong width", "cifar10/Linf/Wong2020Fast", ck, "0",
			[]string{"85 with a different shape or type (conv1.weight (checkpoint F32 [2 3 3 3] vs model [64 3 3 3])"}, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, "m.onnx")
			js := filepath.Join(dir, "r.json")
			code, _, errs := srtool(t, "zoo", "import", c.id, "--from", c.from, "-o", out, "--width", c.width, "--json", js)
			if code != exitFailed {
				t.Fatalf("exit %d; want %d: %s", code, exitFailed, errs)
			}
			for _, want := range c.stderr {
				if !strings.Contains(errs, want) {
					t.Errorf("stderr lacks %q:\n%s", want, errs)
				}
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("a refused import wrote %s (%v)", out, err)
			}
			var rep struct {
				Complete    bool   `json:"complete"`
				Reason      string `json:"incomplete_reason"`
				Differences struct {
					Missing    []string `json:"missing"`
					Unexpected []string `json:"unexpected"`
					Shape      []string `json:"shape"`
				} `json:"differences"`
			}
			readJSON(t, js, &rep)
			if rep.Complete || rep.Reason == "" || len(rep.Differences.Missing) != c.missing || len(rep.Differences.Unexpected) != c.unexpected {
				t.Errorf("report: complete %v, reason %q, differences %+v", rep.Complete, rep.Reason, rep.Differences)
			}
			os.Remove(js)
		})
	}
	if code, _, errs := srtool(t, "zoo", "import", "Rice2020Overfitting", "--from", ck, "-o", filepath.Join(dir, "m.onnx")); code != exitFailed || !strings.Contains(errs, "ambiguous") {
		t.Errorf("ambiguous name: exit %d, %s", code, errs)
	}
}

// TestZooModelLoads: the imported model is an ordinary srtool model (layers
// sees the normalisation as part of the graph, not as a weight layer).
func TestZooModelLoads(t *testing.T) {
	out := filepath.Join(t.TempDir(), "wong.onnx")
	if code, _, errs := srtool(t, "zoo", "import", "cifar10/Linf/Wong2020Fast", "--from", filepath.Join(zooFixtures, "wong2020fast.pt"), "-o", out, "--width", "2"); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	m, err := onnxio.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	meta := map[string]string{}
	for _, p := range m.Proto.GetMetadataProps() {
		meta[p.GetKey()] = p.GetValue()
	}
	if meta["srtool.zoo.id"] != "cifar10/Linf/Wong2020Fast" || !strings.Contains(meta["srtool.zoo.source"], "78fcc9e48a07") {
		t.Errorf("metadata %v", meta)
	}
	var cfg struct {
		Normalize *struct{ Mean []float32 } `json:"normalize"`
	}
	if err := json.Unmarshal([]byte(meta["srtool.arch.config"]), &cfg); err != nil || cfg.Normalize == nil {
		t.Errorf("srtool.arch.config %q (%v); want the normalisation recorded", meta["srtool.arch.config"], err)
	}
	code, stdout, errs := srtool(t, "layers", out)
	if code != 0 || !strings.Contains(stdout, "21 weight layers") {
		t.Errorf("layers: exit %d, %s\n%s", code, errs, stdout)
	}
}
