package main

import (
	"bytes"
	"fmt"

	"gonum.org/v1/plot"
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
