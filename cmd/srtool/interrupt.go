package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/semirobust/srtool/report"
)

// interruptGrace is how long a command may take to stop cleanly after SIGINT
// or SIGTERM (write what finished, say so) before the process exits anyway:
// a call into ONNX Runtime (session creation, one large batch) cannot be
// cancelled midway. Outputs are written atomically, so a forced exit leaves
// no half-written file.
const interruptGrace = 3 * time.Second

// signalError is the cause of a context cancelled by a signal.
type signalError struct{ sig os.Signal }

func (e signalError) Error() string { return "received " + e.sig.String() }

// notifyInterrupt returns a context cancelled on SIGINT or SIGTERM with a
// signalError cause. If the command has not returned interruptGrace after the
// signal, or a second signal arrives, the process exits with 130 or 143 after
// one "interrupted:" line on errw.
func notifyInterrupt(parent context.Context, errw io.Writer) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		var sig os.Signal
		select {
		case sig = <-ch:
		case <-done:
			return
		}
		cancel(signalError{sig})
		code := exitCodeFor(sig)
		select {
		case <-ch:
		case <-time.After(interruptGrace):
		case <-done:
			return
		}
		fmt.Fprintf(errw, "interrupted: stopped by %s before the current step could finish; outputs of unfinished work were not written\n", sig)
		os.Exit(code)
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(nil)
	}
}

func exitCodeFor(sig os.Signal) int {
	if sig == syscall.SIGTERM {
		return exitTerminated
	}
	return exitInterrupted
}

// interruptCode is the exit code of a command stopped because ctx ended.
func interruptCode(ctx context.Context) int {
	var se signalError
	if errors.As(context.Cause(ctx), &se) {
		return exitCodeFor(se.sig)
	}
	return exitInterrupted
}

// interrupted wraps a cancellation error with what finished and how to
// resume (report.Interrupt); run maps it to exit code 130 or 143.
var interrupted = report.Interrupt
