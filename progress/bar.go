package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// LogInterval is how often a progress line is printed when the writer is
// not a terminal (logs, CI, cluster jobs).
var LogInterval = 10 * time.Second

// Bar reports done/total units (samples, by convention) of one stage on w:
// a bar with rate and ETA redrawn in place when w is a terminal, one line
// at most every LogInterval otherwise ("stage: 1280/10000 samples, 42.1/s,
// ETA 3m27s"). Quick stages print nothing in a log. A nil *Bar reports
// nothing.
type Bar struct {
	w     io.Writer
	label string
	unit  string
	tty   bool
	start time.Time
	last  time.Time
}

// New counts samples of the stage called label.
func New(w io.Writer, label string) *Bar {
	return NewUnit(w, label, "samples")
}

// NewUnit counts another unit (epochs, batches, layer pairs).
func NewUnit(w io.Writer, label, unit string) *Bar {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	now := time.Now()
	return &Bar{w: w, label: label, unit: unit, tty: tty, start: now, last: now}
}

// Stages starts a Bar on w for each stage (label, unit) a library reports,
// as semirobust.Progress does; nil for a nil w.
func Stages(w io.Writer) func(label, unit string) func(done, total int) {
	if w == nil {
		return nil
	}
	return func(label, unit string) func(done, total int) { return NewUnit(w, label, unit).Update }
}

// Update records that done of total units are finished.
func (p *Bar) Update(done, total int) {
	if p == nil || total <= 0 {
		return
	}
	now := time.Now()
	elapsed := now.Sub(p.start)
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(done) / s
	}
	eta := "?"
	if rate > 0 && done <= total {
		eta = time.Duration(float64(total-done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	if !p.tty {
		if now.Sub(p.last) < LogInterval {
			return
		}
		p.last = now
		fmt.Fprintf(p.w, "%s: %d/%d %s, %.1f/s, ETA %s\n", p.label, done, total, p.unit, rate, eta)
		return
	}
	if done < total && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	const width = 30
	if done >= total {
		fmt.Fprintf(p.w, "\r%s [%s] %d/%d %s in %s\033[K\n", p.label, strings.Repeat("=", width), done, total, p.unit, elapsed.Round(100*time.Millisecond))
		return
	}
	fill := width * done / total
	fmt.Fprintf(p.w, "\r%s [%s%s] %d/%d %s, %.1f/s, ETA %s\033[K", p.label, strings.Repeat("=", fill), strings.Repeat(" ", width-fill), done, total, p.unit, rate, eta)
}

// Bars draws one Bar per stage on w for work that reports several stages
// through one callback (an attack list, an ensemble's components).
type Bars struct {
	w    io.Writer
	bars map[string]*Bar
}

// NewBars draws its Bars on w.
func NewBars(w io.Writer) *Bars { return &Bars{w: w, bars: map[string]*Bar{}} }

// Update reports done of total samples of the stage key, starting its Bar,
// labelled label, at the stage's first report.
func (b *Bars) Update(key, label string, done, total int) {
	bar, ok := b.bars[key]
	if !ok {
		bar = New(b.w, label)
		b.bars[key] = bar
	}
	bar.Update(done, total)
}
