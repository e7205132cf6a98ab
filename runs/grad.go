package runs

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/semirobust/srtool/autodiff"
	"github.com/semirobust/srtool/diffmodel"
	"github.com/semirobust/srtool/npy"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
	"github.com/semirobust/srtool/report"
)

// GradReport is the JSON document of `srtool grad`.
type GradReport struct {
	report.Header
	Model     string            `json:"model"`
	Loss      string            `json:"loss"`
	Reduction string            `json:"reduction"`
	Value     []float32         `json:"loss_value"`
	Outputs   map[string]string `json:"outputs"` // wrt name → file
}

// GradOptions are Grad's settings.
type GradOptions struct {
	Model  string        // the model's path, for the report and messages
	Header report.Header // the report's header
	Engine ort.Options
	// Spec is the loss head and what to differentiate; Wrt lists the
	// targets as given ("input" or parameter names), in output order.
	Spec autodiff.Spec
	Wrt  []string
	// LossName and Reduction are the loss and reduction as named in the
	// report ("ce", "mean", …).
	LossName, Reduction string
	// Input and Labels are the .npy files of the batch (float32 in [0,1],
	// or uint8 pixels) and its integer labels.
	Input, Labels string
	// Out is the output .npy for one target, a folder for several; JSON the
	// report ("" = none).
	Out, JSON string
}

// Grad writes the gradients of the loss with respect to each target of o
// as .npy files, the loss values on w and the report.
func Grad(ctx context.Context, m *onnxio.Model, o GradOptions, w io.Writer) (*GradReport, error) {
	spec := o.Spec
	xa, err := npy.ReadFile(o.Input)
	if err != nil {
		return nil, err
	}
	ya, err := npy.ReadFile(o.Labels)
	if err != nil {
		return nil, err
	}
	x := xa.Float32()
	if !xa.IsFloat() {
		for i := range x {
			x[i] /= 255
		}
	}
	y, err := ya.Int64()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Labels, err)
	}
	if len(xa.Shape) < 2 || xa.Shape[0] != len(y) {
		return nil, fmt.Errorf("input has shape %v but there are %d labels", xa.Shape, len(y))
	}
	clf, err := diffmodel.NewClassifier(m, o.Engine)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Model, err)
	}
	clf.Close()
	if fmt.Sprint(clf.InputShape()) != fmt.Sprint(xa.Shape[1:]) {
		return nil, fmt.Errorf("input has samples of shape %v; the model takes %v", xa.Shape[1:], clf.InputShape())
	}
	for i, v := range y {
		if v < 0 || int(v) >= clf.NumClasses() {
			return nil, fmt.Errorf("label %d of sample %d is outside the model's %d classes", v, i, clf.NumClasses())
		}
	}
	if spec.Loss == autodiff.DLR && clf.NumClasses() < 3 {
		return nil, fmt.Errorf("the DLR loss needs at least 3 classes; the model has %d", clf.NumClasses())
	}
	res, err := autodiff.Gradient(m, spec)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Model, err)
	}
	b, err := res.Model.Encode()
	if err != nil {
		return nil, err
	}
	s, err := ort.NewSession(b, o.Engine)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	shape := make([]int64, len(xa.Shape))
	for i, d := range xa.Shape {
		shape[i] = int64(d)
	}
	feeds := map[string]ort.Tensor{res.Input: {Shape: shape, Float32: x}, res.Labels: {Shape: []int64{int64(len(y))}, Int64: y}}
	for name, t := range res.Feeds {
		v, err := onnxio.Float32s(t)
		if err != nil {
			return nil, err
		}
		feeds[name] = ort.Tensor{Shape: t.GetDims(), Float32: v}
	}
	outs := []string{res.Loss}
	if spec.WrtInput {
		outs = append(outs, res.InputGrad)
	}
	for _, p := range spec.WrtParams {
		outs = append(outs, res.ParamGrads[p])
	}
	got, err := s.Run(ctx, feeds, outs)
	if err != nil {
		return nil, err
	}
	rep := &GradReport{Header: o.Header, Model: o.Model, Loss: o.LossName, Reduction: o.Reduction, Value: got[res.Loss].Float32, Outputs: map[string]string{}}
	wrt, out := o.Wrt, o.Out
	fileFor := func(name string) string {
		if len(wrt) == 1 {
			return out
		}
		return filepath.Join(out, strings.ReplaceAll(name, "/", "_")+".npy")
	}
	if len(wrt) > 1 {
		if err := os.MkdirAll(out, 0o755); err != nil {
			return nil, err
		}
	}
	write := func(name, tensor string) error {
		t := got[tensor]
		dims := make([]int, len(t.Shape))
		for i, d := range t.Shape {
			dims[i] = int(d)
		}
		p := fileFor(name)
		rep.Outputs[name] = p
		return npy.WriteFile(p, npy.FromFloat32(t.Float32, dims...))
	}
	if spec.WrtInput {
		if err := write("input", res.InputGrad); err != nil {
			return nil, err
		}
	}
	for _, p := range spec.WrtParams {
		if err := write(p, res.ParamGrads[p]); err != nil {
			return nil, err
		}
	}
	if len(rep.Value) == 1 {
		fmt.Fprintf(w, "loss (%s, %s): %.6g\n", rep.Loss, rep.Reduction, rep.Value[0])
	} else {
		fmt.Fprintf(w, "loss (%s, per sample): %v\n", rep.Loss, rep.Value)
	}
	for _, name := range wrt {
		fmt.Fprintf(w, "d loss / d %s → %s\n", name, rep.Outputs[name])
	}
	return rep, report.WriteJSON(o.JSON, rep)
}
