package semirobust

import (
	"github.com/semirobust/srtool/internal/option"
)

// ErrOption marks an error in the caller's settings (a value out of range,
// a K the model cannot take, too few samples for an estimator): the command
// line reports such errors as usage errors. Test with errors.Is.
// It is option.Err, the ErrOption of every package that checks settings.
var ErrOption = option.Err

func optionf(format string, a ...any) error { return option.Errorf(format, a...) }

// Progress starts the progress report of one stage: label names it, unit
// what it counts ("samples", "layer pairs", "iterations"); the returned
// function is called with the units done so far and the total. A nil
// Progress reports nothing.
type Progress func(label, unit string) func(done, total int)

// start is p(label, unit), or nil for a nil p.
func (p Progress) start(label, unit string) func(done, total int) {
	if p == nil {
		return nil
	}
	return p(label, unit)
}

// samples starts a stage counting samples.
func (p Progress) samples(label string) func(done, total int) { return p.start(label, "samples") }
