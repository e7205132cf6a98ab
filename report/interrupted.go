package report

import (
	"context"
	"errors"
)

// Interrupted is what a run returns when its context was cancelled: what
// finished (and was written), and how to continue. It wraps the context
// error, so errors.Is(err, context.Canceled) still holds.
type Interrupted struct {
	Done   string // e.g. "clean pass and apgd-ce finished; report written to r.json (complete: false)"
	Resume string // e.g. "resume with --resume state.json"; "" when there is nothing to resume
	Err    error
}

func (e *Interrupted) Error() string {
	if e.Resume == "" {
		return e.Done
	}
	return e.Done + "; " + e.Resume
}

func (e *Interrupted) Unwrap() error { return e.Err }

// Interrupt wraps a cancellation error with what finished and how to resume.
func Interrupt(err error, done, resume string) error {
	return &Interrupted{Done: done, Resume: resume, Err: err}
}

// IsCancel reports whether err comes from a cancelled or expired context:
// the run was stopped, it did not fail.
func IsCancel(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// InterruptMessage is what to say of a run that err stopped (err wraps a
// cancelled context): the *Interrupted's text, or, for a run stopped before
// it wrote anything, that there is nothing to resume.
func InterruptMessage(err error) string {
	var ie *Interrupted
	if errors.As(err, &ie) {
		return ie.Error()
	}
	return "stopped before any result was written; run the command again to start over"
}
