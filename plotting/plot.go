package plotting

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"strconv"

	"github.com/semirobust/srtool/internal/atomicfile"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Series is one line of a plot: points (X[i], Y[i]); X and Y have equal length.
type Series struct {
	Name string
	X, Y []float64
}

// WriteLinePlot draws the series as lines with points and writes a PNG
// atomically. xticks, when given, names the points x = 0, 1, … on the x
// axis; otherwise x values that are all whole numbers (epochs) get whole
// ticks. Both axes have margins, so that no line sits on the frame, and the
// legend is drawn beside the plot, where it covers no data.
func WriteLinePlot(path, title, xlabel, ylabel string, ss []Series, xticks ...string) error {
	p, err := newLinePlot(title, xlabel, ylabel, ss, xticks...)
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return writePlotWithLegend(path, p, 7*vg.Inch, 4.5*vg.Inch)
}

// newAxes starts a plot with its title, axis labels and grid, and returns
// the series as plotutil's name, points arguments.
func newAxes(title, xlabel, ylabel string, ss []Series) (*plot.Plot, []any) {
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
	return p, args
}

// newLinePlot builds WriteLinePlot's plot.
func newLinePlot(title, xlabel, ylabel string, ss []Series, xticks ...string) (*plot.Plot, error) {
	p, args := newAxes(title, xlabel, ylabel, ss)
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return nil, err
	}
	xmin, xmax, ymin, ymax, integral := seriesBounds(ss)
	if len(xticks) > 0 {
		p.NominalX(xticks...)
		xmin, xmax = 0, float64(len(xticks)-1)
	} else if integral {
		p.X.Tick.Marker = integerTicks{}
	}
	if xmin <= xmax {
		pad := math.Max(0.04*(xmax-xmin), 0.3)
		p.X.Min, p.X.Max = xmin-pad, xmax+pad
	}
	if ymin <= ymax {
		if ylabel != "accuracy (%)" && ymin >= 0 {
			// Dependence values: show how far they are from 0 (the
			// permutation-corrected line sits near it).
			ymin = 0
		}
		pad := 0.06 * (ymax - ymin)
		if pad == 0 {
			pad = math.Max(0.05*math.Abs(ymax), 0.5)
		}
		p.Y.Min, p.Y.Max = ymin-pad, ymax+pad
		if ymin == 0 && ylabel != "accuracy (%)" {
			p.Y.Min = 0
		}
	}
	return p, nil
}

// seriesBounds returns the range of the series' points and whether every x
// is a whole number.
func seriesBounds(ss []Series) (xmin, xmax, ymin, ymax float64, integral bool) {
	xmin, ymin = math.Inf(1), math.Inf(1)
	xmax, ymax = math.Inf(-1), math.Inf(-1)
	integral = true
	for _, s := range ss {
		for i := range s.X {
			x, y := s.X[i], s.Y[i]
			if math.IsNaN(x) || math.IsNaN(y) || math.IsInf(x, 0) || math.IsInf(y, 0) {
				continue
			}
			xmin, xmax = math.Min(xmin, x), math.Max(xmax, x)
			ymin, ymax = math.Min(ymin, y), math.Max(ymax, y)
			integral = integral && x == math.Trunc(x)
		}
	}
	return
}

// integerTicks marks whole numbers only (epochs), at most about ten.
type integerTicks struct{}

func (integerTicks) Ticks(min, max float64) []plot.Tick {
	lo, hi := math.Ceil(min), math.Floor(max)
	if hi < lo {
		return nil
	}
	step := math.Max(1, math.Ceil((hi-lo)/10))
	var ts []plot.Tick
	for v := lo; v <= hi; v += step {
		ts = append(ts, plot.Tick{Value: v, Label: strconv.FormatFloat(v+0, 'f', 0, 64)}) // +0: no "-0"
	}
	return ts
}

// writePlotWithLegend draws p with its legend in a column to the right of
// the plot area and writes a PNG of w × h atomically.
func writePlotWithLegend(path string, p *plot.Plot, w, h vg.Length) error {
	leg := p.Legend
	p.Legend = plot.NewLegend() // drawn below, outside the data
	c := vgimg.New(w, h)
	dc := draw.New(c)
	legendW := vg.Length(0)
	if leg.Rectangle(dc).Size().X > 0 {
		legendW = leg.Rectangle(dc).Size().X + 0.25*vg.Inch
	}
	p.Draw(draw.Crop(dc, 0, -legendW, 0, 0))
	if legendW > 0 {
		leg.Top, leg.Left = true, true
		area := draw.Crop(dc, w-legendW+0.1*vg.Inch, 0, 0, -0.45*vg.Inch)
		leg.Draw(area)
	}
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&buf); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return atomicfile.WriteFile(path, buf.Bytes())
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

// WriteHeatMap draws an n×n matrix (row = parent layer, column = child
// layer, 1-based) as a PNG written atomically.
func WriteHeatMap(path, title, label string, n int, v []float64) error {
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
	return atomicfile.WriteFile(path, buf.Bytes())
}

// WriteScatterPlot draws the series as points only (no lines: the points
// are not ordered) and writes a PNG atomically, legend beside the plot.
func WriteScatterPlot(path, title, xlabel, ylabel string, ss []Series) error {
	p, args := newAxes(title, xlabel, ylabel, ss)
	if err := plotutil.AddScatters(p, args...); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	xmin, xmax, ymin, ymax, _ := seriesBounds(ss)
	if xmin <= xmax {
		pad := math.Max(0.05*(xmax-xmin), 1e-3*math.Max(math.Abs(xmax), 1))
		p.X.Min, p.X.Max = xmin-pad, xmax+pad
	}
	if ymin <= ymax {
		pad := math.Max(0.06*(ymax-ymin), 0.5)
		p.Y.Min, p.Y.Max = ymin-pad, ymax+pad
	}
	return writePlotWithLegend(path, p, 7*vg.Inch, 4.5*vg.Inch)
}
