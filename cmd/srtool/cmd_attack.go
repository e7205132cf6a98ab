package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/npy"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
	"github.com/semirobust/srtool/report"
)

// attackReport is the JSON document of `srtool attack --convention aa`.
// Numbers of unfinished work are null, never 0 or 100: CleanAccuracy until
// the clean pass finished, RobustAccuracy unless the run is complete;
// PerAttack holds the finished attacks only, Pending the others.
type attackReport struct {
	report.Header
	Model string `json:"model"`
	// ModelSHA256 is the hash of the model as it ran: the ONNX bytes after
	// --mean/--std normalisation was prepended.
	ModelSHA256    string   `json:"model_sha256"`
	Data           string   `json:"data"`
	Offset         int      `json:"offset"`
	N              int      `json:"n"`
	Convention     string   `json:"convention"`
	CleanAccuracy  *float64 `json:"clean_accuracy"`
	RobustAccuracy *float64 `json:"robust_accuracy"`
	// CleanCorrect and RobustPoints are the counts behind the accuracies
	// (what srtool merge adds up); null when not measured.
	CleanCorrect *int                    `json:"clean_correct"`
	RobustPoints *int                    `json:"robust_points"`
	PerAttack    []attacks.AttackReport  `json:"per_attack"`
	Pending      []attacks.PendingAttack `json:"pending,omitempty"`
	// Settings are every attack of the command line with its resolved settings.
	Settings []attacks.Setting `json:"settings"`
	Counts   attacks.Counts    `json:"counts"`
	Warnings []attacks.Flag    `json:"warnings"`
	Outputs  attackOutputs     `json:"outputs"`
	Seconds  float64           `json:"seconds"`
	Device   string            `json:"device"`
	// MergedFrom lists the shard reports of a merged report; Seconds and
	// call counts are then the shards' sums.
	MergedFrom []string `json:"merged_from,omitempty"`
}

// attackOutputs are the files a run wrote; names ending in .partial hold an
// unfinished run's results.
type attackOutputs struct {
	ResumeState string `json:"resume_state,omitempty"`
	PerSample   string `json:"per_sample,omitempty"`
	Adv         string `json:"adv,omitempty"`
}

// partialSuffix marks --per-sample and --save-adv files of an unfinished run.
const partialSuffix = ".partial"

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
	if ap.eps, err = parseNumber(c.String("eps")); err != nil {
		return ap, usagef("--eps: %v", err)
	}
	if ap.eps <= 0 {
		return ap, usagef("--eps %s: ε must be greater than 0 (pixel units of inputs in [0,1], e.g. 8/255)", c.String("eps"))
	}
	if ap.norm == attacks.LInf && ap.eps > 1 {
		return ap, usagef("--eps %s is above 1, the whole [0,1] pixel range (pass 8/255, not 8)", c.String("eps"))
	}
	if s := c.String("alpha"); s != "" {
		if ap.alpha, err = parseNumber(s); err != nil || ap.alpha <= 0 {
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
		for _, f := range settingFlags(a) {
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

// settingFlags lists the setting flags configureAttack applies to a.
func settingFlags(a attacks.Attack) []string {
	switch t := a.(type) {
	case *attacks.PGD:
		if t.NoRandomStart { // I-FGSM/BIM: no random start to turn off
			return []string{"steps", "alpha", "restarts"}
		}
		return []string{"steps", "alpha", "restarts", "no-random-start"}
	case *attacks.MIFGSM:
		return []string{"steps", "alpha"}
	case *attacks.CW:
		return []string{"steps"}
	case *attacks.APGD, *attacks.APGDT, *attacks.FAB, *attacks.Square:
		return []string{"steps", "restarts"}
	}
	return nil
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

// attackRun is what both conventions share: the model, the data and the
// attacks, checked.
type attackRun struct {
	c         *cli.Context
	path      string
	clf       *ort.Classifier
	d         *dataset.Dataset
	list      []attacks.Attack
	opts      ort.Options
	modelHash string
	w, errw   io.Writer
	start     time.Time
	// fingerprint binds shard reports of one run (runFingerprint); lo is
	// the global index of d's first sample and sharding is set with --shard.
	runFP    string
	lo       int
	sharding *report.Sharding
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
	clf, err := ort.NewClassifier(m, opts)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer clf.Close()
	if err := checkInputShape(path, clf.InputShape(), d); err != nil {
		return err
	}
	if err := checkLabels(d, clf.NumClasses(), path); err != nil {
		return err
	}
	sr, skip, err := startShard(c, w, []string{path}, d)
	if err != nil || skip {
		return err
	}
	sh := sr.shard
	r := &attackRun{c: c, path: path, clf: clf, d: d, list: list, opts: opts, modelHash: hex.EncodeToString(sum[:]), w: w, errw: errw, start: start, runFP: sr.fingerprint}
	if c.String("shard") != "" {
		lo, hi := sh.Range(d.Len())
		r.sharding = &report.Sharding{Shard: sh, Lo: lo, Hi: hi, Total: d.Len()}
		r.lo = lo
		r.d = d.Slice(lo, hi)
		if r.d.Len() == 0 {
			return usagef("--shard %s of %d samples is empty; use at most %d shards", sh, d.Len(), d.Len())
		}
	}
	if conv == "adv-acc" {
		return r.advAccuracy()
	}
	return r.autoAttackConvention()
}

// settings are the run's attacks with their resolved settings.
func (r *attackRun) settings(convention string) []attacks.Setting {
	out := make([]attacks.Setting, len(r.list))
	for i, a := range r.list {
		out[i] = attacks.SettingOf(a, r.clf.NumClasses())
		out[i].Convention = convention
	}
	return out
}

// fingerprint is what the command adds to Evaluate's fingerprint of a
// resume state: the model, which samples of the source, the seed and the
// tool version (Evaluate adds the data's count and hash, the classes and
// every attack's resolved settings). --batch is not part of it: results do
// not depend on it.
func (r *attackRun) fingerprint() attacks.Fingerprint {
	off := r.c.Int("offset")
	return attacks.Fingerprint{
		{Name: "model sha256", Value: r.modelHash},
		{Name: "data offset", Value: strconv.Itoa(off)},
		{Name: "data first index", Value: strconv.Itoa(off + r.lo)},
		{Name: "data last index", Value: strconv.Itoa(off + r.lo + r.d.Len() - 1)},
		{Name: "seed", Value: strconv.FormatInt(r.c.Int64("seed"), 10)},
		{Name: "tool version", Value: toolVersion()},
	}
}

// autoAttackConvention runs Evaluate (--convention aa).
func (r *attackRun) autoAttackConvention() error {
	c, d := r.c, r.d
	eo := attacks.EvalOptions{BatchSize: c.Int("batch"), Fingerprint: r.fingerprint()}
	statePath := c.String("resume")
	if statePath != "" {
		b, err := onnxio.ReadRegular(statePath, report.MaxStateBytes)
		switch {
		case err == nil:
			st, err := attacks.ParseEvalState(b)
			if err != nil {
				return fmt.Errorf("--resume %s: %w; nothing was run (delete the file to start over)", statePath, err)
			}
			eo.Resume = st
		case errors.Is(err, os.ErrNotExist):
		default:
			return fmt.Errorf("--resume %s: %w", statePath, err)
		}
		eo.Checkpoint = func(st *attacks.EvalState) error {
			b, err := json.Marshal(st)
			if err != nil {
				return err
			}
			return onnxio.WriteFileAtomic(statePath, b)
		}
	}
	bars := map[string]*progressBar{}
	announce := eo.Resume != nil // said once the state is accepted
	eo.Progress = func(p attacks.Progress) {
		if announce {
			fmt.Fprintf(r.errw, "resumed from %s\n", statePath)
			announce = false
		}
		b, ok := bars[p.Attack]
		if !ok {
			b = newProgress(r.errw, p.Attack)
			bars[p.Attack] = b
		}
		b.update(p.Done, p.Total)
		if onAttackProgress != nil {
			onAttackProgress(p)
		}
	}
	res, runErr := attacks.Evaluate(c.Context, r.clf, d.X, d.Y, r.list, eo)
	if res == nil {
		if statePath != "" && eo.Resume != nil {
			return fmt.Errorf("--resume %s: %w; nothing was run (pass another --resume file, or delete this one to start over)", statePath, runErr)
		}
		return runErr
	}
	if announce {
		fmt.Fprintf(r.errw, "resumed from %s, which had finished\n", statePath)
	}
	complete := res.Complete && runErr == nil
	rep := attackReport{Header: r.header(), Model: r.path, ModelSHA256: r.modelHash, Data: d.Name, Offset: c.Int("offset"), N: res.N,
		Convention: "aa", PerAttack: res.Attacks, Pending: res.Pending, Settings: r.settings("aa"), Counts: res.Counts, Warnings: res.Flags,
		Device: r.opts.Device.String()}
	if !complete {
		rep.MarkIncomplete(runErr)
		if runErr == nil {
			rep.Incomplete = "stopped early"
		}
	}
	if res.CleanDone {
		rep.CleanAccuracy = &res.CleanAccuracy
		correct := 0
		for _, s := range res.Samples {
			if s.CleanPred == s.Label {
				correct++
			}
		}
		rep.CleanCorrect = &correct
	}
	if complete {
		rep.RobustAccuracy = &res.RobustAccuracy
		robust := 0
		for _, s := range res.Samples {
			if s.Robust {
				robust++
			}
		}
		rep.RobustPoints = &robust
	}
	if rep.PerAttack == nil {
		rep.PerAttack = []attacks.AttackReport{}
	}
	if rep.Warnings == nil {
		rep.Warnings = []attacks.Flag{}
	}
	rep.Outputs.ResumeState = statePath

	// Outputs first, so that the report can name them.
	var outErr error
	if p := c.String("per-sample"); p != "" {
		rep.Outputs.PerSample, outErr = writeOutput(p, complete, func(path string) error { return writePerSample(path, res, r.lo) })
	}
	if p := c.String("save-adv"); p != "" && outErr == nil {
		rep.Outputs.Adv, outErr = writeOutput(p, complete, func(path string) error {
			return npy.WriteFile(path, npy.FromFloat32(res.Adv, d.Len(), d.C, d.H, d.W))
		})
	}
	rep.Seconds = time.Since(r.start).Seconds()
	r.printSummary(res, rep)
	if err := report.WriteJSON(c.String("json"), rep); err != nil {
		return err
	}
	if outErr != nil {
		return outErr
	}
	if runErr == nil {
		return nil
	}
	done := evalDone(res) + r.written(rep, complete)
	if isCancel(runErr) {
		resume := "nothing was saved to resume from: run the command again (add --resume FILE to make a run resumable)"
		if statePath != "" {
			resume = fmt.Sprintf("resume with the same command (--resume %s)", statePath)
		}
		return interrupted(runErr, done, resume)
	}
	return fmt.Errorf("%w (%s)", runErr, done)
}

// evalDone says what an unfinished Evaluate finished.
func evalDone(res *attacks.EvalResult) string {
	if !res.CleanDone {
		return fmt.Sprintf("the clean pass stopped at %d of %d points", res.State.Cleaned, res.N)
	}
	var names []string
	for _, a := range res.Attacks {
		names = append(names, a.Name)
	}
	s := "the clean pass"
	if len(names) > 0 {
		s += " and " + strings.Join(names, ", ")
	}
	s += " finished"
	if len(res.Pending) > 0 && res.Pending[0].Total >= 0 {
		p := res.Pending[0]
		s += fmt.Sprintf(", %s stopped at %d of %d points", p.Name, p.Done, p.Total)
	}
	return s
}

// written lists the files an unfinished run wrote, for the interrupted: line.
func (r *attackRun) written(rep attackReport, complete bool) string {
	var parts []string
	if p := r.c.String("json"); p != "" {
		parts = append(parts, fmt.Sprintf("report written to %s (complete: %v)", p, complete))
	}
	if rep.Outputs.PerSample != "" {
		parts = append(parts, "per-sample verdicts in "+rep.Outputs.PerSample)
	}
	if rep.Outputs.Adv != "" {
		parts = append(parts, "adversarial inputs in "+rep.Outputs.Adv)
	}
	if len(parts) == 0 {
		return ""
	}
	return "; " + strings.Join(parts, ", ")
}

// writeOutput writes a --per-sample or --save-adv file: to path when the
// run is complete (removing an older path.partial), else to path.partial.
// It returns the name written.
func writeOutput(path string, complete bool, write func(string) error) (string, error) {
	if !complete {
		path += partialSuffix
		return path, write(path)
	}
	if err := write(path); err != nil {
		return "", err
	}
	if err := os.Remove(path + partialSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
		return path, err
	}
	return path, nil
}

func (r *attackRun) printSummary(res *attacks.EvalResult, rep attackReport) {
	w := r.w
	if rep.CleanAccuracy != nil {
		fmt.Fprintf(w, "clean accuracy:  %6.2f%%  (%d samples, %s)\n", *rep.CleanAccuracy, rep.N, r.d.Name)
	} else {
		fmt.Fprintf(w, "clean accuracy:  not finished (%d of %d samples classified)\n", res.State.Cleaned, rep.N)
	}
	for _, a := range res.Attacks {
		fmt.Fprintf(w, "after %-12s %6.2f%%  (%s; broke %d of %d, %d gradient calls)\n", a.Name+":", a.RobustAccuracy, a.Setting, a.Broken, a.Attacked, a.Counts.GradCalls)
	}
	for _, p := range res.Pending {
		if p.Total >= 0 {
			fmt.Fprintf(w, "%-18s not finished (%d of %d points attacked)\n", p.Name+":", p.Done, p.Total)
		} else {
			fmt.Fprintf(w, "%-18s not finished (not started)\n", p.Name+":")
		}
	}
	if rep.RobustAccuracy != nil {
		fmt.Fprintf(w, "robust accuracy: %6.2f%%  (aa convention: worst case over the attacks, misclassified points count as broken; %.1fs)\n", *rep.RobustAccuracy, rep.Seconds)
	} else {
		fmt.Fprintf(w, "robust accuracy: not finished\n")
	}
	for _, f := range rep.Warnings {
		fmt.Fprintf(r.errw, "warning: %s: %s\n", f.Check, f.Message)
	}
}

// sampleRow is one line of --per-sample. Values not measured are null:
// robust, adv_pred and dist until the point's verdict is final, clean_pred
// until the clean pass reached it.
type sampleRow struct {
	Index     int      `json:"index"`
	Label     int64    `json:"label"`
	CleanPred *int64   `json:"clean_pred"`
	AdvPred   *int64   `json:"adv_pred"`
	Robust    *bool    `json:"robust"`
	BrokenBy  string   `json:"broken_by,omitempty"`
	Dist      *float32 `json:"dist"`
	Complete  bool     `json:"complete"`
}

// writePerSample writes res's verdicts; lo is the global index of the first
// sample (a shard's start).
func writePerSample(path string, res *attacks.EvalResult, lo int) error {
	var b bytes.Buffer
	bw := bufio.NewWriter(&b)
	enc := json.NewEncoder(bw)
	for i, s := range res.Samples {
		row := sampleRow{Index: lo + i, Label: s.Label, BrokenBy: s.BrokenBy, Complete: s.Complete}
		if i < res.State.Cleaned {
			row.CleanPred = &s.CleanPred
		}
		if s.Complete {
			row.AdvPred, row.Robust, row.Dist = &s.AdvPred, &s.Robust, &s.Dist
		}
		if err := enc.Encode(row); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return onnxio.WriteFileAtomic(path, b.Bytes())
}

// advAccReport is the JSON document of `srtool attack --convention adv-acc`.
type advAccReport struct {
	report.Header
	Model          string   `json:"model"`
	ModelSHA256    string   `json:"model_sha256"` // after --mean/--std prepending
	Data           string   `json:"data"`
	Offset         int      `json:"offset"`
	N              int      `json:"n"`
	Convention     string   `json:"convention"`
	CleanAccuracy  *float64 `json:"clean_accuracy"`
	RobustAccuracy *float64 `json:"robust_accuracy"` // correct clean and under every attack; null unless complete
	// CleanCorrect and RobustPoints are the counts behind the accuracies.
	CleanCorrect *int `json:"clean_correct"`
	RobustPoints *int `json:"robust_points"`
	// PerAttack holds the finished attacks only, Pending the others.
	PerAttack []*attacks.AdvAccuracy `json:"per_attack"`
	Pending   []string               `json:"pending,omitempty"`
	Settings  []attacks.Setting      `json:"settings"`
	Outputs   attackOutputs          `json:"outputs"`
	Seconds   float64                `json:"seconds"`
	Device    string                 `json:"device"`
	// MergedFrom lists the shard reports of a merged report.
	MergedFrom []string `json:"merged_from,omitempty"`
}

// advAccuracy runs every attack on every point (--convention adv-acc). It
// keeps no resume state; an unfinished run writes its report (complete
// false) and no --save-adv file.
func (r *attackRun) advAccuracy() error {
	c, d := r.c, r.d
	rep := advAccReport{Header: r.header(), Model: r.path, ModelSHA256: r.modelHash, Data: d.Name, Offset: c.Int("offset"), N: d.Len(),
		Convention: "adv-acc", PerAttack: []*attacks.AdvAccuracy{}, Settings: r.settings("adv-acc"), Device: r.opts.Device.String()}
	stop := func(err error, next int) error {
		rep.MarkIncomplete(err)
		for _, a := range r.list[next:] {
			rep.Pending = append(rep.Pending, a.Name())
			fmt.Fprintf(r.w, "%-12s not finished\n", a.Name()+":")
		}
		fmt.Fprintf(r.w, "robust accuracy: not finished\n")
		rep.Seconds = time.Since(r.start).Seconds()
		if werr := report.WriteJSON(c.String("json"), rep); werr != nil {
			return werr
		}
		done := "the clean pass stopped"
		if rep.CleanAccuracy != nil {
			names := make([]string, 0, next)
			for _, a := range r.list[:next] {
				names = append(names, a.Name())
			}
			done = "the clean pass" + strings.TrimSuffix(" and "+strings.Join(names, ", "), " and ") + " finished, " + r.list[next].Name() + " did not"
		}
		if p := c.String("json"); p != "" {
			done += fmt.Sprintf("; report written to %s (complete: false)", p)
		}
		if c.String("save-adv") != "" {
			done += "; --save-adv not written"
		}
		if isCancel(err) {
			return interrupted(err, done, "the adv-acc convention keeps no resume state: run the command again")
		}
		return fmt.Errorf("%w (%s)", err, done)
	}
	allCorrect, err := correctness(c.Context, r.clf, d, c.Int("batch"))
	if err != nil {
		fmt.Fprintf(r.w, "clean accuracy:  not finished\n")
		return stop(err, 0)
	}
	clean := 0
	for _, ok := range allCorrect {
		if ok {
			clean++
		}
	}
	ca := 100 * float64(clean) / float64(d.Len())
	rep.CleanAccuracy, rep.CleanCorrect = &ca, &clean
	fmt.Fprintf(r.w, "clean accuracy:  %6.2f%%  (%d samples, %s)\n", ca, rep.N, d.Name)
	var lastAdv []float32
	for i, a := range r.list {
		bar := newProgress(r.errw, a.Name())
		update := func(done, total int) {
			bar.update(done, total)
			if onAttackProgress != nil {
				onAttackProgress(attacks.Progress{Attack: a.Name(), Step: i, Steps: len(r.list), Done: done, Total: total, N: d.Len()})
			}
		}
		res, err := attacks.AdversarialAccuracy(c.Context, r.clf, d.X, d.Y, a, c.Int("batch"), update)
		if err != nil {
			return stop(err, i)
		}
		for j, p := range res.Pred {
			if p != d.Y[j] {
				allCorrect[j] = false
			}
		}
		rep.PerAttack = append(rep.PerAttack, res)
		lastAdv = res.Adv
		fmt.Fprintf(r.w, "%-12s accuracy on adversarial examples %6.2f%%  (%s; %d gradient calls)\n", a.Name()+":", res.Accuracy, res.Setting, res.Counts.GradCalls)
	}
	n := 0
	for _, ok := range allCorrect {
		if ok {
			n++
		}
	}
	ra := 100 * float64(n) / float64(d.Len())
	rep.RobustAccuracy, rep.RobustPoints = &ra, &n
	if p := c.String("save-adv"); p != "" {
		if err := npy.WriteFile(p, npy.FromFloat32(lastAdv, d.Len(), d.C, d.H, d.W)); err != nil {
			return err
		}
		rep.Outputs.Adv = p
	}
	rep.Seconds = time.Since(r.start).Seconds()
	fmt.Fprintf(r.w, "robust accuracy: %6.2f%%  (adv-acc convention: correct clean and under every attack; %.1fs)\n", ra, rep.Seconds)
	return report.WriteJSON(c.String("json"), rep)
}

// header is the report header of this run: fingerprint and sharding set.
func (r *attackRun) header() report.Header {
	h := newHeader(r.c)
	h.Fingerprint = r.runFP
	h.Sharding = r.sharding
	return h
}
