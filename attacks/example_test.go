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
	// after pgd      27.5%
	// after apgd-ce  27.5%
	// after apgd-t   25.0%
	// after fab-t    25.0%
	// after square   25.0%
	// robust 25.0%
}

func ExamplePGD() {
	// The zero value is torchattacks' default PGD; Setting records what runs.
	pgd := &PGD{Seed: 1}
	fmt.Println(pgd.Setting(10))
	b, _ := json.Marshal(pgd.Setting(10))
	fmt.Println(string(b))
	// Output:
	// ε=0.03137255 Linf; 10 steps, α=0.007843138, 1 restart, random start, loss ce, last iterate, seed 1
	// {"name":"pgd","epsilon":0.03137255,"norm":"Linf","loss":"ce","steps":10,"step_size":0.007843138,"step_rule":"fixed","restarts":1,"random_start":true,"targets":0,"seed":1,"other":"last iterate"}
}
