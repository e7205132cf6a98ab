package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "the main job on the small models and data shipped in the repository (what `make demo` runs)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Value: "testdata/demo", Usage: "folder with fmnist_normal.onnx, fmnist_robust.onnx, fmnist_train_3000.npz and fmnist_test_1000.npz"},
			&cli.StringFlag{Name: "o", Aliases: []string{"out"}, Value: "demo-out", Usage: "output `DIR`"},
			&cli.IntFlag{Name: "threads", Value: 2, Usage: "intra-op threads"},
			&cli.StringFlag{Name: "device", Value: "cpu", Usage: "cpu or cuda[:N]"},
			&cli.IntFlag{Name: "epochs", Value: 10, Usage: "most fine-tuning epochs"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usagef("demo takes no positional arguments")
			}
			d, out := c.String("dir"), c.String("o")
			for _, f := range []string{"fmnist_normal.onnx", "fmnist_robust.onnx", "fmnist_train_3000.npz", "fmnist_test_1000.npz"} {
				if _, err := os.Stat(filepath.Join(d, f)); err != nil {
					return fmt.Errorf("demo data missing (run from the repository root or pass --dir): %w", err)
				}
			}
			p := func(f string) string { return filepath.Join(d, f) }
			common := []string{"--eps", "0.1", "--steps", "10", "--alpha", "0.025", "--threads", fmt.Sprint(c.Int("threads")), "--device", c.String("device"), "--seed", "1"}
			steps := [][]string{
				{"layers", p("fmnist_robust.onnx")},
				{"split", p("fmnist_robust.onnx"), "--fb-layers", "4", "-o", filepath.Join(out, "split")},
				{"eval", p("fmnist_normal.onnx"), "--data", "npz:" + p("fmnist_test_1000.npz"), "--threads", fmt.Sprint(c.Int("threads")), "--device", c.String("device")},
				append([]string{"attack", p("fmnist_robust.onnx"), "--data", "npz:" + p("fmnist_test_1000.npz"), "--n", "500", "--attack", "fgsm,pgd",
					"--json", filepath.Join(out, "attack.json")}, common...),
				append([]string{"semirobust", "--normal", p("fmnist_normal.onnx"), "--robust", p("fmnist_robust.onnx"),
					"--data", "npz:" + p("fmnist_train_3000.npz"), "--eval-data", "npz:" + p("fmnist_test_1000.npz"), "--eval-n", "500", "--rho-n", "500",
					"--attacks", "pgd", "--fb-layers", "4", "--epochs", fmt.Sprint(c.Int("epochs")),
					"--adv", "pgd", "--adv-eps", "0.1", "--adv-alpha", "0.025", "--adv-steps", "5",
					"-o", filepath.Join(out, "run"), "--json", filepath.Join(out, "semirobust.json")}, common...),
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			for _, args := range steps {
				fmt.Fprintf(c.App.Writer, "\n$ srtool %s\n", strings.Join(args, " "))
				app := newApp(c.App.Writer, c.App.ErrWriter)
				if err := app.RunContext(c.Context, hoistFlags(app, append([]string{"srtool"}, args...))); err != nil {
					return fmt.Errorf("demo: srtool %s: %w", args[0], err)
				}
			}
			fmt.Fprintf(c.App.Writer, "\ndemo report: %s\n", filepath.Join(out, "run", "report.md"))
			return nil
		},
	}
}
