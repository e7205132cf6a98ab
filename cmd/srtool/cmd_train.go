package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/ort"
)

type trainReport struct {
	Model    string           `json:"model"`
	Output   string           `json:"output"`
	Data     string           `json:"data"`
	EvalData string           `json:"eval_data"`
	Adv      *attacks.PGD     `json:"adversarial_training,omitempty"`
	TRADES   *ort.TRADES      `json:"trades,omitempty"`
	Eval     attacks.Attack   `json:"eval_attack,omitempty"`
	Result   *finetune.Result `json:"result"`
	Seconds  float64          `json:"seconds"`
}

func trainCommand() *cli.Command {
	return &cli.Command{
		Name:      "train",
		Usage:     "train every parameter of a model, normally or adversarially (produces f and f*)",
		ArgsUsage: "MODEL.onnx",
		Flags: append(append(append(append(commonFlags(), dataFlags()...), attackParamFlags()...), trainFlags(10)...),
			&cli.StringFlag{Name: "o", Aliases: []string{"out"}, Required: true, Usage: "output `MODEL.onnx` (best epoch)"},
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
	trainer, trainable, state, err := ort.NewTrainer(m, opts, ort.TrainerOptions{Trainable: part.TailParams, TrainBN: part.TailBN, HeadBN: "eval", TRADES: trades})
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer trainer.Close()
	if trainer.NumClasses() < train.Classes {
		return fmt.Errorf("the model has %d classes but the data has labels up to %d", trainer.NumClasses(), train.Classes-1)
	}
	fo.HeadBN = "eval"
	job := finetune.Job{Train: train, Trainable: trainable, State: state, Stepper: trainer, Progress: epochPrinter(w, errw)}
	closeParts, err := jobParts(&job, m, opts, test, evalAtk, adv, c.Int("batch"))
	defer closeParts()
	if err != nil {
		return err
	}
	start := time.Now()
	res, err := runOrResume(c.Context, c.Bool("resume"), fo, job)
	if err != nil && (res == nil || res.Best == nil) {
		return err
	}
	runErr := err
	out, err := withParams(m, res.Best.Trainable, res.Best.State)
	if err != nil {
		return err
	}
	if err := writeTrained(c, out, path); err != nil {
		return err
	}
	rep := trainReport{Model: path, Output: c.String("o"), Data: train.Name, EvalData: test.Name, Adv: adv, TRADES: trades, Eval: evalAtk, Result: res, Seconds: time.Since(start).Seconds()}
	fmt.Fprintf(w, "best: trial %d epoch %d, eval accuracy %.2f%% → %s (%.0fs)\n", res.Best.Trial, res.Best.Epoch, res.Best.Acc, c.String("o"), rep.Seconds)
	if err := writeJSON(c.String("json"), rep); err != nil {
		return err
	}
	if runErr != nil {
		if errors.Is(runErr, finetune.ErrDiverged) {
			return fmt.Errorf("training diverged (%w); the best epoch so far was written", runErr)
		}
		return fmt.Errorf("stopped: %w; the best epoch so far was written", runErr)
	}
	return nil
}
