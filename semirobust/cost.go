package semirobust

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/diffmodel"
	"github.com/semirobust/srtool/finetune"
)

// ParseKList parses --fb-layers: comma-separated positive integers and
// ranges LO-HI (inclusive), e.g. "1-12" or "2,4,6-8"; a K named twice is
// refused.
func ParseKList(s string) ([]int, error) {
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

// MemoryNote says what the memory columns measure.
const MemoryNote = "peak_rss_mib: the process's peak resident set (Linux /proc/self/status VmHWM, ONNX Runtime's native memory included), reset before each trial through /proc/self/clear_refs where the kernel allows it (peak_rss_reset), else the peak since the process started; go_sys_mib: memory the Go runtime had obtained from the OS at the end (runtime.MemStats.Sys, never reset)"

// UnitCost is what --cost records for one trial unit (or the reference
// run): the tail's trainable parameters and the memory it took. Wall times
// come from the fine-tuning record's epochs.
type UnitCost struct {
	TrainableParams int64   `json:"trainable_params"`
	PeakRSSMiB      float64 `json:"peak_rss_mib"`
	PeakRSSReset    bool    `json:"peak_rss_reset"`
	GoSysMiB        float64 `json:"go_sys_mib"`
}

// RowCost is a row's cost: the trainable parameters, the mean wall time of
// an epoch over every epoch of its trials, the mean wall time to reach
// Acc* − k over the converged trials (absent when none did), and the
// largest memory figures of its trials.
type RowCost struct {
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
func costOfTrials(costs []*UnitCost, trials []*finetune.TrialResult) *RowCost {
	var rc *RowCost
	epochs, secs, conv, convSecs, convEpochs := 0, 0.0, 0, 0.0, 0
	for i, c := range costs {
		if c == nil || trials[i] == nil {
			continue
		}
		if rc == nil {
			rc = &RowCost{TrainableParams: c.TrainableParams, PeakRSSReset: true}
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
func measureCost(params int64) func() *UnitCost {
	reset := resetPeakRSS()
	return func() *UnitCost {
		return &UnitCost{TrainableParams: params, PeakRSSMiB: peakRSSMiB(), PeakRSSReset: reset, GoSysMiB: goSysMiB()}
	}
}

// ReferenceCost is --reference-adv-training: full adversarial training of
// the normal model f (every layer trainable, starting from f's weights) on
// the same data, epochs, optimiser, attack and target as the fine-tuning.
type ReferenceCost struct {
	Attack   string                `json:"attack"` // the evaluation attack its accuracy and target use
	Target   float64               `json:"target"` // Acc* under that attack
	Cost     *RowCost              `json:"cost"`
	BestAcc  float64               `json:"best_acc"`
	Delta    float64               `json:"delta"` // best accuracy − Acc*
	Training *finetune.TrialResult `json:"training"`
	Seconds  float64               `json:"seconds"`
}

// referenceAdvTraining runs the reference: one trial of adversarial
// training of every parameter of f, with the run's options.
func (r *runner) referenceAdvTraining(ctx context.Context, atkName string, accStar float64) (*ReferenceCost, error) {
	start := time.Now()
	an, err := analyzer.Analyze(r.normal)
	if err != nil {
		return nil, fmt.Errorf("normal model: %w", err)
	}
	part := an.Partition(an.WholeModel())
	trainer, trainable, state, err := diffmodel.NewTrainer(r.normal, r.eng, diffmodel.TrainerOptions{Trainable: part.TailParams, TrainBN: part.TailBN, HeadBN: "eval", TRADES: r.trades})
	if err != nil {
		return nil, fmt.Errorf("reference adversarial training: %w", err)
	}
	defer trainer.Close()
	job := finetune.Job{Train: r.train, Trainable: trainable, State: state, Stepper: trainer, Progress: r.epochs()}
	closeParts, err := JobParts(&job, r.normal, r.eng, r.test, r.attacks[atkName], r.adv, r.batch, r.progress)
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
	rc := costOfTrials([]*UnitCost{done()}, []*finetune.TrialResult{&t})
	return &ReferenceCost{Attack: atkName, Target: accStar, Cost: rc, BestAcc: t.BestAcc, Delta: t.BestAcc - accStar, Training: &t, Seconds: time.Since(start).Seconds()}, nil
}
