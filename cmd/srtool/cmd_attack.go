package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/progress"
	"github.com/semirobust/srtool/runs"
)

// onAttackProgress, when set (by tests), sees every progress report of
// `attack` after the progress bar: a test cancels the context there.
var onAttackProgress func(attacks.Progress)

func attackFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "attack", Value: "pgd", Usage: "comma-separated list of " + strings.Join(attacks.Names(), ", ") +
			". Losses: fgsm, pgd, mifgsm, apgd-ce cross-entropy; apgd-dlr DLR; apgd-t targeted DLR; cw the C&W margin; square the margin; fab the decision boundary. " +
			"apgd-t and fab-t attack 9 target classes (at most classes − 1); autoattack runs the official settings (apgd-ce 100 steps, apgd-t 9 targets × 100 steps, fab-t 9 targets × 100 steps, square 5000 queries), which --steps, --alpha and --restarts do not change"},
	}, attackParamFlags()...)
}

// attackParamFlags are the threat-model and attack-setting flags without the
// attack list, for commands that name their attacks in other flags.
func attackParamFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "eps", Value: "8/255", Usage: "perturbation radius ε in pixel units of inputs in [0,1], e.g. 8/255 or 0.031; more than 0 and at most 1 (linf), √(C·H·W) (l2) or C·H·W (l1)"},
		&cli.StringFlag{Name: "norm", Value: "linf", Usage: "threat model: linf, l2 or l1"},
		&cli.IntFlag{Name: "steps", Usage: "iterations per run, at least 1",
			DefaultText: "per attack: fgsm 1, pgd 10, mifgsm 10, cw 50 Adam steps, apgd-ce/apgd-dlr/apgd-t 100, fab/fab-t 100, square 5000 queries"},
		&cli.StringFlag{Name: "alpha", Usage: "step size α of pgd and mifgsm, > 0 (fgsm steps by ε; apgd and fab adapt their steps)",
			DefaultText: "ε/4, i.e. 2/255 at ε = 8/255; pgd with l2 or l1: ε/5"},
		&cli.IntFlag{Name: "restarts", Usage: "runs from fresh starts, at least 1",
			DefaultText: "1 for every attack; apgd-t and fab-t: 1 per target class"},
		&cli.BoolFlag{Name: "no-random-start", Usage: "pgd starts from the clean input (default: a uniform random point of the ε-ball; apgd and square always start at random, fgsm, mifgsm, cw and fab from the clean input)"},
	}
}

func attackCommand() *cli.Command {
	return &cli.Command{
		Name:      "attack",
		Usage:     "clean and robust accuracy under attacks (FGSM, PGD, C&W, APGD, FAB-T, Square, AutoAttack)",
		ArgsUsage: "MODEL.onnx",
		Flags: append(append(append(append(commonFlags(), dataFlags()...), attackFlags()...), shardFlags()...),
			&cli.StringFlag{Name: "save-adv", Usage: "write the adversarial inputs to `X.npy` (N×C×H×W float32; adv-acc: the last attack's); an unfinished run writes X.npy.partial (aa) or nothing (adv-acc)"},
			&cli.StringFlag{Name: "per-sample", Usage: "write one JSON line per sample to `F.jsonl` (aa only); an unfinished run writes F.jsonl.partial, whose rows say \"complete\" and hold null for undecided verdicts"},
			&cli.StringFlag{Name: "resume", Usage: "resume state `FILE` (aa only): saved at least every 30 s of work and when interrupted, resumed if it exists; refused if it belongs to another model, data, attack setting or srtool version"},
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

// attackSpec reads the attack-setting flags (attacks.Spec); Spec.Parse
// and attacks.Build check them.
func attackSpec(c *cli.Context) attacks.Spec {
	given := map[string]bool{}
	for _, f := range []string{attacks.ConfigSteps, attacks.ConfigStepSize, attacks.ConfigRestarts, attacks.ConfigNoRandomStart} {
		given[f] = c.IsSet(f)
	}
	return attacks.Spec{Eps: c.String("eps"), Norm: c.String("norm"), Alpha: c.String("alpha"), Steps: c.Int("steps"), Restarts: c.Int("restarts"),
		NoRandomStart: c.Bool("no-random-start"), Seed: uint64(c.Int64("seed")), Given: given}
}

// buildAttacks turns --attack/--eps/--norm/... into configured attacks
// (attacks.Build); invalid values are usage errors.
func buildAttacks(c *cli.Context) ([]attacks.Attack, error) {
	list, err := attacks.Build(c.String("attack"), attackSpec(c))
	return list, usageOf(err)
}

func runAttack(c *cli.Context, path string, w, errw io.Writer) error {
	start := time.Now()
	opts, err := engineOptions(c)
	if err != nil {
		return err
	}
	conv := c.String("convention")
	switch conv {
	case "aa":
	case "adv-acc":
		for _, f := range []string{"per-sample", "resume"} {
			if c.IsSet(f) {
				return usagef("--%s works with --convention aa only", f)
			}
		}
	default:
		return usagef("--convention %q: want aa or adv-acc", conv)
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
	p, err := attackSpec(c).Parse()
	if err == nil {
		err = p.CheckEps(d.C * d.H * d.W)
	}
	if err != nil {
		return usageOf(err)
	}
	sha, err := runs.ModelSHA256(m)
	if err != nil {
		return err
	}
	clf, err := runs.Classifier(m, path, opts, d)
	if err != nil {
		return err
	}
	defer clf.Close()
	sr, skip, err := startShard(c, w, []string{path}, d)
	if err != nil || skip {
		return err
	}
	o := runs.AttackOptions{Model: path, ModelSHA256: sha, Header: newHeader(c), Offset: c.Int("offset"),
		Seed: c.Int64("seed"), Version: toolVersion(), Batch: c.Int("batch"), Device: opts.Device.String(), JSON: c.String("json"),
		Resume: c.String("resume"), PerSample: c.String("per-sample"), SaveAdv: c.String("save-adv"), Start: start, Log: errw}
	o.Header.Fingerprint = sr.fingerprint
	if c.String("shard") != "" {
		total := d.Len()
		lo, hi := o.Header.SetShard(sr.shard, total)
		o.Lo, d = lo, d.Slice(lo, hi)
		if d.Len() == 0 {
			return usagef("--shard %s of %d samples is empty; use at most %d shards", sr.shard, total, total)
		}
	}
	// One bar per attack (aa: per attack name, as Evaluate reports them;
	// adv-acc: per attack of the list).
	bars := progress.NewBars(errw)
	o.Progress = func(p attacks.Progress) {
		key := p.Attack
		if conv == "adv-acc" {
			key = fmt.Sprint(p.Step, key)
		}
		bars.Update(key, p.Attack, p.Done, p.Total)
		if onAttackProgress != nil {
			onAttackProgress(p)
		}
	}
	if conv == "adv-acc" {
		_, err = runs.AttackAdvAcc(c.Context, clf, d, list, o, w)
	} else {
		_, err = runs.AttackAA(c.Context, clf, d, list, o, w)
	}
	return err
}
