//go:build cgo && unix

package diffmodel

import (
	"context"
	"os"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
)

// BenchmarkAutoAttack runs AutoAttack (standard, L∞) the way `srtool
// attack --attack autoattack` does (a Classifier and attacks.Evaluate) on
// the model in SRTOOL_BENCH_MODEL and the first SRTOOL_BENCH_N (default 64)
// points of the data SPEC in SRTOOL_BENCH_DATA, ε SRTOOL_BENCH_EPS (default
// 0.1), seed 0, SRTOOL_BENCH_THREADS threads (default 2), and reports the
// wall and CPU seconds of each component (from the end of the clean pass, or
// of the previous component, to its end: the official log's split), of the
// whole run, and the robust accuracy after each component (percent).
// SRTOOL_BENCH_ATTACKS, a comma list of components (apgd-ce, apgd-t, fab-t,
// square), runs only those, with the standard version's settings.
// scripts/bench_autoattack.sh runs it next to the official implementation.
func BenchmarkAutoAttack(b *testing.B) {
	path, spec := os.Getenv("SRTOOL_BENCH_MODEL"), os.Getenv("SRTOOL_BENCH_DATA")
	if path == "" || spec == "" {
		b.Skip("set SRTOOL_BENCH_MODEL and SRTOOL_BENCH_DATA (scripts/bench_autoattack.sh does)")
	}
	n := 64
	if v := os.Getenv("SRTOOL_BENCH_N"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("SRTOOL_BENCH_N=%q: want a number ≥ 1", v)
		}
	}
	eps := 0.1
	if v := os.Getenv("SRTOOL_BENCH_EPS"); v != "" {
		var err error
		if eps, err = strconv.ParseFloat(v, 64); err != nil {
			b.Fatalf("SRTOOL_BENCH_EPS=%q: %v", v, err)
		}
	}
	m, err := onnxio.Read(path)
	if err != nil {
		b.Fatal(err)
	}
	d, err := dataset.Load(spec, dataset.Options{N: n})
	if err != nil {
		b.Fatal(err)
	}
	c, err := NewClassifier(m, ort.Options{Threads: benchThreads(b), ProfilePrefix: os.Getenv("SRTOOL_BENCH_PROFILE")})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	comps, err := (&attacks.AutoAttack{Epsilon: float32(eps)}).Components()
	if err != nil {
		b.Fatal(err)
	}
	if v := os.Getenv("SRTOOL_BENCH_ATTACKS"); v != "" {
		// The standard version's components with its settings (AutoAttack's
		// "custom" version would give APGD-CE 5 restarts).
		keep := splitComma(v)
		comps = slices.DeleteFunc(comps, func(a attacks.Attack) bool { return !slices.Contains(keep, a.Name()) })
	}
	secs, cpu := make([]float64, len(comps)), make([]float64, len(comps))
	var res *attacks.EvalResult
	cpu0 := cpuSeconds()
	b.ResetTimer()
	for range b.N {
		last, lastCPU := time.Now(), cpuSeconds()
		opts := attacks.EvalOptions{Progress: func(p attacks.Progress) {
			if p.Attack == "clean" || p.Done < p.Total {
				if p.Attack == "clean" && p.Done == p.Total {
					last, lastCPU = time.Now(), cpuSeconds()
				}
				return
			}
			now, nowCPU := time.Now(), cpuSeconds()
			secs[p.Step] += now.Sub(last).Seconds()
			cpu[p.Step] += nowCPU - lastCPU
			last, lastCPU = now, nowCPU
		}}
		if res, err = attacks.Evaluate(context.Background(), c, d.X, d.Y, comps, opts); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	for i, a := range comps {
		name := a.Name()
		b.ReportMetric(secs[i]/float64(b.N), name+"_s")
		b.ReportMetric(cpu[i]/float64(b.N), name+"_cpu_s")
		b.ReportMetric(res.Attacks[i].RobustAccuracy, name+"_acc")
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "total_s")
	b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "total_cpu_s")
	b.ReportMetric(res.CleanAccuracy, "clean_acc")
}

// cpuSeconds is the process's user and system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}

// BenchmarkCallSizes measures one LossGrad (targeted DLR) and one Logits
// call on batches of 1 to 512 samples of the model in SRTOOL_BENCH_MODEL:
// the per-call cost that AutoAttack's many small calls pay.
func BenchmarkCallSizes(b *testing.B) {
	c := benchClassifier(b)
	defer c.Close()
	d := c.sampleSize()
	for _, n := range []int{1, 8, 32, 128, 512} {
		x := make([]float32, n*d)
		for i := range x {
			x[i] = float32(i%255) / 255
		}
		y, t := make([]int64, n), make([]int64, n)
		for i := range y {
			y[i], t[i] = int64(i%10), int64((i+3)%10)
		}
		b.Run("grad/n="+strconv.Itoa(n), func(b *testing.B) {
			for range b.N {
				if _, _, _, err := c.LossGrad(context.Background(), x, n, attacks.Loss{Kind: attacks.TargetedDLR, Labels: y, Targets: t}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/sample")
		})
		b.Run("ce/n="+strconv.Itoa(n), func(b *testing.B) {
			for range b.N {
				if _, _, _, err := c.LossGrad(context.Background(), x, n, attacks.Loss{Kind: attacks.CrossEntropy, Labels: y}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/sample")
		})
		b.Run("logits/n="+strconv.Itoa(n), func(b *testing.B) {
			for range b.N {
				if _, err := c.Logits(context.Background(), x, n); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/sample")
		})
	}
}
