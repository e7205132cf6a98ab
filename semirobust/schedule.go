package semirobust

import (
	"math"
	"strconv"
	"strings"

	"github.com/semirobust/srtool/finetune"
)

// ParseSchedule reads a learning-rate schedule (--schedule): const (also
// "", no schedule), cosine over epochs, onecycle (maximum lr, stepped every
// batch: every is finetune.EveryBatch) or multistep:E1,E2[:gamma] (gamma 0.1 unless
// given). An invalid schedule wraps ErrOption.
func ParseSchedule(sched string, epochs int, lr float64) (s finetune.Schedule, every finetune.ScheduleUnit, err error) {
	switch {
	case sched == "const" || sched == "":
	case sched == "cosine":
		s = finetune.Cosine{TMax: epochs}
	case sched == "onecycle":
		s, every = finetune.OneCycle{MaxLR: lr}, finetune.EveryBatch
	case strings.HasPrefix(sched, "multistep:"):
		parts := strings.Split(strings.TrimPrefix(sched, "multistep:"), ":")
		ms := finetune.MultiStep{Gamma: 0.1}
		for _, e := range strings.Split(parts[0], ",") {
			v, err := strconv.Atoi(strings.TrimSpace(e))
			if err != nil {
				return nil, "", optionf("--schedule %q: milestones must be integers", sched)
			}
			ms.Milestones = append(ms.Milestones, v)
		}
		if len(parts) > 2 {
			return nil, "", optionf("--schedule %q: want multistep:E1,E2[:gamma]", sched)
		}
		if len(parts) > 1 {
			g, err := strconv.ParseFloat(parts[1], 64)
			if err != nil || !(g > 0) || math.IsInf(g, 0) {
				return nil, "", optionf("--schedule %q: gamma must be a positive number", sched)
			}
			ms.Gamma = g
		}
		s = ms
	default:
		return nil, "", optionf("--schedule %q: want const, multistep:E1,E2[:gamma], cosine or onecycle", sched)
	}
	if s != nil {
		if err := s.Validate(); err != nil {
			return nil, "", optionf("--schedule %q: %v", sched, err)
		}
	}
	return s, every, nil
}
