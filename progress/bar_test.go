package progress

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestBarLogLines(t *testing.T) {
	defer func(d time.Duration) { LogInterval = d }(LogInterval)
	LogInterval = 0 // a line after every update
	var b strings.Builder
	p := NewUnit(&b, "eval", "batches")
	p.Update(1, 4)
	p.Update(4, 4)
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines %q; want 2", len(lines), b.String())
	}
	re := regexp.MustCompile(`^eval: [14]/4 batches, [0-9.]+/s, ETA \S+$`)
	for _, l := range lines {
		if !re.MatchString(l) {
			t.Errorf("line %q; want it to match %s", l, re)
		}
	}
}

func TestBarQuietInLogs(t *testing.T) {
	var b strings.Builder
	p := New(&b, "eval")
	p.Update(5, 10)
	p.Update(10, 10)
	if b.Len() != 0 {
		t.Errorf("a quick stage wrote %q to a log; want nothing", b.String())
	}
	var nilBar *Bar
	nilBar.Update(1, 2) // must not panic
	p.Update(1, 0)      // no total: nothing
	if Stages(nil) != nil {
		t.Error("Stages(nil) is not nil")
	}
}

func TestStagesUnit(t *testing.T) {
	defer func(d time.Duration) { LogInterval = d }(LogInterval)
	LogInterval = 0
	var b strings.Builder
	Stages(&b)("rho", "layer pairs")(1, 3)
	if !strings.HasPrefix(b.String(), "rho: 1/3 layer pairs, ") {
		t.Errorf("Stages wrote %q; want a line counting layer pairs", b.String())
	}
}

func TestBarsOnePerKey(t *testing.T) {
	defer func(d time.Duration) { LogInterval = d }(LogInterval)
	LogInterval = 0
	var b strings.Builder
	bars := NewBars(&b)
	bars.Update("0 pgd", "pgd", 1, 2)
	bars.Update("1 pgd", "pgd", 1, 2)
	bars.Update("0 pgd", "other label", 2, 2)
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[2], "pgd: 2/2 samples") {
		t.Errorf("Bars wrote %q; want three lines, the last labelled as key 0 pgd's first report", b.String())
	}
	if len(bars.bars) != 2 {
		t.Errorf("%d bars; want one per key", len(bars.bars))
	}
}
