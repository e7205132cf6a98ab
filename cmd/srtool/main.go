// Command srtool is the command-line front end of the srtool library:
// layers, split, grad, attack, mi, finetune and the semirobust experiment on
// ONNX image classifiers. Run `srtool help` for the command list.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
)

// version is set by the Makefile with -ldflags.
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args, os.Stdout, os.Stderr))
}

// run executes the command line and maps failures to exit codes: 0 success,
// 1 a failed command, 2 bad usage, 130 interrupted.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "srtool: internal error: %v\n", r)
			code = 1
		}
	}()
	app := newApp(stdout, stderr)
	err := app.RunContext(ctx, hoistFlags(app, args))
	if err == nil {
		return 0
	}
	msg := strings.TrimSpace(err.Error())
	msg = strings.ReplaceAll(msg, "\n", "; ")
	fmt.Fprintf(stderr, "srtool: %s\n", msg)
	var ue usageError
	switch {
	case errors.As(err, &ue):
		return 2
	case errors.Is(err, context.Canceled):
		return 130
	default:
		return 1
	}
}

// usageError marks errors in how the command was called.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:      "srtool",
		Usage:     "subnetwork robustness toolkit for ONNX image classifiers",
		Version:   version,
		Writer:    stdout,
		ErrWriter: stderr,
		// Errors are printed once by run, in one line.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(c *cli.Context, err error, isSubcommand bool) error {
			return usageError{err.Error()}
		},
		Commands: []*cli.Command{
			layersCommand(),
			splitCommand(),
			evalCommand(),
			attackCommand(),
			gradCommand(),
			initCommand(),
			weightsCommand(),
			trainCommand(),
			finetuneCommand(),
			miCommand(),
			semirobustCommand(),
			demoCommand(),
		},
	}
	var setUsage func(cs []*cli.Command)
	setUsage = func(cs []*cli.Command) {
		for _, c := range cs {
			c.OnUsageError = app.OnUsageError
			setUsage(c.Subcommands)
		}
	}
	setUsage(app.Commands)
	return app
}

// Flags shared by every command (DESIGN.md's CLI contract).
func commonFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "json", Usage: "write a machine-readable report to `FILE`"},
		&cli.StringFlag{Name: "device", Value: "cpu", Usage: "cpu or cuda[:N]"},
		&cli.IntFlag{Name: "threads", Usage: "intra-op threads (0 = ONNX Runtime's default, one per physical core)"},
		&cli.BoolFlag{Name: "standard-ops", Usage: "keep the graphs srtool builds in standard ONNX ops on the CPU (by default convolutions with fed weights run on ONNX Runtime's NCHWc kernels)"},
		&cli.Int64Flag{Name: "seed", Value: 1, Usage: "random seed"},
	}
}
