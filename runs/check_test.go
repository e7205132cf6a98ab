package runs

import (
	"errors"
	"testing"

	"github.com/semirobust/srtool/autodiff"
	"github.com/semirobust/srtool/internal/option"
	"github.com/semirobust/srtool/zoo"
)

func TestGradSpec(t *testing.T) {
	s, err := GradSpec("dlr", "none", []string{"input", "fc.weight"})
	if err != nil || s.Loss != autodiff.DLR || s.Reduction != autodiff.None || !s.WrtInput || len(s.WrtParams) != 1 || s.WrtParams[0] != "fc.weight" {
		t.Errorf("GradSpec(dlr, none, input+fc.weight) = %+v, %v", s, err)
	}
	for _, tc := range []struct{ loss, red, want string }{
		{"mse", "mean", `--loss "mse": want ce, cw or dlr`},
		{"ce", "max", `--reduction "max": want mean, sum or none`},
	} {
		if _, err := GradSpec(tc.loss, tc.red, nil); err == nil || err.Error() != tc.want || !errors.Is(err, option.Err) {
			t.Errorf("GradSpec(%s, %s) = %v; want %q wrapping option.Err", tc.loss, tc.red, err, tc.want)
		}
	}
}

func TestParseInputShape(t *testing.T) {
	if in, err := ParseInputShape("3, 32,32"); err != nil || in != [3]int{3, 32, 32} {
		t.Errorf("ParseInputShape(3, 32,32) = %v, %v", in, err)
	}
	for in, want := range map[string]string{
		"3,32":     `--in "3,32": want C,H,W`,
		"3,0,32":   `--in "3,0,32": want three positive integers C,H,W`,
		"3,x,32":   `--in "3,x,32": want three positive integers C,H,W`,
		"3,32,32,": `--in "3,32,32,": want C,H,W`,
	} {
		if _, err := ParseInputShape(in); err == nil || err.Error() != want || !errors.Is(err, option.Err) {
			t.Errorf("ParseInputShape(%q) = %v; want %q", in, err, want)
		}
	}
}

func TestZooListOptionsCheck(t *testing.T) {
	tab, err := zoo.Load()
	if err != nil {
		t.Fatal(err)
	}
	e := tab.Models[0]
	if err := (ZooListOptions{Dataset: e.Dataset, Threat: e.ThreatModel, Arch: e.Arch}).Check(tab); err != nil {
		t.Errorf("the first model's own filters: %v", err)
	}
	if err := (ZooListOptions{Arch: "no-such-arch"}).Check(tab); err == nil || err.Error() != `--arch "no-such-arch" matches no model in the table` || !errors.Is(err, option.Err) {
		t.Errorf("an unknown arch: %v", err)
	}
}
