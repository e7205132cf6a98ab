package runs

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/npy"
	"github.com/semirobust/srtool/report"
	"github.com/semirobust/srtool/semirobust"
)

// AdvAccReport is the JSON document of `srtool attack --convention adv-acc`.
type AdvAccReport struct {
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
	Outputs   AttackOutputs          `json:"outputs"`
	Seconds   float64                `json:"seconds"`
	Device    string                 `json:"device"`
	// MergedFrom lists the shard reports of a merged report.
	MergedFrom []string `json:"merged_from,omitempty"`
}

// AttackAdvAcc runs every attack on every point (torchattacks' adv-acc
// convention) and writes the summary on w, the last attack's adversarial
// inputs and the report. It keeps no resume state; an unfinished run writes
// its report (complete false) and no adversarial inputs.
func AttackAdvAcc(ctx context.Context, m attacks.Model, d *dataset.Dataset, list []attacks.Attack, o AttackOptions, w io.Writer) (*AdvAccReport, error) {
	rep := &AdvAccReport{Header: o.Header, Model: o.Model, ModelSHA256: o.ModelSHA256, Data: d.Name, Offset: o.Offset, N: d.Len(),
		Convention: "adv-acc", PerAttack: []*attacks.AdvAccuracy{}, Settings: AttackSettings(list, m.NumClasses(), "adv-acc"), Device: o.Device}
	stop := func(err error, next int) error {
		rep.MarkIncomplete(err)
		for _, a := range list[next:] {
			rep.Pending = append(rep.Pending, a.Name())
			fmt.Fprintf(w, "%-12s not finished\n", a.Name()+":")
		}
		fmt.Fprintf(w, "robust accuracy: not finished\n")
		rep.Seconds = time.Since(o.Start).Seconds()
		if werr := report.WriteJSON(o.JSON, rep); werr != nil {
			return werr
		}
		done := "the clean pass stopped"
		if rep.CleanAccuracy != nil {
			names := make([]string, 0, next)
			for _, a := range list[:next] {
				names = append(names, a.Name())
			}
			done = "the clean pass" + strings.TrimSuffix(" and "+strings.Join(names, ", "), " and ") + " finished, " + list[next].Name() + " did not"
		}
		if o.JSON != "" {
			done += fmt.Sprintf("; report written to %s (complete: false)", o.JSON)
		}
		if o.SaveAdv != "" {
			done += "; --save-adv not written"
		}
		if report.IsCancel(err) {
			return report.Interrupt(err, done, "the adv-acc convention keeps no resume state: run the command again")
		}
		return fmt.Errorf("%w (%s)", err, done)
	}
	allCorrect, err := semirobust.Correctness(ctx, m, d, o.Batch)
	if err != nil {
		fmt.Fprintf(w, "clean accuracy:  not finished\n")
		return rep, stop(err, 0)
	}
	clean := 0
	for _, ok := range allCorrect {
		if ok {
			clean++
		}
	}
	ca := 100 * float64(clean) / float64(d.Len())
	rep.CleanAccuracy, rep.CleanCorrect = &ca, &clean
	fmt.Fprintf(w, "clean accuracy:  %6.2f%%  (%d samples, %s)\n", ca, rep.N, d.Name)
	var lastAdv []float32
	for i, a := range list {
		update := func(done, total int) {
			if o.Progress != nil {
				o.Progress(attacks.Progress{Attack: a.Name(), Step: i, Steps: len(list), Done: done, Total: total, N: d.Len()})
			}
		}
		res, err := attacks.AdversarialAccuracy(ctx, m, d.X, d.Y, a, o.Batch, update)
		if err != nil {
			return rep, stop(err, i)
		}
		for j, p := range res.Pred {
			if p != d.Y[j] {
				allCorrect[j] = false
			}
		}
		rep.PerAttack = append(rep.PerAttack, res)
		lastAdv = res.Adv
		fmt.Fprintf(w, "%-12s accuracy on adversarial examples %6.2f%%  (%s; %d gradient calls)\n", a.Name()+":", res.Accuracy, res.Setting, res.Counts.GradCalls)
	}
	n := 0
	for _, ok := range allCorrect {
		if ok {
			n++
		}
	}
	ra := 100 * float64(n) / float64(d.Len())
	rep.RobustAccuracy, rep.RobustPoints = &ra, &n
	if p := o.SaveAdv; p != "" {
		if err := npy.WriteFile(p, npy.FromFloat32(lastAdv, d.Len(), d.C, d.H, d.W)); err != nil {
			return rep, err
		}
		rep.Outputs.Adv = p
	}
	rep.Seconds = time.Since(o.Start).Seconds()
	fmt.Fprintf(w, "robust accuracy: %6.2f%%  (adv-acc convention: correct clean and under every attack; %.1fs)\n", ra, rep.Seconds)
	return rep, report.WriteJSON(o.JSON, rep)
}
