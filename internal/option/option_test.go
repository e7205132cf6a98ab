package option

import (
	"errors"
	"fmt"
	"testing"
)

func TestErrorf(t *testing.T) {
	err := Errorf("--n %d: must not be negative", -1)
	if err.Error() != "--n -1: must not be negative" {
		t.Errorf("Errorf text %q; want the message alone", err)
	}
	if !errors.Is(err, Err) || !errors.Is(fmt.Errorf("load: %w", err), Err) {
		t.Error("Errorf's error does not wrap Err")
	}
	if errors.Is(errors.New("x"), Err) {
		t.Error("a plain error wraps Err")
	}
}
