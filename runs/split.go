package runs

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/report"
)

// SplitOptions are Split's settings: the cut is Tensors when set, else the
// last FbLayers weight layers when set, else after layer At.
type SplitOptions struct {
	Model    string
	At       int
	FbLayers int
	Tensors  []string
	OutDir   string
	JSON     string
	Header   report.Header // the JSON report's header
}

// SplitReport is the JSON document of `srtool split`.
type SplitReport struct {
	report.Header
	Model    string               `json:"model"`
	Layers   int                  `json:"layers"`
	At       int                  `json:"at"`
	FbLayers int                  `json:"fb_layers"`
	Head     string               `json:"head"`
	Tail     string               `json:"tail"`
	Cut      []analyzer.CutTensor `json:"cut"`
	// SHA256 holds the digest of head.onnx and tail.onnx as written; the
	// report is written last, so a reader can tell a consistent set.
	SHA256 map[string]string `json:"sha256"`
}

// Split cuts the model o.Model into head and tail, writes OutDir/head.onnx
// and OutDir/tail.onnx, the cut tensors on w and the report.
func Split(ctx context.Context, o SplitOptions, w io.Writer) (*SplitReport, error) {
	_, an, err := readAnalyzed(o.Model)
	if err != nil {
		return nil, err
	}
	var cut *analyzer.Cut
	switch {
	case len(o.Tensors) > 0:
		cut, err = an.CutAt(o.Tensors)
	case o.FbLayers != 0:
		cut, err = an.CutTail(o.FbLayers)
	default:
		cut, err = an.CutAfter(o.At)
	}
	if err != nil {
		return nil, fmt.Errorf("split %s: %w", o.Model, err)
	}
	head, tail, err := an.Split(cut)
	if err != nil {
		return nil, fmt.Errorf("split %s: %w", o.Model, err)
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("split: %w", err)
	}
	hp, tp := filepath.Join(o.OutDir, "head.onnx"), filepath.Join(o.OutDir, "tail.onnx")
	if err := onnxio.Write(hp, head); err != nil {
		return nil, err
	}
	if err := onnxio.Write(tp, tail); err != nil {
		os.Remove(hp)
		return nil, err
	}
	rep := &SplitReport{Header: o.Header, Model: o.Model, Layers: len(an.Layers), At: cut.After, Head: hp, Tail: tp, Cut: cut.Tensors}
	if cut.After > 0 {
		rep.FbLayers = len(an.Layers) - cut.After
	}
	if rep.SHA256, err = report.FileDigests(hp, tp); err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "head: %s (layers 1..%d)\ntail: %s (%d layers)\ncut tensors:\n", hp, cut.After, tp, rep.FbLayers)
	for _, t := range cut.Tensors {
		fmt.Fprintf(w, "  %s %s\n", t.Name, FormatShape(t.Shape))
	}
	return rep, report.WriteJSON(o.JSON, rep)
}
