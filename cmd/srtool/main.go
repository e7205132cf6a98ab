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
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/internal/option"
	"github.com/semirobust/srtool/report"
)

func main() {
	ctx, stop := notifyInterrupt(context.Background(), os.Stderr)
	if onSignalsReady != nil {
		onSignalsReady()
	}
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// onSignalsReady, when set (by tests), is called once SIGINT and SIGTERM
// are handled: a test that signals the process waits for it.
var onSignalsReady func()

// Exit codes (README "Commands").
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitInterrupted = 130 // SIGINT, or a cancelled context
	exitTerminated  = 143 // SIGTERM
)

// run executes the command line and maps failures to exit codes: 0 success,
// 1 a failed command, 2 bad usage, 130 interrupted (SIGINT), 143 terminated
// (SIGTERM). An interrupted command prints one line starting "interrupted:".
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "srtool: internal error: %v\n", r)
			code = exitFailed
		}
	}()
	app := newApp(stdout, stderr)
	app.Metadata = map[string]any{metaArgs: args}
	err := app.RunContext(ctx, hoistFlags(app, args))
	if err == nil {
		return exitOK
	}
	if report.IsCancel(err) {
		fmt.Fprintf(stderr, "interrupted: %s\n", oneLine(report.InterruptMessage(err)))
		return interruptCode(ctx)
	}
	fmt.Fprintf(stderr, "srtool: %s\n", oneLine(err.Error()))
	var ue usageError
	if errors.As(err, &ue) || isRequiredFlagsError(err) {
		return exitUsage
	}
	return exitFailed
}

// isRequiredFlagsError recognises urfave/cli's missing-required-flag error,
// whose type is unexported ("Required flag "o" not set").
func isRequiredFlagsError(err error) bool {
	return strings.HasPrefix(err.Error(), "Required flag")
}

func oneLine(s string) string {
	return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ")
}

// usageError marks errors in how the command was called.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// usageOf makes an error in the library's options (option.Err, the
// packages' ErrOption) a usage error.
func usageOf(err error) error {
	if errors.Is(err, option.Err) {
		return usageError{err.Error()}
	}
	return err
}

func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:      "srtool",
		Usage:     "subnetwork robustness toolkit for ONNX image classifiers",
		Version:   toolVersion(),
		Writer:    stdout,
		ErrWriter: stderr,
		// Errors are printed once by run, in one line.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(c *cli.Context, err error, isSubcommand bool) error {
			return usageError{err.Error()}
		},
		CommandNotFound: func(c *cli.Context, name string) {
			// Reported by the action below as a usage error.
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("unknown command %q; run `srtool help` for the list", c.Args().First())
			}
			return cli.ShowAppHelp(c)
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
			boundCommand(),
			demoCommand(),
			zooCommand(),
			mergeCommand(),
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

// Flags shared by every command (README.md, "Commands").
func commonFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "json", Usage: "write a machine-readable report to `FILE`"},
		&cli.StringFlag{Name: "device", Value: "cpu", Usage: "cpu or cuda[:N]"},
		&cli.IntFlag{Name: "threads", Usage: "intra-op threads, 0 to 4 × the CPUs (0 = ONNX Runtime's default, one per physical core)"},
		&cli.BoolFlag{Name: "standard-ops", Usage: "keep the graphs srtool builds in standard ONNX ops on the CPU (by default convolutions with fed weights run on ONNX Runtime's NCHWc kernels)"},
		&cli.Int64Flag{Name: "seed", Value: 1, Usage: "random seed"},
	}
}
