package runs

import (
	"strconv"
	"strings"

	"github.com/semirobust/srtool/autodiff"
	"github.com/semirobust/srtool/internal/option"
	"github.com/semirobust/srtool/zoo"
)

// GradSpec is the gradient grad computes: the loss (ce, cw or dlr), its
// reduction over the batch (mean, sum or none) and what it is taken with
// respect to ("input" or initializer names). An unknown name wraps
// option.Err.
func GradSpec(loss, reduction string, wrt []string) (autodiff.Spec, error) {
	spec := autodiff.Spec{}
	switch loss {
	case "ce":
		spec.Loss = autodiff.CrossEntropy
	case "cw":
		spec.Loss = autodiff.CWMargin
	case "dlr":
		spec.Loss = autodiff.DLR
	default:
		return spec, option.Errorf("--loss %q: want ce, cw or dlr", loss)
	}
	switch reduction {
	case "mean":
		spec.Reduction = autodiff.Mean
	case "sum":
		spec.Reduction = autodiff.Sum
	case "none":
		spec.Reduction = autodiff.None
	default:
		return spec, option.Errorf("--reduction %q: want mean, sum or none", reduction)
	}
	for _, name := range wrt {
		if name == "input" {
			spec.WrtInput = true
		} else {
			spec.WrtParams = append(spec.WrtParams, name)
		}
	}
	return spec, nil
}

// ParseInputShape reads init's input size C,H,W: three positive integers.
// The error wraps option.Err.
func ParseInputShape(s string) ([3]int, error) {
	var in [3]int
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return in, option.Errorf("--in %q: want C,H,W", s)
	}
	for i, p := range parts {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || v < 1 {
			return in, option.Errorf("--in %q: want three positive integers C,H,W", s)
		}
		in[i] = v
	}
	return in, nil
}

// Check refuses a Dataset, Threat or Arch filter that matches no model of
// t. The error wraps option.Err.
func (o ZooListOptions) Check(t *zoo.Table) error {
	for _, f := range []struct{ name, v string }{{"dataset", o.Dataset}, {"threat", o.Threat}, {"arch", o.Arch}} {
		if f.v == "" {
			continue
		}
		ok := false
		for _, e := range t.Models {
			ok = ok || f.v == map[string]string{"dataset": e.Dataset, "threat": e.ThreatModel, "arch": e.Arch}[f.name]
		}
		if !ok {
			return option.Errorf("--%s %q matches no model in the table", f.name, f.v)
		}
	}
	return nil
}
