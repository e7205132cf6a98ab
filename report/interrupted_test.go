package report

import (
	"context"
	"fmt"
	"testing"
)

func TestInterruptMessage(t *testing.T) {
	err := fmt.Errorf("attack: %w", Interrupt(context.Canceled, "clean pass finished", "resume with --resume s.json"))
	if got, want := InterruptMessage(err), "clean pass finished; resume with --resume s.json"; got != want {
		t.Errorf("InterruptMessage = %q; want %q", got, want)
	}
	if !IsCancel(err) {
		t.Error("an Interrupted of a cancelled context is not IsCancel")
	}
	if got := InterruptMessage(context.Canceled); got != "stopped before any result was written; run the command again to start over" {
		t.Errorf("InterruptMessage(bare cancel) = %q", got)
	}
}
