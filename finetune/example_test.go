package finetune_test

import (
	"fmt"

	"github.com/semirobust/srtool/finetune"
)

// The paper's fine-tuning recipe: 10 trials of at most 10 epochs, SGD with
// lr 0.01, momentum 0.9, weight decay 5e-4, stopping once the semirobust
// network's PGD accuracy reaches the robust network's (Acc* = 38.5%).
func ExampleOptions() {
	opt := finetune.Options{
		Trials: 10, Epochs: 10, BatchSize: 128, Seed: 1,
		Optimizer: finetune.SGD{LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4},
		Target:    38.5, Tolerance: 0,
		HeadBN: "eval",
	}
	// res, err := opt.Run(ctx, finetune.Job{Train: train, Trainable: tail, State: bnStats,
	//         Stepper: step, Evaluator: pgdEval, Adv: pgdTrain})
	fmt.Println(opt.Optimizer.Rates())
	// Output: 0.01 0.9
}

// A learning rate for every scheduler step, here OneCycleLR over 20 steps
// (the same numbers as torch.optim.lr_scheduler.OneCycleLR).
func ExampleOneCycle() {
	s := finetune.OneCycle{MaxLR: 0.1, TotalSteps: 20}.Start(0, 0)
	for step := range 20 {
		if step%5 == 0 {
			lr, mom := s.Rates()
			fmt.Printf("step %2d: lr %.5f momentum %.4f\n", step, lr, mom)
		}
		s.Step()
	}
	// Output:
	// step  0: lr 0.00400 momentum 0.9500
	// step  5: lr 0.10000 momentum 0.8500
	// step 10: lr 0.07169 momentum 0.8783
	// step 15: lr 0.01883 momentum 0.9312
}
