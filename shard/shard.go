// Package shard splits embarrassingly parallel work into N pieces that a
// cluster engine runs as separate tasks: Slurm job arrays and Kubernetes
// Indexed Jobs. A shard is I/N with 0 ≤ I < N; samples are split by global
// index into contiguous ranges whose sizes differ by at most one, and work
// units (an experiment's attack × K × trial) the same way by unit number.
//
// The engine schedules, retries and places; srtool only needs to know which
// piece it is. Parse reads "I/N" from a flag, or "auto" from the engine's
// environment:
//
//   - Slurm: SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_MIN, and the count
//     from SLURM_ARRAY_TASK_COUNT, or from SLURM_ARRAY_TASK_MAX and
//     SLURM_ARRAY_TASK_STEP (I = (ID − MIN) / STEP).
//   - Kubernetes Indexed Job: JOB_COMPLETION_INDEX, with the Job's
//     completions count given as "auto/N" or in SRTOOL_SHARD_COUNT
//     (Kubernetes does not put the count in the pod's environment).
package shard

import (
	"fmt"
	"strconv"
	"strings"
)

// Shard is piece Index (0-based) of Count. The zero value is not valid;
// Whole is the single shard 0/1.
type Shard struct {
	Index int `json:"index"`
	Count int `json:"count"`
}

// Whole is the unsharded run.
var Whole = Shard{Index: 0, Count: 1}

// MaxCount bounds N: more shards than this is a mistake, not a plan.
const MaxCount = 1 << 20

// IsWhole reports whether s is the unsharded run.
func (s Shard) IsWhole() bool { return s.Count == 1 }

// String is "I/N".
func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// Validate checks 0 ≤ Index < Count ≤ MaxCount.
func (s Shard) Validate() error {
	if s.Count < 1 || s.Count > MaxCount {
		return fmt.Errorf("shard count %d is outside 1..%d", s.Count, MaxCount)
	}
	if s.Index < 0 || s.Index >= s.Count {
		return fmt.Errorf("shard index %d is outside 0..%d (shards are numbered from 0)", s.Index, s.Count-1)
	}
	return nil
}

// Range returns the half-open range [lo, hi) of n items (samples or work
// units, by global index) that belong to s: contiguous, in order, sizes
// differing by at most one, the earlier shards the larger. A shard may be
// empty when n < Count.
func (s Shard) Range(n int) (lo, hi int) {
	if n <= 0 {
		return 0, 0
	}
	q, r := n/s.Count, n%s.Count
	lo = s.Index*q + min(s.Index, r)
	hi = lo + q
	if s.Index < r {
		hi++
	}
	return lo, hi
}

// Env reads an environment variable; os.Getenv in programs, a map in tests.
type Env func(string) string

// Parse reads a --shard value: "" (the whole run), "I/N", "auto" (Slurm
// array or Kubernetes Indexed Job from env) or "auto/N" (Kubernetes with
// N completions).
func Parse(spec string, env Env) (Shard, error) {
	spec = strings.TrimSpace(spec)
	switch {
	case spec == "":
		return Whole, nil
	case spec == "auto":
		return fromEnv(env, 0)
	case strings.HasPrefix(spec, "auto/"):
		n, err := strconv.Atoi(strings.TrimPrefix(spec, "auto/"))
		if err != nil || n < 1 {
			return Shard{}, fmt.Errorf("--shard %q: want auto/N with N ≥ 1", spec)
		}
		return fromEnv(env, n)
	}
	i, n, ok := strings.Cut(spec, "/")
	if !ok {
		return Shard{}, fmt.Errorf("--shard %q: want I/N (0 ≤ I < N), auto or auto/N", spec)
	}
	var s Shard
	var err1, err2 error
	s.Index, err1 = strconv.Atoi(strings.TrimSpace(i))
	s.Count, err2 = strconv.Atoi(strings.TrimSpace(n))
	if err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("--shard %q: want I/N with integers, e.g. 0/4", spec)
	}
	if err := s.Validate(); err != nil {
		return Shard{}, fmt.Errorf("--shard %q: %v", spec, err)
	}
	return s, nil
}

// fromEnv finds the shard in the engine's environment; count > 0 is the
// Kubernetes completions count given by the user.
func fromEnv(env Env, count int) (Shard, error) {
	if id := env("SLURM_ARRAY_TASK_ID"); id != "" {
		return fromSlurm(env, id)
	}
	if idx := env("JOB_COMPLETION_INDEX"); idx != "" {
		i, err := strconv.Atoi(idx)
		if err != nil {
			return Shard{}, fmt.Errorf("--shard auto: JOB_COMPLETION_INDEX=%q is not an integer", idx)
		}
		if count == 0 {
			c := env("SRTOOL_SHARD_COUNT")
			if c == "" {
				return Shard{}, fmt.Errorf("--shard auto: JOB_COMPLETION_INDEX is set but not the count; pass --shard auto/N with the Job's completions, or set SRTOOL_SHARD_COUNT")
			}
			if count, err = strconv.Atoi(c); err != nil {
				return Shard{}, fmt.Errorf("--shard auto: SRTOOL_SHARD_COUNT=%q is not an integer", c)
			}
		}
		s := Shard{Index: i, Count: count}
		if err := s.Validate(); err != nil {
			return Shard{}, fmt.Errorf("--shard auto (Kubernetes): %v", err)
		}
		return s, nil
	}
	return Shard{}, fmt.Errorf("--shard auto: neither SLURM_ARRAY_TASK_ID (a Slurm job array) nor JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) is set; give --shard I/N")
}

func fromSlurm(env Env, id string) (Shard, error) {
	num := func(name string, def int) (int, error) {
		v := env(name)
		if v == "" {
			return def, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, fmt.Errorf("--shard auto: %s=%q is not an integer", name, v)
		}
		return n, nil
	}
	task, err := num("SLURM_ARRAY_TASK_ID", 0)
	if err != nil {
		return Shard{}, err
	}
	lo, err := num("SLURM_ARRAY_TASK_MIN", 0)
	if err != nil {
		return Shard{}, err
	}
	step, err := num("SLURM_ARRAY_TASK_STEP", 1)
	if err != nil {
		return Shard{}, err
	}
	if step < 1 {
		return Shard{}, fmt.Errorf("--shard auto: SLURM_ARRAY_TASK_STEP=%d must be at least 1", step)
	}
	count, err := num("SLURM_ARRAY_TASK_COUNT", 0)
	if err != nil {
		return Shard{}, err
	}
	if count == 0 {
		hi, err := num("SLURM_ARRAY_TASK_MAX", -1)
		if err != nil {
			return Shard{}, err
		}
		if hi < lo {
			return Shard{}, fmt.Errorf("--shard auto: Slurm sets SLURM_ARRAY_TASK_ID but neither SLURM_ARRAY_TASK_COUNT nor a SLURM_ARRAY_TASK_MAX ≥ MIN")
		}
		count = (hi-lo)/step + 1
	}
	if (task-lo)%step != 0 {
		return Shard{}, fmt.Errorf("--shard auto: SLURM_ARRAY_TASK_ID=%d is not MIN %d plus a multiple of STEP %d (a --array list with gaps cannot be mapped to shards; use --array=A-B[:S])", task, lo, step)
	}
	s := Shard{Index: (task - lo) / step, Count: count}
	if err := s.Validate(); err != nil {
		return Shard{}, fmt.Errorf("--shard auto (Slurm): %v", err)
	}
	return s, nil
}
