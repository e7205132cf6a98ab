package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/autodiff"
	"github.com/semirobust/srtool/npy"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
	"github.com/semirobust/srtool/report"
)

type gradReport struct {
	report.Header
	Model     string            `json:"model"`
	Loss      string            `json:"loss"`
	Reduction string            `json:"reduction"`
	Value     []float32         `json:"loss_value"`
	Outputs   map[string]string `json:"outputs"` // wrt name → file
}

func gradCommand() *cli.Command {
	return &cli.Command{
		Name:      "grad",
		Usage:     "gradients of a loss with respect to the input or parameters, as .npy",
		ArgsUsage: "MODEL.onnx",
		Flags: append(commonFlags(),
			&cli.StringFlag{Name: "input", Usage: "input batch `X.npy` (N×C×H×W float32 in [0,1], or uint8)", Required: true},
			&cli.StringFlag{Name: "labels", Usage: "labels `Y.npy` (N integers)", Required: true},
			&cli.StringFlag{Name: "loss", Value: "ce", Usage: "ce, cw or dlr"},
			&cli.StringFlag{Name: "reduction", Value: "mean", Usage: "mean, sum or none"},
			&cli.StringSliceFlag{Name: "wrt", Value: cli.NewStringSlice("input"), Usage: "input or a parameter (initializer) name; repeat for several"},
			&cli.StringFlag{Name: "o", Aliases: []string{"out"}, Required: true, Usage: "output `FILE`.npy for one --wrt, a folder for several"},
			&cli.StringFlag{Name: "mean", Usage: "per-channel mean the model expects (prepended)"},
			&cli.StringFlag{Name: "std", Usage: "per-channel std the model expects (prepended)"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("grad needs exactly one MODEL argument")
			}
			return runGrad(c, c.Args().First(), c.App.Writer)
		},
	}
}

func runGrad(c *cli.Context, path string, w io.Writer) error {
	opts, err := engineOptions(c)
	if err != nil {
		return err
	}
	spec := autodiff.Spec{}
	switch c.String("loss") {
	case "ce":
		spec.Loss = autodiff.CrossEntropy
	case "cw":
		spec.Loss = autodiff.CWMargin
	case "dlr":
		spec.Loss = autodiff.DLR
	default:
		return usagef("--loss %q: want ce, cw or dlr", c.String("loss"))
	}
	switch c.String("reduction") {
	case "mean":
		spec.Reduction = autodiff.Mean
	case "sum":
		spec.Reduction = autodiff.Sum
	case "none":
		spec.Reduction = autodiff.None
	default:
		return usagef("--reduction %q: want mean, sum or none", c.String("reduction"))
	}
	wrt := c.StringSlice("wrt")
	for _, name := range wrt {
		if name == "input" {
			spec.WrtInput = true
		} else {
			spec.WrtParams = append(spec.WrtParams, name)
		}
	}
	m, err := loadModel(c, path)
	if err != nil {
		return err
	}
	xa, err := npy.ReadFile(c.String("input"))
	if err != nil {
		return err
	}
	ya, err := npy.ReadFile(c.String("labels"))
	if err != nil {
		return err
	}
	x := xa.Float32()
	if !xa.IsFloat() {
		for i := range x {
			x[i] /= 255
		}
	}
	y, err := ya.Int64()
	if err != nil {
		return fmt.Errorf("%s: %w", c.String("labels"), err)
	}
	if len(xa.Shape) < 2 || xa.Shape[0] != len(y) {
		return fmt.Errorf("input has shape %v but there are %d labels", xa.Shape, len(y))
	}
	clf, err := ort.NewClassifier(m, opts)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	clf.Close()
	if fmt.Sprint(clf.InputShape()) != fmt.Sprint(xa.Shape[1:]) {
		return fmt.Errorf("input has samples of shape %v; the model takes %v", xa.Shape[1:], clf.InputShape())
	}
	for i, v := range y {
		if v < 0 || int(v) >= clf.NumClasses() {
			return fmt.Errorf("label %d of sample %d is outside the model's %d classes", v, i, clf.NumClasses())
		}
	}
	if spec.Loss == autodiff.DLR && clf.NumClasses() < 3 {
		return fmt.Errorf("the DLR loss needs at least 3 classes; the model has %d", clf.NumClasses())
	}
	res, err := autodiff.Gradient(m, spec)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	b, err := res.Model.Encode()
	if err != nil {
		return err
	}
	s, err := ort.NewSession(b, opts)
	if err != nil {
		return err
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
			return err
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
	got, err := s.Run(c.Context, feeds, outs)
	if err != nil {
		return err
	}
	rep := gradReport{Header: newHeader(c), Model: path, Loss: c.String("loss"), Reduction: c.String("reduction"), Value: got[res.Loss].Float32, Outputs: map[string]string{}}
	out := c.String("o")
	fileFor := func(name string) string {
		if len(wrt) == 1 {
			return out
		}
		return filepath.Join(out, strings.ReplaceAll(name, "/", "_")+".npy")
	}
	if len(wrt) > 1 {
		if err := os.MkdirAll(out, 0o755); err != nil {
			return err
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
			return err
		}
	}
	for _, p := range spec.WrtParams {
		if err := write(p, res.ParamGrads[p]); err != nil {
			return err
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
	return report.WriteJSON(c.String("json"), rep)
}
