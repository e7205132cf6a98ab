package main

import (
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/ort"
	"github.com/semirobust/srtool/report"
	"github.com/semirobust/srtool/semirobust"
)

// trainReport is the JSON document of `srtool train`. Best is the best
// epoch of a finished run; an unfinished one (Complete false) has only
// BestSoFar.
type trainReport struct {
	report.Header
	Model    string `json:"model"`
	Data     string `json:"data"`
	EvalData string `json:"eval_data"`
	// Adv and TRADES are the adversarial training as it ran (α resolved).
	Adv    *attacks.PGD `json:"adversarial_training,omitempty"`
	TRADES *ort.TRADES  `json:"trades,omitempty"`
	// Eval is the evaluation attack, every default resolved (null: clean).
	Eval      *attacks.Setting      `json:"eval_attack"`
	Options   finetune.Options      `json:"options"`
	Best      *semirobust.BestSoFar `json:"best,omitempty"`
	BestSoFar *semirobust.BestSoFar `json:"best_so_far,omitempty"`
	Result    *finetune.Result      `json:"result,omitempty"`
	Resumed   string                `json:"resumed_from,omitempty"`
	Output    string                `json:"output,omitempty"`
	Outputs   map[string]string     `json:"outputs,omitempty"`
	Seconds   float64               `json:"seconds"`
}

func trainCommand() *cli.Command {
	return &cli.Command{
		Name:      "train",
		Usage:     "train every parameter of a model, normally or adversarially (produces f and f*)",
		ArgsUsage: "MODEL.onnx",
		Flags: append(append(append(append(commonFlags(), trainDataFlags()...), attackParamFlags()...), trainFlags(10, "none")...),
			&cli.StringFlag{Name: "o", Aliases: []string{"out"}, Required: true, Usage: "output `MODEL.onnx` (best epoch; an unfinished run writes its best so far to MODEL.onnx.partial)"},
			&cli.StringFlag{Name: "safetensors", Usage: "also write the weights to `FILE.safetensors` keyed by PyTorch names"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("train needs exactly one MODEL argument")
			}
			return runTrain(c, c.Args().First(), c.App.Writer, c.App.ErrWriter)
		},
	}
}

func runTrain(c *cli.Context, path string, w, errw io.Writer) error {
	tc, err := readTrainingFlags(c)
	if err != nil {
		return err
	}
	opts, fo, adv, trades := tc.Engine, tc.Options, tc.PGD, tc.TRADES
	fo.HeadBN = "eval"
	evalAtk, err := evalAttack(c, c.String("eval-attack"))
	if err != nil {
		return err
	}
	m, err := loadModel(c, path)
	if err != nil {
		return err
	}
	an, err := analyzer.Analyze(m)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	part := an.Partition(an.WholeModel())
	train, err := trainData(c)
	if err != nil {
		return err
	}
	test, err := evalData(c)
	if err != nil {
		return err
	}
	evalSetting := semirobust.AttackSetting(evalAtk, semirobust.ModelClasses(an))
	var identity []finetune.Setting
	if fo.CheckpointDir != "" {
		identity, err = semirobust.RunIdentity(newRunInfo(c), [][2]string{{"model", path}},
			[]semirobust.IdentityData{{Role: "training data", D: train, Offset: c.Int("offset")}, {Role: "evaluation data", D: test}},
			[]finetune.Setting{semirobust.SettingJSON("adversarial training", adv), semirobust.SettingJSON("TRADES training", trades), semirobust.SettingJSON("evaluation attack", evalSetting)})
		if err != nil {
			return err
		}
	}
	ck, note, err := openResume(c)
	if err != nil {
		return err
	}
	if note != "" {
		fmt.Fprintln(w, note)
	}
	rep := trainReport{Header: newHeader(c), Model: path, Data: train.Name, EvalData: test.Name, Adv: adv, TRADES: trades, Eval: evalSetting, Options: fo.Resolved()}
	if ck != nil {
		// Before any work: the checkpoint must belong to this run.
		if err := ck.Check(fo, identity); err != nil {
			return fmt.Errorf("resume: %w", err)
		}
		rep.Resumed = semirobust.ResumedFrom(ck, fo.Epochs)
		fmt.Fprintf(w, "resuming from %s: %s\n", ck.Path, rep.Resumed)
	}
	trainer, trainable, state, err := ort.NewTrainer(m, opts, ort.TrainerOptions{Trainable: part.TailParams, TrainBN: part.TailBN, HeadBN: "eval", TRADES: trades})
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer trainer.Close()
	if err := checkLabels(train, trainer.NumClasses(), path); err != nil {
		return err
	}
	if err := checkLabels(test, trainer.NumClasses(), path); err != nil {
		return err
	}
	job := finetune.Job{Train: train, Trainable: trainable, State: state, Stepper: trainer, Progress: epochPrinter(w, errw), Identity: identity}
	closeParts, err := semirobust.JobParts(&job, m, opts, test, evalAtk, adv, c.Int("batch"), progressOn(errw))
	defer closeParts()
	if err != nil {
		return err
	}
	start := time.Now()
	res, runErr := semirobust.RunOrResume(c.Context, ck, fo, job)
	if res == nil {
		return runErr // refused before the first epoch
	}
	rep.Seconds = time.Since(start).Seconds()
	rep.Result, rep.Options = res, res.Options
	complete := runErr == nil && res.Complete
	if !complete {
		rep.MarkIncomplete(runErr)
	}
	best := res.BestSoFar()
	if best != nil {
		out, err := semirobust.WithParams(m, best.Trainable, best.State)
		if err != nil {
			return err
		}
		if rep.Output, rep.Outputs, err = writeTrained(c, out, path, complete); err != nil {
			return err
		}
		b := &semirobust.BestSoFar{Acc: best.Acc, Trial: best.Trial, Epoch: best.Epoch}
		if complete {
			rep.Best = b
			fmt.Fprintf(w, "best: trial %d epoch %d, eval accuracy %.2f%% → %s (%.0fs)\n", b.Trial, b.Epoch, b.Acc, rep.Output, rep.Seconds)
		} else {
			rep.BestSoFar = b
			fmt.Fprintf(w, "not finished: %s → %s (%.0fs)\n", b, rep.Output, rep.Seconds)
		}
	}
	if err := report.WriteJSON(c.String("json"), rep); err != nil {
		return err
	}
	if complete {
		return nil
	}
	return stoppedTraining(c, runErr, semirobust.FinishedWork(res, fo.Epochs), rep.Output, "training")
}
