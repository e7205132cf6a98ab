package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/diffmodel"
	"github.com/semirobust/srtool/internal/number"
	"github.com/semirobust/srtool/progress"
	"github.com/semirobust/srtool/report"
	"github.com/semirobust/srtool/runs"
)

// partialSuffix marks --per-sample and --save-adv files of an unfinished run.
const partialSuffix = runs.PartialSuffix

// writeOutput writes an output file, to path.partial when the run is not complete.
var writeOutput = runs.WriteOutput

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

// attackParams are the attack-setting flags, read and checked.
type attackParams struct {
	eps      float64
	norm     attacks.Norm
	alpha    float64 // 0: each attack's default
	steps    int     // 0: each attack's default
	restarts int     // 0: each attack's default
}

// readAttackParams reads --eps, --norm, --alpha, --steps and --restarts;
// out-of-range values are usage errors. ε's upper bound for L2 and L1
// depends on the input size: checkEpsRange.
func readAttackParams(c *cli.Context) (attackParams, error) {
	var ap attackParams
	var err error
	if ap.norm, err = attacks.ParseNorm(c.String("norm")); err != nil {
		return ap, usagef("--norm: %v", err)
	}
	if ap.eps, err = number.Parse(c.String("eps")); err != nil {
		return ap, usagef("--eps: %v", err)
	}
	if ap.eps <= 0 {
		return ap, usagef("--eps %s: ε must be greater than 0 (pixel units of inputs in [0,1], e.g. 8/255)", c.String("eps"))
	}
	if ap.norm == attacks.LInf && ap.eps > 1 {
		return ap, usagef("--eps %s is above 1, the whole [0,1] pixel range (pass 8/255, not 8)", c.String("eps"))
	}
	if s := c.String("alpha"); s != "" {
		if ap.alpha, err = number.Parse(s); err != nil || ap.alpha <= 0 {
			return ap, usagef("--alpha must be a positive number, got %q", s)
		}
	}
	if c.IsSet("steps") {
		if ap.steps = c.Int("steps"); ap.steps < 1 {
			return ap, usagef("--steps %d: must be at least 1 (leave it out for each attack's default)", ap.steps)
		}
	}
	if c.IsSet("restarts") {
		if ap.restarts = c.Int("restarts"); ap.restarts < 1 {
			return ap, usagef("--restarts %d: must be at least 1 (leave it out for each attack's default)", ap.restarts)
		}
	}
	return ap, nil
}

// checkEpsRange refuses an ε above the largest distance between two inputs
// of d values in [0,1]: 1 (L∞), √d (L2), d (L1).
func checkEpsRange(c *cli.Context, d int) error {
	ap, err := readAttackParams(c)
	if err != nil {
		return err
	}
	switch ap.norm {
	case attacks.L2:
		if limit := math.Sqrt(float64(d)); ap.eps > limit {
			return usagef("--eps %s is above √%d = %.4g, the largest L2 distance between two inputs in [0,1]^%d", c.String("eps"), d, limit, d)
		}
	case attacks.L1:
		if ap.eps > float64(d) {
			return usagef("--eps %s is above %d, the largest L1 distance between two inputs in [0,1]^%d", c.String("eps"), d, d)
		}
	}
	return nil
}

// buildAttacks turns --attack/--eps/--norm/... into configured attacks.
// Invalid values, and setting flags that no listed attack reads, are usage
// errors.
func buildAttacks(c *cli.Context) ([]attacks.Attack, error) {
	ap, err := readAttackParams(c)
	if err != nil {
		return nil, err
	}
	var list []attacks.Attack
	reads := map[string]bool{}
	for _, name := range strings.Split(c.String("attack"), ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		a, err := attacks.ByName(name, float32(ap.eps), c.String("norm"))
		if err != nil {
			return nil, usagef("--attack %s: %v", name, err)
		}
		for _, f := range attacks.Reads(a) {
			reads[f] = true
		}
		configureAttack(a, ap.steps, float32(ap.alpha), ap.restarts, uint64(c.Int64("seed")), c.Bool("no-random-start"))
		list = append(list, a)
	}
	if len(list) == 0 {
		return nil, usagef("--attack names no attack; choose from %s", strings.Join(attacks.Names(), ", "))
	}
	for _, f := range []string{"steps", "alpha", "restarts", "no-random-start"} {
		if c.IsSet(f) && !reads[f] {
			return nil, usagef("--%s applies to none of --attack %s (see `srtool attack --help` for which attacks read it)", f, c.String("attack"))
		}
	}
	return list, nil
}

// configureAttack applies the generic command-line settings to an attack
// (attacks.Configure).
func configureAttack(a attacks.Attack, steps int, alpha float32, restarts int, seed uint64, noRandomStart bool) {
	attacks.Configure(a, attacks.Config{Steps: steps, StepSize: alpha, Restarts: restarts, Seed: seed, NoRandomStart: noRandomStart})
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
	if err := checkEpsRange(c, d.C*d.H*d.W); err != nil {
		return err
	}
	b, err := m.Encode()
	if err != nil {
		return err
	}
	sum := sha256.Sum256(b)
	clf, err := diffmodel.NewClassifier(m, opts)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer clf.Close()
	if err := d.CheckShape(path, clf.InputShape()); err != nil {
		return err
	}
	if err := d.CheckLabels(clf.NumClasses(), path); err != nil {
		return err
	}
	sr, skip, err := startShard(c, w, []string{path}, d)
	if err != nil || skip {
		return err
	}
	o := runs.AttackOptions{Model: path, ModelSHA256: hex.EncodeToString(sum[:]), Header: newHeader(c), Offset: c.Int("offset"),
		Seed: c.Int64("seed"), Version: toolVersion(), Batch: c.Int("batch"), Device: opts.Device.String(), JSON: c.String("json"),
		Resume: c.String("resume"), PerSample: c.String("per-sample"), SaveAdv: c.String("save-adv"), Start: start, Log: errw}
	o.Header.Fingerprint = sr.fingerprint
	if c.String("shard") != "" {
		total := d.Len()
		lo, hi := sr.shard.Range(total)
		o.Header.Sharding = &report.Sharding{Shard: sr.shard, Lo: lo, Hi: hi, Total: total}
		o.Lo, d = lo, d.Slice(lo, hi)
		if d.Len() == 0 {
			return usagef("--shard %s of %d samples is empty; use at most %d shards", sr.shard, total, total)
		}
	}
	// One bar per attack (aa: per attack name, as Evaluate reports them;
	// adv-acc: per attack of the list).
	bars := map[string]*progress.Bar{}
	o.Progress = func(p attacks.Progress) {
		key := p.Attack
		if conv == "adv-acc" {
			key = fmt.Sprint(p.Step, key)
		}
		bar, ok := bars[key]
		if !ok {
			bar = progress.New(errw, p.Attack)
			bars[key] = bar
		}
		bar.Update(p.Done, p.Total)
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
