package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/npy"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
)

// attackReport is the JSON document of `srtool attack`.
type attackReport struct {
	Model          string                 `json:"model"`
	Data           string                 `json:"data"`
	N              int                    `json:"n"`
	CleanAccuracy  float64                `json:"clean_accuracy"`
	RobustAccuracy float64                `json:"robust_accuracy"`
	PerAttack      []attacks.AttackReport `json:"per_attack"`
	Counts         attacks.Counts         `json:"counts"`
	Flags          []attacks.Flag         `json:"flags"`
	Seconds        float64                `json:"seconds"`
	Settings       []attackSetting        `json:"settings"`
	Device         string                 `json:"device"`
	Interrupted    bool                   `json:"interrupted,omitempty"`
}

type attackSetting struct {
	Name    string         `json:"name"`
	Options attacks.Attack `json:"options"`
}

func attackFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "attack", Value: "pgd", Usage: "comma-separated list of " + strings.Join(attacks.Names(), ", ")},
	}, attackParamFlags()...)
}

// attackParamFlags are the threat-model and attack-setting flags without the
// attack list, for commands that name their attacks in other flags.
func attackParamFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "eps", Value: "8/255", Usage: "perturbation radius in pixel units, e.g. 8/255 or 0.031"},
		&cli.StringFlag{Name: "norm", Value: "linf", Usage: "linf, l2 or l1"},
		&cli.IntFlag{Name: "steps", Usage: "iterations (0 = the attack's default)"},
		&cli.StringFlag{Name: "alpha", Usage: "step size for PGD/MI-FGSM (default: the attack's)"},
		&cli.IntFlag{Name: "restarts", Usage: "random restarts (0 = the attack's default)"},
		&cli.BoolFlag{Name: "no-random-start", Usage: "PGD starts from the clean input"},
	}
}

func attackCommand() *cli.Command {
	return &cli.Command{
		Name:      "attack",
		Usage:     "clean and robust accuracy under attacks (FGSM, PGD, C&W, APGD, FAB-T, Square, AutoAttack)",
		ArgsUsage: "MODEL.onnx",
		Flags: append(append(append(commonFlags(), dataFlags()...), attackFlags()...),
			&cli.StringFlag{Name: "save-adv", Usage: "write the adversarial inputs to `X.npy` (N×C×H×W float32)"},
			&cli.StringFlag{Name: "per-sample", Usage: "write one JSON line per sample to `F.jsonl`"},
			&cli.StringFlag{Name: "resume", Usage: "resume state `FILE`: written during the run, read back if it exists"},
			&cli.StringFlag{Name: "convention", Value: "aa", Usage: "aa: AutoAttack's (attacks in sequence on still-robust points, misclassified points count as broken); adv-acc: torchattacks' (each attack on every point, accuracy on its adversarial examples)"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("attack needs exactly one MODEL argument")
			}
			return runAttack(c, c.Args().First(), c.App.Writer, c.App.ErrWriter)
		},
	}
}

// buildAttacks turns --attack/--eps/--norm/... into configured attacks.
func buildAttacks(c *cli.Context) ([]attacks.Attack, error) {
	eps, err := parseNumber(c.String("eps"))
	if err != nil {
		return nil, usagef("--eps: %v", err)
	}
	if eps < 0 || (eps > 1 && strings.EqualFold(c.String("norm"), "linf")) {
		return nil, usagef("--eps %g is outside [0,1]; ε is in pixel units for inputs in [0,1]", eps)
	}
	var alpha float64
	if s := c.String("alpha"); s != "" {
		if alpha, err = parseNumber(s); err != nil || alpha <= 0 {
			return nil, usagef("--alpha must be a positive number, got %q", s)
		}
	}
	var list []attacks.Attack
	for _, name := range strings.Split(c.String("attack"), ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		a, err := attacks.ByName(name, float32(eps), c.String("norm"))
		if err != nil {
			return nil, usagef("--attack %s: %v", name, err)
		}
		configureAttack(a, c.Int("steps"), float32(alpha), c.Int("restarts"), uint64(c.Int64("seed")), c.Bool("no-random-start"))
		list = append(list, a)
	}
	if len(list) == 0 {
		return nil, usagef("--attack names no attack; choose from %s", strings.Join(attacks.Names(), ", "))
	}
	return list, nil
}

// configureAttack applies the generic command-line settings to an attack:
// the seed always, steps/alpha/restarts where the attack has them and they
// are set (> 0), and NoRandomStart for PGD.
func configureAttack(a attacks.Attack, steps int, alpha float32, restarts int, seed uint64, noRandomStart bool) {
	setInt := func(dst *int, v int) {
		if v > 0 {
			*dst = v
		}
	}
	setStep := func(dst *float32) {
		if alpha > 0 {
			*dst = alpha
		}
	}
	switch t := a.(type) {
	case *attacks.PGD:
		t.Seed = seed
		setInt(&t.Steps, steps)
		setStep(&t.StepSize)
		setInt(&t.Restarts, restarts)
		t.NoRandomStart = t.NoRandomStart || noRandomStart
	case *attacks.FGSM:
		t.Seed = seed
	case *attacks.MIFGSM:
		t.Seed = seed
		setInt(&t.Steps, steps)
		setStep(&t.StepSize)
	case *attacks.APGD:
		t.Seed = seed
		setInt(&t.Steps, steps)
		setInt(&t.Restarts, restarts)
	case *attacks.APGDT:
		t.Seed = seed
		setInt(&t.Steps, steps)
		setInt(&t.Restarts, restarts)
	case *attacks.FAB:
		t.Seed = seed
		setInt(&t.Steps, steps)
		setInt(&t.Restarts, restarts)
	case *attacks.Square:
		t.Seed = seed
		setInt(&t.Queries, steps)
		setInt(&t.Restarts, restarts)
	case *attacks.CW:
		t.Seed = seed
		setInt(&t.Steps, steps)
	case *attacks.AutoAttack:
		t.Seed = seed
	}
}

func runAttack(c *cli.Context, path string, w, errw io.Writer) error {
	opts, err := engineOptions(c)
	if err != nil {
		return err
	}
	list, err := buildAttacks(c)
	if err != nil {
		return err
	}
	m, err := loadModel(c, path)
	if err != nil {
		return err
	}
	d, err := loadData(c)
	if err != nil {
		return err
	}
	clf, err := ort.NewClassifier(m, opts)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer clf.Close()
	if got, want := clf.InputShape(), []int{d.C, d.H, d.W}; fmt.Sprint(got) != fmt.Sprint(want) {
		return fmt.Errorf("model %s takes inputs of shape %v but the data has %v", path, got, want)
	}
	for i, y := range d.Y {
		if y < 0 || int(y) >= clf.NumClasses() {
			return fmt.Errorf("label %d of sample %d is outside the model's %d classes", y, i, clf.NumClasses())
		}
	}
	switch c.String("convention") {
	case "aa":
	case "adv-acc":
		for _, f := range []string{"per-sample", "resume"} {
			if c.IsSet(f) {
				return usagef("--%s works with --convention aa only", f)
			}
		}
		return runAdvAccuracy(c, path, clf, d, list, opts, w, errw)
	default:
		return usagef("--convention %q: want aa or adv-acc", c.String("convention"))
	}
	eo := attacks.EvalOptions{BatchSize: c.Int("batch")}
	statePath := c.String("resume")
	if statePath != "" {
		if b, err := os.ReadFile(statePath); err == nil {
			st := &attacks.EvalState{}
			if err := json.Unmarshal(b, st); err != nil {
				return fmt.Errorf("resume state %s: %w", statePath, err)
			}
			eo.Resume = st
			fmt.Fprintf(errw, "resuming from %s\n", statePath)
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("resume state: %w", err)
		}
		eo.Checkpoint = func(st *attacks.EvalState) error { return writeJSON(statePath, st) }
	}
	bars := map[string]*progressBar{}
	eo.Progress = func(p attacks.Progress) {
		b, ok := bars[p.Attack]
		if !ok {
			b = newProgress(errw, p.Attack)
			bars[p.Attack] = b
		}
		b.update(p.Batch, p.Batches)
	}
	start := time.Now()
	res, runErr := attacks.Evaluate(c.Context, clf, d.X, d.Y, list, eo)
	if res == nil {
		return runErr
	}
	rep := attackReport{Model: path, Data: d.Name, N: res.N, CleanAccuracy: res.CleanAccuracy, RobustAccuracy: res.RobustAccuracy,
		PerAttack: res.Attacks, Counts: res.Counts, Flags: res.Flags, Seconds: time.Since(start).Seconds(), Device: opts.Device.String(),
		Interrupted: runErr != nil}
	for _, a := range list {
		rep.Settings = append(rep.Settings, attackSetting{Name: a.Name(), Options: a})
	}
	fmt.Fprintf(w, "clean accuracy:  %6.2f%%  (%d samples, %s)\n", rep.CleanAccuracy, rep.N, d.Name)
	for _, a := range res.Attacks {
		fmt.Fprintf(w, "after %-12s %6.2f%%  (ε=%g %s, broke %d of %d, %d gradient calls)\n", a.Name+":", a.RobustAccuracy, a.Epsilon, a.Norm, a.Broken, a.Attacked, a.Counts.GradCalls)
	}
	fmt.Fprintf(w, "robust accuracy: %6.2f%%  (%.1fs)\n", rep.RobustAccuracy, rep.Seconds)
	for _, f := range res.Flags {
		fmt.Fprintf(errw, "warning: %s: %s\n", f.Check, f.Message)
	}
	if err := writeJSON(c.String("json"), rep); err != nil {
		return err
	}
	if p := c.String("save-adv"); p != "" && res.Adv != nil {
		if err := npy.WriteFile(p, npy.FromFloat32(res.Adv, d.Len(), d.C, d.H, d.W)); err != nil {
			return err
		}
	}
	if p := c.String("per-sample"); p != "" {
		if err := writePerSample(p, res.Samples); err != nil {
			return err
		}
	}
	if runErr != nil {
		if statePath != "" {
			return fmt.Errorf("interrupted; partial results written, resume with --resume %s: %w", statePath, runErr)
		}
		return fmt.Errorf("interrupted; partial results written: %w", runErr)
	}
	return nil
}

func writePerSample(path string, samples []attacks.SampleResult) error {
	var b strings.Builder
	bw := bufio.NewWriter(&b)
	enc := json.NewEncoder(bw)
	for i, s := range samples {
		line := struct {
			Index int `json:"index"`
			attacks.SampleResult
		}{i, s}
		if err := enc.Encode(line); err != nil {
			return err
		}
	}
	bw.Flush()
	return onnxio.WriteFileAtomic(path, []byte(b.String()))
}

// advAccReport is the JSON document of `srtool attack --convention adv-acc`.
type advAccReport struct {
	Model          string                 `json:"model"`
	Data           string                 `json:"data"`
	Convention     string                 `json:"convention"`
	N              int                    `json:"n"`
	CleanAccuracy  float64                `json:"clean_accuracy"`
	RobustAccuracy float64                `json:"robust_accuracy"` // correct under every attack
	PerAttack      []*attacks.AdvAccuracy `json:"per_attack"`
	Seconds        float64                `json:"seconds"`
	Settings       []attackSetting        `json:"settings"`
	Device         string                 `json:"device"`
}

func runAdvAccuracy(c *cli.Context, path string, clf *ort.Classifier, d *dataset.Dataset, list []attacks.Attack, opts ort.Options, w, errw io.Writer) error {
	start := time.Now()
	allCorrect, err := correctness(c.Context, clf, d, c.Int("batch"))
	if err != nil {
		return err
	}
	clean := 0
	for _, ok := range allCorrect {
		if ok {
			clean++
		}
	}
	rep := advAccReport{Model: path, Data: d.Name, Convention: "adv-acc", N: d.Len(), CleanAccuracy: 100 * float64(clean) / float64(d.Len()), Device: opts.Device.String()}
	fmt.Fprintf(w, "clean accuracy:  %6.2f%%  (%d samples, %s)\n", rep.CleanAccuracy, rep.N, d.Name)
	var lastAdv []float32
	for _, a := range list {
		bar := newProgress(errw, a.Name())
		r, err := attacks.AdversarialAccuracy(c.Context, clf, d.X, d.Y, a, c.Int("batch"), bar.update)
		if err != nil {
			return err
		}
		for i, p := range r.Pred {
			if p != d.Y[i] {
				allCorrect[i] = false
			}
		}
		rep.PerAttack = append(rep.PerAttack, r)
		rep.Settings = append(rep.Settings, attackSetting{Name: a.Name(), Options: a})
		lastAdv = r.Adv
		fmt.Fprintf(w, "%-12s accuracy on adversarial examples %6.2f%%  (%d gradient calls)\n", a.Name()+":", r.Accuracy, r.Counts.GradCalls)
	}
	n := 0
	for _, ok := range allCorrect {
		if ok {
			n++
		}
	}
	rep.RobustAccuracy = 100 * float64(n) / float64(d.Len())
	rep.Seconds = time.Since(start).Seconds()
	fmt.Fprintf(w, "robust accuracy: %6.2f%%  (correct clean and under every attack, %.1fs)\n", rep.RobustAccuracy, rep.Seconds)
	if p := c.String("save-adv"); p != "" && lastAdv != nil {
		if err := npy.WriteFile(p, npy.FromFloat32(lastAdv, d.Len(), d.C, d.H, d.W)); err != nil {
			return err
		}
	}
	return writeJSON(c.String("json"), rep)
}
