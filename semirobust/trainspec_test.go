package semirobust

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/report"
)

// validSpec is the paper's fine-tuning recipe as the flags default it.
func validSpec() TrainingSpec {
	return TrainingSpec{Epochs: 10, BatchSize: 128, Optimizer: "sgd", LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4,
		Schedule: "const", Adv: "pgd", AdvEps: "8/255", AdvAlpha: "eps/4", AdvSteps: 10, TradesBeta: 6}
}

func TestTrainingSpecRefusals(t *testing.T) {
	for _, tc := range []struct {
		edit func(*TrainingSpec)
		want string
	}{
		{func(s *TrainingSpec) { s.Epochs = 0 }, "--epochs 0: must be at least 1"},
		{func(s *TrainingSpec) { s.BatchSize = 0 }, "--train-batch 0: must be at least 1"},
		{func(s *TrainingSpec) { s.CropPad = -1 }, "--crop-pad -1: must not be negative"},
		{func(s *TrainingSpec) { s.LR = 0 }, "--lr 0: the learning rate must be positive"},
		{func(s *TrainingSpec) { s.Momentum = 1 }, "--momentum 1: must be in [0,1)"},
		{func(s *TrainingSpec) { s.WeightDecay = -1 }, "--wd -1: the weight decay must not be negative"},
		{func(s *TrainingSpec) { s.Resume = true }, "--resume needs --checkpoint-dir"},
		{func(s *TrainingSpec) { s.Optimizer, s.SGDGiven = "adamw", true }, "--momentum and --nesterov are SGD's"},
		{func(s *TrainingSpec) { s.Optimizer = "adam" }, `--optimizer "adam": want sgd or adamw`},
		{func(s *TrainingSpec) { s.Schedule = "steps" }, `--schedule "steps"`},
		{func(s *TrainingSpec) { s.Adv = "fgsm" }, `--adv "fgsm": want none, pgd or trades`},
		{func(s *TrainingSpec) { s.AdvEps = "2" }, "--adv-eps 2: want a radius in (0,1]"},
		{func(s *TrainingSpec) { s.AdvAlpha = "eps/0" }, `--adv-alpha: "eps/0": want eps/K with K > 0`},
		{func(s *TrainingSpec) { s.AdvSteps = 0 }, "--adv-steps 0: must be at least 1"},
		{func(s *TrainingSpec) { s.Adv, s.TradesBeta = "trades", 0 }, "--trades-beta 0: must be positive"},
	} {
		s := validSpec()
		tc.edit(&s)
		_, err := s.Options()
		if err == nil {
			_, _, err = s.Adversarial()
		}
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || !errors.Is(err, ErrOption) {
			t.Errorf("%+v: error %v; want one starting %q wrapping ErrOption", s, err, tc.want)
		}
	}
}

func TestTrainingSpecValues(t *testing.T) {
	s := validSpec()
	o, err := s.Options()
	if err != nil {
		t.Fatal(err)
	}
	if sgd, ok := o.Optimizer.(finetune.SGD); !ok || sgd.LR != 0.01 || sgd.Momentum != 0.9 || o.Epochs != 10 || o.BatchSize != 128 {
		t.Errorf("Options() = %+v; want SGD lr 0.01 momentum 0.9, 10 epochs of batches of 128", o)
	}
	pgd, trades, err := s.Adversarial()
	if err != nil || trades != nil || pgd == nil || pgd.StepSize != float32(2.0/255) || pgd.Epsilon != float32(8.0/255) || pgd.Steps != 10 || pgd.Restarts != 1 {
		t.Errorf("Adversarial() = %+v, %v, %v; want PGD ε 8/255, α 2/255, 10 steps, 1 restart", pgd, trades, err)
	}
	s.Adv = "none"
	if pgd, trades, err := s.Adversarial(); pgd != nil || trades != nil || err != nil {
		t.Errorf("Adversarial() with none = %v, %v, %v; want nothing", pgd, trades, err)
	}
	if err := CheckTrials(0, 0); err == nil || !errors.Is(err, ErrOption) {
		t.Errorf("CheckTrials(0, 0) = %v; want an ErrOption", err)
	}
	if err := CheckTrials(1, -1); err == nil || err.Error() != "--tolerance -1: must not be negative" {
		t.Errorf("CheckTrials(1, -1) = %v", err)
	}
}

func TestEpochPrinter(t *testing.T) {
	var w, errw strings.Builder
	p := EpochPrinter(&w, &errw)
	p(finetune.Progress{Trial: 1, Epoch: 1, Batch: 1, Samples: 10, EpochSamples: 20})
	p(finetune.Progress{Trial: 1, Epoch: 1, Stopped: true, Finished: &finetune.EpochResult{Epoch: 1, Loss: 0.5, TrainAcc: 80, EvalAcc: 70, LR: 0.01, Seconds: 1.5,
		Extra: finetune.Metrics{"rho_b": 0.25, "rho_a": 0.125}}})
	want := "trial 1 epoch  1  loss 0.5000  train acc  80.00%  eval acc 70.00%  lr 0.01  1.5s  rho_a 0.125  rho_b 0.250  (target reached)\n"
	if w.String() != want {
		t.Errorf("epoch line %q; want %q", w.String(), want)
	}
}

func TestStoppedTraining(t *testing.T) {
	err := StoppedTraining(&StoppedError{Err: fmt.Errorf("epoch 2: %w", context.Canceled), Done: "1 epoch"}, "m.onnx", "r.json", "", "training")
	var ie *report.Interrupted
	if !errors.As(err, &ie) || !report.IsCancel(err) {
		t.Fatalf("cancelled: %v; want a *report.Interrupted", err)
	}
	for _, s := range []string{"1 epoch; best model so far written to m.onnx; report written to r.json (complete: false)", "no checkpoint was kept"} {
		if !strings.Contains(ie.Error(), s) {
			t.Errorf("cancelled: %q lacks %q", ie.Error(), s)
		}
	}
	err = StoppedTraining(&StoppedError{Err: finetune.ErrDiverged, Done: "nothing"}, "", "", "ck", "fine-tuning")
	if want := "fine-tuning diverged (training diverged); nothing"; err.Error() != want {
		t.Errorf("diverged: %q; want %q", err, want)
	}
	if got := ResumeHint("ck"); got != "resume with the same command and --resume (checkpoint in ck)" {
		t.Errorf("ResumeHint = %q", got)
	}
}
