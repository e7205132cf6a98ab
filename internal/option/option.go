// Package option marks errors in the settings a caller gives (a value out
// of range, an unknown name): the packages that check settings as srtool's
// command line writes them (attacks, dataset, semirobust) export Err as
// their ErrOption, and cmd/srtool reports every error wrapping it as a
// usage error (exit code 2).
package option

import (
	"errors"
	"fmt"
)

// Err is wrapped by every error Errorf makes. Test with errors.Is.
var Err = errors.New("invalid option")

type optionError string

func (e optionError) Error() string      { return string(e) }
func (optionError) Is(target error) bool { return target == Err }

// Errorf formats an error that wraps Err; its text is the formatted
// message alone.
func Errorf(format string, a ...any) error { return optionError(fmt.Sprintf(format, a...)) }
