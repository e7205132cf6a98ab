package semirobust

import (
	"errors"
	"reflect"
	"testing"

	"github.com/semirobust/srtool/finetune"
)

// TestParseSchedule: every --schedule form, and refusals as option errors.
func TestParseSchedule(t *testing.T) {
	for _, c := range []struct {
		in    string
		want  finetune.Schedule
		every finetune.ScheduleUnit
	}{
		{"const", nil, ""},
		{"", nil, ""},
		{"cosine", finetune.Cosine{TMax: 10}, ""},
		{"onecycle", finetune.OneCycle{MaxLR: 0.1}, "batch"},
		{"multistep:3,6", finetune.MultiStep{Milestones: []int{3, 6}, Gamma: 0.1}, ""},
		{"multistep:3, 6:0.5", finetune.MultiStep{Milestones: []int{3, 6}, Gamma: 0.5}, ""},
	} {
		s, every, err := ParseSchedule(c.in, 10, 0.1)
		if err != nil || !reflect.DeepEqual(s, c.want) || every != c.every {
			t.Errorf("ParseSchedule(%q) = %#v, %q, %v; want %#v, %q", c.in, s, every, err, c.want, c.every)
		}
	}
	for _, in := range []string{"step", "multistep:a", "multistep:3:0", "multistep:3:0.5:1", "multistep:3:inf"} {
		if s, _, err := ParseSchedule(in, 10, 0.1); !errors.Is(err, ErrOption) {
			t.Errorf("ParseSchedule(%q) = %v, %v; want an option error", in, s, err)
		}
	}
}
