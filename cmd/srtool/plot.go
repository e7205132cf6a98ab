package main

import (
	"bytes"
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/semirobust/srtool/onnxio"
)

// series is one line of a plot.
type series struct {
	Name string
	X, Y []float64
}

// writeLinePlot draws the series as lines with points and writes a PNG
// atomically.
// xticks, when given, names the points x = 0, 1, … on the x axis.
func writeLinePlot(path, title, xlabel, ylabel string, ss []series, xticks ...string) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	p.Add(plotter.NewGrid())
	var args []any
	for _, s := range ss {
		pts := make(plotter.XYs, len(s.X))
		for i := range s.X {
			pts[i].X, pts[i].Y = s.X[i], s.Y[i]
		}
		args = append(args, s.Name, pts)
	}
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	p.Legend.Top = false
	if len(xticks) > 0 {
		p.NominalX(xticks...)
	}
	if ylabel != "accuracy (%)" {
		// Dependence values: show how far they are from 0 (the permutation-corrected
		// line sits near it).
		nonNeg := true
		for _, s := range ss {
			for _, v := range s.Y {
				if v < 0 {
					nonNeg = false
				}
			}
		}
		if nonNeg {
			p.Y.Min = 0
		}
	}
	wt, err := p.WriterTo(7*vg.Inch, 4.5*vg.Inch, "png")
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return onnxio.WriteFileAtomic(path, buf.Bytes())
}

// matrixGrid is an n×n grid of values for a heat map; NaN cells are empty.
type matrixGrid struct {
	n int
	v []float64
}

func (g matrixGrid) Dims() (int, int)   { return g.n, g.n }
func (g matrixGrid) Z(c, r int) float64 { return g.v[r*g.n+c] }
func (g matrixGrid) X(c int) float64    { return float64(c + 1) }
func (g matrixGrid) Y(r int) float64    { return float64(r + 1) }

// writeHeatMap draws an n×n matrix (row = parent layer, column = child
// layer, 1-based) as a PNG written atomically.
func writeHeatMap(path, title, label string, n int, v []float64) error {
	p := plot.New()
	p.Title.Text = title + " (" + label + ")"
	p.X.Label.Text = "child weight layer"
	p.Y.Label.Text = "parent weight layer"
	pal := moreland.SmoothBlueRed().Palette(64)
	h := plotter.NewHeatMap(matrixGrid{n: n, v: v}, pal)
	h.NaN = color.White
	p.Add(h)
	wt, err := p.WriterTo(6*vg.Inch, 5.5*vg.Inch, "png")
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return onnxio.WriteFileAtomic(path, buf.Bytes())
}
