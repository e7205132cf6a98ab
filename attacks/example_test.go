package attacks

import (
	"context"
	"encoding/json"
	"fmt"
)

func ExampleEvaluate() {
	m := newMLP(4, 3, 6, 16, 10) // a small pure-Go classifier with analytic gradients
	x, y := data(m, 5, 40, 0, 1) // 40 inputs in [0,1]; two of them labelled wrongly
	pgd := &PGD{Epsilon: 0.02, Seed: 1}
	aa := &AutoAttack{Epsilon: 0.02, Seed: 1}
	res, err := Evaluate(context.Background(), m, x, y, []Attack{pgd, aa}, EvalOptions{BatchSize: 16})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("clean %.1f%%\n", res.CleanAccuracy)
	for _, r := range res.Attacks {
		fmt.Printf("after %-8s %.1f%%\n", r.Name, r.RobustAccuracy)
	}
	fmt.Printf("robust %.1f%%\n", res.RobustAccuracy)
	// Output:
	// clean 95.0%
	// after pgd      35.0%
	// after apgd-ce  27.5%
	// after apgd-t   25.0%
	// after fab-t    25.0%
	// after square   25.0%
	// robust 25.0%
}

func ExamplePGD() {
	// The zero value is the paper's torchattacks call; JSON records what ran.
	b, _ := json.Marshal(&PGD{Seed: 1})
	fmt.Println(string(b))
	eps, norm := (&PGD{}).Threat()
	fmt.Printf("%.5f %s\n", eps, norm)
	// Output:
	// {"epsilon":0,"norm":"","step_size":0,"steps":0,"no_random_start":false,"restarts":0,"loss":"ce","best":false,"seed":1}
	// 0.03137 Linf
}
