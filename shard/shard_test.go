package shard

import (
	"strings"
	"testing"
)

func env(kv ...string) Env {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// TestRangesTile: for every n and N the shards' ranges are contiguous, in
// order, cover [0, n) exactly once and differ in size by at most one.
func TestRangesTile(t *testing.T) {
	for _, count := range []int{1, 2, 3, 7, 16} {
		for n := 0; n <= 40; n++ {
			next := 0
			minSize, maxSize := n, 0
			for i := 0; i < count; i++ {
				lo, hi := Shard{i, count}.Range(n)
				if lo != next || hi < lo {
					t.Fatalf("n=%d shard %d/%d = [%d,%d); want to start at %d", n, i, count, lo, hi, next)
				}
				next = hi
				minSize, maxSize = min(minSize, hi-lo), max(maxSize, hi-lo)
			}
			if next != n {
				t.Fatalf("n=%d N=%d: shards end at %d", n, count, next)
			}
			if n > 0 && maxSize-minSize > 1 {
				t.Fatalf("n=%d N=%d: sizes %d..%d", n, count, minSize, maxSize)
			}
		}
	}
	if lo, hi := (Shard{2, 3}).Range(10); lo != 7 || hi != 10 {
		t.Errorf("2/3 of 10 = [%d,%d); want [7,10)", lo, hi)
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		spec string
		env  Env
		want Shard
		err  string
	}{
		{"", env(), Whole, ""},
		{"0/1", env(), Whole, ""},
		{"2/7", env(), Shard{2, 7}, ""},
		{" 3 / 4 ", env(), Shard{3, 4}, ""},
		{"4/4", env(), Shard{}, "outside 0..3"},
		{"-1/4", env(), Shard{}, "outside 0..3"},
		{"1/0", env(), Shard{}, "outside 1.."},
		{"1/2000000", env(), Shard{}, "outside 1.."},
		{"a/b", env(), Shard{}, "integers"},
		{"3", env(), Shard{}, "want I/N"},
		// Slurm: --array=0-3 → ids 0..3.
		{"auto", env("SLURM_ARRAY_TASK_ID", "2", "SLURM_ARRAY_TASK_MIN", "0", "SLURM_ARRAY_TASK_MAX", "3", "SLURM_ARRAY_TASK_COUNT", "4"), Shard{2, 4}, ""},
		// --array=1-7 (ids from 1), no COUNT: from MAX.
		{"auto", env("SLURM_ARRAY_TASK_ID", "1", "SLURM_ARRAY_TASK_MIN", "1", "SLURM_ARRAY_TASK_MAX", "7"), Shard{0, 7}, ""},
		// --array=0-10:5 → ids 0, 5, 10.
		{"auto", env("SLURM_ARRAY_TASK_ID", "10", "SLURM_ARRAY_TASK_MIN", "0", "SLURM_ARRAY_TASK_MAX", "10", "SLURM_ARRAY_TASK_STEP", "5"), Shard{2, 3}, ""},
		{"auto", env("SLURM_ARRAY_TASK_ID", "3", "SLURM_ARRAY_TASK_MIN", "0", "SLURM_ARRAY_TASK_MAX", "10", "SLURM_ARRAY_TASK_STEP", "5"), Shard{}, "multiple of STEP"},
		{"auto", env("SLURM_ARRAY_TASK_ID", "x"), Shard{}, "not an integer"},
		{"auto", env("SLURM_ARRAY_TASK_ID", "0"), Shard{}, "neither SLURM_ARRAY_TASK_COUNT"},
		// Kubernetes Indexed Job.
		{"auto/5", env("JOB_COMPLETION_INDEX", "4"), Shard{4, 5}, ""},
		{"auto", env("JOB_COMPLETION_INDEX", "1", "SRTOOL_SHARD_COUNT", "3"), Shard{1, 3}, ""},
		{"auto", env("JOB_COMPLETION_INDEX", "1"), Shard{}, "not the count"},
		{"auto/2", env("JOB_COMPLETION_INDEX", "2"), Shard{}, "outside 0..1"},
		{"auto/0", env("JOB_COMPLETION_INDEX", "0"), Shard{}, "auto/N"},
		{"auto", env(), Shard{}, "neither SLURM_ARRAY_TASK_ID"},
	} {
		got, err := Parse(tc.spec, tc.env)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q) = %v, %v; want error with %q", tc.spec, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %v, %v; want %v", tc.spec, got, err, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"0/1", "2/7", "auto", "auto/3", "x/y", "9223372036854775807/1"} {
		f.Add(s, "3", "0", "9")
	}
	f.Fuzz(func(t *testing.T, spec, id, lo, hi string) {
		s, err := Parse(spec, env("SLURM_ARRAY_TASK_ID", id, "SLURM_ARRAY_TASK_MIN", lo, "SLURM_ARRAY_TASK_MAX", hi))
		if err != nil {
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("Parse(%q) returned invalid %v: %v", spec, s, err)
		}
		a, b := s.Range(1000)
		if a < 0 || b > 1000 || a > b {
			t.Fatalf("%v: range [%d,%d)", s, a, b)
		}
	})
}
