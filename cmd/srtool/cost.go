package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/ort"
	"github.com/semirobust/srtool/plotting"
)

// parseKList parses --fb-layers: comma-separated positive integers and
// ranges LO-HI (inclusive), e.g. "1-12" or "2,4,6-8"; a K named twice is
// refused.
func parseKList(s string) ([]int, error) {
	var ks []int
	add := func(k int) error {
		for _, x := range ks {
			if x == k {
				return fmt.Errorf("--fb-layers %q names K = %d twice", s, k)
			}
		}
		ks = append(ks, k)
		return nil
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(strings.TrimSpace(lo))
		if err != nil || a < 1 {
			return nil, fmt.Errorf("--fb-layers %q: want positive integers and ranges LO-HI", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(strings.TrimSpace(hi)); err != nil || b < a {
				return nil, fmt.Errorf("--fb-layers %q: range %q: want LO-HI with 1 ≤ LO ≤ HI", s, part)
			}
		}
		for k := a; k <= b; k++ {
			if err := add(k); err != nil {
				return nil, err
			}
		}
	}
	return ks, nil
}

// memoryNote says what the memory columns measure.
const memoryNote = "peak_rss_mib: the process's peak resident set (Linux /proc/self/status VmHWM, ONNX Runtime's native memory included), reset before each trial through /proc/self/clear_refs where the kernel allows it (peak_rss_reset), else the peak since the process started; go_sys_mib: memory the Go runtime had obtained from the OS at the end (runtime.MemStats.Sys, never reset)"

// unitCost is what --cost records for one trial unit (or the reference
// run): the tail's trainable parameters and the memory it took. Wall times
// come from the fine-tuning record's epochs.
type unitCost struct {
	TrainableParams int64   `json:"trainable_params"`
	PeakRSSMiB      float64 `json:"peak_rss_mib"`
	PeakRSSReset    bool    `json:"peak_rss_reset"`
	GoSysMiB        float64 `json:"go_sys_mib"`
}

// rowCost is a row's cost: the trainable parameters, the mean wall time of
// an epoch over every epoch of its trials, the mean wall time to reach
// Acc* − k over the converged trials (absent when none did), and the
// largest memory figures of its trials.
type rowCost struct {
	TrainableParams  int64    `json:"trainable_params"`
	EpochSeconds     float64  `json:"epoch_seconds"`
	ConvergeSeconds  *float64 `json:"converge_seconds,omitempty"`
	EpochsToConverge *float64 `json:"epochs_to_converge,omitempty"`
	EpochsRun        int      `json:"epochs_run"`
	PeakRSSMiB       float64  `json:"peak_rss_mib"`
	PeakRSSReset     bool     `json:"peak_rss_reset"`
	GoSysMiB         float64  `json:"go_sys_mib"`
}

// costOfTrials summarises the cost records and fine-tuning histories of
// finished trials (nil when none has a cost record).
func costOfTrials(costs []*unitCost, trials []*finetune.TrialResult) *rowCost {
	var rc *rowCost
	epochs, secs, conv, convSecs, convEpochs := 0, 0.0, 0, 0.0, 0
	for i, c := range costs {
		if c == nil || trials[i] == nil {
			continue
		}
		if rc == nil {
			rc = &rowCost{TrainableParams: c.TrainableParams, PeakRSSReset: true}
		}
		rc.PeakRSSMiB = max(rc.PeakRSSMiB, c.PeakRSSMiB)
		rc.GoSysMiB = max(rc.GoSysMiB, c.GoSysMiB)
		rc.PeakRSSReset = rc.PeakRSSReset && c.PeakRSSReset
		t := trials[i]
		for j, e := range t.Epochs {
			epochs++
			secs += e.Seconds
			if t.Converged && j < t.EpochsToConverge {
				convSecs += e.Seconds
			}
		}
		if t.Converged {
			conv++
			convEpochs += t.EpochsToConverge
		}
	}
	if rc == nil {
		return nil
	}
	rc.EpochsRun = epochs
	if epochs > 0 {
		rc.EpochSeconds = secs / float64(epochs)
	}
	if conv > 0 {
		rc.ConvergeSeconds = f64(convSecs / float64(conv))
		rc.EpochsToConverge = f64(float64(convEpochs) / float64(conv))
	}
	return rc
}

// resetPeakRSS asks the kernel to reset VmHWM to the current RSS (writing
// 5 to /proc/self/clear_refs, Linux ≥ 4.0); false where it cannot.
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// peakRSSMiB is VmHWM from /proc/self/status in MiB (0 where unreadable).
func peakRSSMiB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			fields := strings.Fields(rest)
			if len(fields) >= 1 {
				kb, err := strconv.ParseFloat(fields[0], 64)
				if err == nil {
					return kb / 1024
				}
			}
		}
	}
	return 0
}

func goSysMiB() float64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.Sys) / (1 << 20)
}

// measureCost returns a cost record for work about to start: call the
// returned function when it has finished.
func measureCost(params int64) func() *unitCost {
	reset := resetPeakRSS()
	return func() *unitCost {
		return &unitCost{TrainableParams: params, PeakRSSMiB: peakRSSMiB(), PeakRSSReset: reset, GoSysMiB: goSysMiB()}
	}
}

// tailParamCount is the number of trainable parameters of K's tail.
func tailParamCount(s *semirobustSetup) (int64, error) {
	var n int64
	for _, name := range s.Part.TailParams {
		dims, err := shapeOf(s.Start, name)
		if err != nil {
			return 0, err
		}
		p := int64(1)
		for _, d := range dims {
			p *= d
		}
		n += p
	}
	return n, nil
}

// referenceCost is --reference-adv-training: full adversarial training of
// the normal model f (every layer trainable, starting from f's weights) on
// the same data, epochs, optimiser, attack and target as the fine-tuning.
type referenceCost struct {
	Attack   string                `json:"attack"` // the evaluation attack its accuracy and target use
	Target   float64               `json:"target"` // Acc* under that attack
	Cost     *rowCost              `json:"cost"`
	BestAcc  float64               `json:"best_acc"`
	Delta    float64               `json:"delta"` // best accuracy − Acc*
	Training *finetune.TrialResult `json:"training"`
	Seconds  float64               `json:"seconds"`
}

// referenceAdvTraining runs the reference: one trial of adversarial
// training of every parameter of f, with the run's options.
func (r *semirobustRun) referenceAdvTraining(ctx context.Context, atkName string, accStar float64) (*referenceCost, error) {
	start := time.Now()
	an, err := analyzer.Analyze(r.normal)
	if err != nil {
		return nil, fmt.Errorf("normal model: %w", err)
	}
	part := an.Partition(an.WholeModel())
	trainer, trainable, state, err := ort.NewTrainer(r.normal, r.eng, ort.TrainerOptions{Trainable: part.TailParams, TrainBN: part.TailBN, HeadBN: "eval", TRADES: r.trades})
	if err != nil {
		return nil, fmt.Errorf("reference adversarial training: %w", err)
	}
	defer trainer.Close()
	job := finetune.Job{Train: r.train, Trainable: trainable, State: state, Stepper: trainer, Progress: epochPrinter(r.w, r.errw)}
	closeParts, err := jobParts(&job, r.normal, r.eng, r.test, r.attacks[atkName], r.adv, r.batch, r.errw)
	defer closeParts()
	if err != nil {
		return nil, err
	}
	var params int64
	for _, v := range trainable {
		params += int64(len(v))
	}
	fo := r.fo
	fo.Trials, fo.FirstTrial, fo.HeadBN, fo.Target, fo.CheckpointDir, fo.Frozen = 1, 1, "eval", accStar, "", nil
	done := measureCost(params)
	res, err := fo.Run(ctx, job)
	if err != nil {
		return nil, fmt.Errorf("reference adversarial training: %w", err)
	}
	if len(res.Trials) == 0 {
		return nil, fmt.Errorf("reference adversarial training: no trial recorded")
	}
	t := res.Trials[0]
	rc := costOfTrials([]*unitCost{done()}, []*finetune.TrialResult{&t})
	return &referenceCost{Attack: atkName, Target: accStar, Cost: rc, BestAcc: t.BestAcc, Delta: t.BestAcc - accStar, Training: &t, Seconds: time.Since(start).Seconds()}, nil
}

// writeCostSection adds the cost table (rows with a cost record) and the
// reference to report.md, and writes cost_K.png (wall time per epoch and to
// convergence against K) and acc_K.png (Acc~, Acc* and Acc_sr against K);
// it returns the plots written.
func writeCostSection(b *strings.Builder, dir string, rep *semirobustReport) ([]string, error) {
	has := false
	for _, r := range rep.Rows {
		has = has || r.Cost != nil
	}
	if !has && rep.Reference == nil {
		return nil, nil
	}
	opt := func(v *float64, format string) string {
		if v == nil {
			return "–"
		}
		return fmt.Sprintf(format, *v)
	}
	fmt.Fprintf(b, "\n## Cost per K\n\n| attack A | K | trainable parameters | s / epoch | s to converge | epochs to converge | epochs run | peak RSS (MiB) | Go runtime (MiB) | Acc~ | Acc~ − Acc* |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rep.Rows {
		if r.Cost == nil {
			continue
		}
		c := r.Cost
		fmt.Fprintf(b, "| %s | %d | %d | %.2f | %s | %s | %d | %.0f | %.0f | %s | %s |\n", r.Attack, r.K, c.TrainableParams, c.EpochSeconds,
			opt(c.ConvergeSeconds, "%.2f"), opt(c.EpochsToConverge, "%.1f"), c.EpochsRun, c.PeakRSSMiB, c.GoSysMiB, opt(r.AccTilde, "%.2f"), opt(r.Delta, "%+.2f"))
	}
	if ref := rep.Reference; ref != nil && ref.Cost != nil {
		c := ref.Cost
		fmt.Fprintf(b, "| reference: full adversarial training of f (%s) | all | %d | %.2f | %s | %s | %d | %.0f | %.0f | %.2f | %+.2f |\n", ref.Attack, c.TrainableParams, c.EpochSeconds,
			opt(c.ConvergeSeconds, "%.2f"), opt(c.EpochsToConverge, "%.1f"), c.EpochsRun, c.PeakRSSMiB, c.GoSysMiB, ref.BestAcc, ref.Delta)
	}
	fmt.Fprintf(b, "\nWall times are the mean over every epoch of the row's trials (training, evaluation and metrics of the epoch) and the mean over converged trials of the time to reach Acc* − k; they depend on the machine and its load. Memory: %s.", memoryNote)
	if rep.Reference != nil {
		fmt.Fprintf(b, " The reference adversarially trains every layer of f from its weights, with the same data, epochs, optimiser and --adv, its target the Acc* of %s.", rep.Reference.Attack)
	}
	b.WriteString("\n\n")
	var written []string
	var timeSS, accSS []plotting.Series
	for _, a := range rep.Attacks {
		ep, cv := plotting.Series{Name: "s / epoch, " + a.Name}, plotting.Series{Name: "s to converge, " + a.Name}
		tilde, star, sr := plotting.Series{Name: "Acc~, " + a.Name}, plotting.Series{Name: "Acc*, " + a.Name}, plotting.Series{Name: "Acc_sr, " + a.Name}
		for _, r := range rep.Rows {
			if r.Attack != a.Name || r.Cost == nil {
				continue
			}
			x := float64(r.K)
			ep.X, ep.Y = append(ep.X, x), append(ep.Y, r.Cost.EpochSeconds)
			if r.Cost.ConvergeSeconds != nil {
				cv.X, cv.Y = append(cv.X, x), append(cv.Y, *r.Cost.ConvergeSeconds)
			}
			for _, p := range []struct {
				s *plotting.Series
				v *float64
			}{{&tilde, r.AccTilde}, {&star, r.AccStar}, {&sr, r.AccSR}} {
				if p.v != nil {
					p.s.X, p.s.Y = append(p.s.X, x), append(p.s.Y, *p.v)
				}
			}
		}
		for _, s := range []plotting.Series{ep, cv} {
			if len(s.X) > 0 {
				timeSS = append(timeSS, s)
			}
		}
		for _, s := range []plotting.Series{tilde, star, sr} {
			if len(s.X) > 0 {
				accSS = append(accSS, s)
			}
		}
	}
	if len(timeSS) == 0 {
		return nil, nil
	}
	if ref := rep.Reference; ref != nil && ref.Cost != nil {
		lo, hi := timeSS[0].X[0], timeSS[0].X[len(timeSS[0].X)-1]
		timeSS = append(timeSS, plotting.Series{Name: "reference s / epoch", X: []float64{lo, hi}, Y: []float64{ref.Cost.EpochSeconds, ref.Cost.EpochSeconds}})
		if ref.Cost.ConvergeSeconds != nil {
			timeSS = append(timeSS, plotting.Series{Name: "reference s to converge", X: []float64{lo, hi}, Y: []float64{*ref.Cost.ConvergeSeconds, *ref.Cost.ConvergeSeconds}})
		}
	}
	for _, p := range []struct {
		file, title, ylabel string
		ss                  []plotting.Series
	}{
		{"cost_K.png", "fine-tuning cost against K", "wall time (s)", timeSS},
		{"acc_K.png", "accuracy against K", "accuracy (%)", accSS},
	} {
		if len(p.ss) == 0 {
			continue
		}
		if err := plotting.WriteLinePlot(filepath.Join(dir, p.file), p.title, "K (weight layers in the tail)", p.ylabel, p.ss); err != nil {
			return nil, err
		}
		written = append(written, filepath.Join(dir, p.file))
		fmt.Fprintf(b, "![%s](%s)\n", p.title, p.file)
	}
	b.WriteString("\n")
	return written, nil
}
