package semirobust

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/checkpoint"
	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/diffmodel"
	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
	"github.com/semirobust/srtool/report"
)

// paramEvaluator measures accuracy of the current parameters on held-out
// data, clean or under an attack (accuracy on the adversarial examples, the
// convention of the paper's torchattacks evaluation).
type paramEvaluator struct {
	clf      *diffmodel.Classifier
	data     *dataset.Dataset
	attack   attacks.Attack // nil = clean
	batch    int
	progress Progress // of each evaluation
}

func (e *paramEvaluator) Evaluate(ctx context.Context, trainable, state finetune.Params) (float64, error) {
	if err := e.clf.SetParams(finetune.Merge(trainable, state)); err != nil {
		return 0, err
	}
	return Accuracy(ctx, e.clf, e.data, e.attack, e.batch, e.progress.samples("evaluation "+AttackLabel(e.attack)))
}

// AttackLabel names an evaluation attack in messages ("clean" for none).
func AttackLabel(a attacks.Attack) string {
	if a == nil {
		return "clean"
	}
	return a.Name()
}

// Accuracy is clean accuracy (attack nil) or accuracy on adversarial
// examples, in percent; progress (may be nil) counts finished samples.
func Accuracy(ctx context.Context, clf attacks.Gradienter, d *dataset.Dataset, attack attacks.Attack, batch int, progress func(done, total int)) (float64, error) {
	if attack != nil {
		r, err := attacks.AdversarialAccuracy(ctx, clf, d.X, d.Y, attack, batch, progress)
		if err != nil {
			return 0, err
		}
		return r.Accuracy, nil
	}
	ok, err := correctnessProgress(ctx, clf, d, batch, progress)
	if err != nil {
		return 0, err
	}
	correct := 0
	for _, v := range ok {
		if v {
			correct++
		}
	}
	return 100 * float64(correct) / float64(d.Len()), nil
}

// Correctness classifies d in batches and reports which samples are right.
func Correctness(ctx context.Context, clf attacks.Model, d *dataset.Dataset, batch int) ([]bool, error) {
	return correctnessProgress(ctx, clf, d, batch, nil)
}

// correctnessProgress is correctness reporting finished samples to
// progress (may be nil).
func correctnessProgress(ctx context.Context, clf attacks.Model, d *dataset.Dataset, batch int, progress func(done, total int)) ([]bool, error) {
	if batch < 1 {
		batch = 128
	}
	k := clf.NumClasses()
	dim := d.C * d.H * d.W
	out := make([]bool, d.Len())
	for lo := 0; lo < d.Len(); lo += batch {
		hi := min(lo+batch, d.Len())
		z, err := clf.Logits(ctx, d.X[lo*dim:hi*dim], hi-lo)
		if err != nil {
			return nil, err
		}
		for i := lo; i < hi; i++ {
			out[i] = attacks.Argmax(z[(i-lo)*k:(i-lo+1)*k]) == int(d.Y[i])
		}
		if progress != nil {
			progress(hi, d.Len())
		}
	}
	return out, nil
}

// pgdGenerator makes PGD training examples against the current parameters
// (BatchNorm in inference mode, as TRADES' and many PGD-AT codes generate them).
type pgdGenerator struct {
	clf *diffmodel.Classifier
	pgd attacks.PGD
}

func (g *pgdGenerator) Perturb(ctx context.Context, trainable, state finetune.Params, x []float32, n int, y []int64, seed uint64) ([]float32, error) {
	if err := g.clf.SetParams(finetune.Merge(trainable, state)); err != nil {
		return nil, err
	}
	a := g.pgd
	a.Seed = seed
	r, err := a.Run(ctx, g.clf, x, y)
	if err != nil {
		return nil, err
	}
	return r.Adv, nil
}

// AttackSetting is the resolved record of an evaluation attack for a model
// with classes classes (nil for clean evaluation).
func AttackSetting(a attacks.Attack, classes int) *attacks.Setting {
	if a == nil {
		return nil
	}
	s := attacks.SettingOf(a, classes)
	return &s
}

// WithParams returns a copy of m whose initializers (by PyTorch name) hold
// the given values; names the exporter tied together are untied as needed.
func WithParams(m *onnxio.Model, ps ...finetune.Params) (*onnxio.Model, error) {
	out := m.Clone()
	ts := map[string]checkpoint.Tensor{}
	for _, p := range ps {
		for name, v := range p {
			t, err := ShapeOf(out, name)
			if err != nil {
				return nil, err
			}
			ts[name] = checkpoint.FromFloat32(t, v)
		}
	}
	if _, err := checkpoint.Import(out, ts, checkpoint.ImportOptions{AllowMissing: true}); err != nil {
		return nil, err
	}
	return out, nil
}

// ShapeOf returns the dims of an initializer, or of the initializer behind
// an Identity output of that name.
func ShapeOf(m *onnxio.Model, name string) ([]int64, error) {
	if t := m.Initializer(name); t != nil {
		return t.GetDims(), nil
	}
	if root := onnxio.InitializerAliases(m.Graph())[name]; root != "" {
		if t := m.Initializer(root); t != nil {
			return t.GetDims(), nil
		}
	}
	return nil, fmt.Errorf("model has no parameter %q", name)
}

// ModelClasses is the number of classes of an analysed classifier (the
// last dimension of its first output), 0 when unknown.
func ModelClasses(an *analyzer.Analysis) int {
	if an == nil || len(an.Index.Outputs) == 0 {
		return 0
	}
	s := an.Shapes.Shape(an.Index.Outputs[0]).Ints()
	if len(s) == 0 || s[len(s)-1] < 1 {
		return 0
	}
	return int(s[len(s)-1])
}

// JobParts attaches to job the evaluator (accuracy of the current
// parameters on test under attack, clean when nil) and, with pgd, the PGD
// training-example generator; both use classifiers over m whose trainable
// and state tensors are fed on every run. close releases them.
func JobParts(job *finetune.Job, m *onnxio.Model, eng ort.Options, test *dataset.Dataset, attack attacks.Attack, pgd *attacks.PGD, batch int, progress Progress) (close func(), err error) {
	over := append(job.Trainable.Names(), job.State.Names()...)
	var clfs []*diffmodel.Classifier
	close = func() {
		for _, c := range clfs {
			c.Close()
		}
	}
	evalClf, err := diffmodel.NewClassifierWithParams(m, eng, over)
	if err != nil {
		return close, err
	}
	clfs = append(clfs, evalClf)
	job.Evaluator = &paramEvaluator{clf: evalClf, data: test, attack: attack, batch: batch, progress: progress}
	if pgd != nil {
		advClf, err := diffmodel.NewClassifierWithParams(m, eng, over)
		if err != nil {
			return close, err
		}
		clfs = append(clfs, advClf)
		job.Adv = &pgdGenerator{clf: advClf, pgd: *pgd}
	}
	return close, nil
}

// RunOrResume runs the training loop, or resumes it from ck.
func RunOrResume(ctx context.Context, ck *finetune.Checkpoint, fo finetune.Options, job finetune.Job) (*finetune.Result, error) {
	if ck != nil {
		return fo.Resume(ctx, job)
	}
	return fo.Run(ctx, job)
}

// ResumedFrom says where a checkpoint leaves a run, e.g. "trial 1, 2 of 10
// epochs finished".
func ResumedFrom(ck *finetune.Checkpoint, epochs int) string {
	trials := ck.Trials()
	last := trials[len(trials)-1]
	switch {
	case last.Done && len(trials) == 1:
		return fmt.Sprintf("trial %d finished", last.Trial)
	case last.Done:
		return fmt.Sprintf("%d trials finished", len(trials))
	}
	return fmt.Sprintf("trial %d, %d of %d epochs finished", last.Trial, len(last.Epochs), epochs)
}

// BestSoFar is the best evaluation accuracy an unfinished run reached, and
// where. It is not the run's result.
type BestSoFar struct {
	Acc   float64 `json:"acc"`
	Trial int     `json:"trial"`
	Epoch int     `json:"epoch"`
}

func bestSoFarOf(res *finetune.Result) *BestSoFar {
	s := res.BestSoFar()
	if s == nil {
		return nil
	}
	return &BestSoFar{Acc: s.Acc, Trial: s.Trial, Epoch: s.Epoch}
}

func (b *BestSoFar) String() string {
	return fmt.Sprintf("best so far %.2f%% at trial %d epoch %d", b.Acc, b.Trial, b.Epoch)
}

// FinishedWork says what a stopped training run finished, e.g. "trial 1
// stopped after 2 of 10 epochs (best so far 63.50% at trial 1 epoch 2)".
func FinishedWork(res *finetune.Result, epochs int) string {
	if res == nil || len(res.Trials) == 0 {
		return "no epoch finished"
	}
	var parts []string
	done := 0
	for _, t := range res.Trials {
		if t.Done {
			done++
		}
	}
	if done > 0 {
		parts = append(parts, fmt.Sprintf("%d trial(s) finished", done))
	}
	if last := res.Trials[len(res.Trials)-1]; !last.Done {
		parts = append(parts, fmt.Sprintf("trial %d stopped after %d of %d epochs", last.Trial, len(last.Epochs), epochs))
	}
	s := strings.Join(parts, ", ")
	if b := bestSoFarOf(res); b != nil {
		s += " (" + b.String() + ")"
	}
	return s
}

// identityIgnore lists flags that name where things go or how they run,
// not what the run computes: a checkpoint does not compare them. Models
// and data are compared by content, so their paths are not compared either.
var identityIgnore = map[string]bool{
	"json": true, "threads": true, "device": true, "resume": true, "checkpoint-dir": true, "shard": true, "skip-done": true,
	"o": true, "safetensors": true, "feature-cache-mb": true,
	"robust": true, "normal": true, "tail-from": true, "data": true, "eval-data": true,
}

// RunIdentity is what a checkpoint of this run records to tell it from any
// other (finetune.Job.Identity): the srtool version, the command, the
// SHA-256 of each model file (by role), fingerprints of each data set
// (count, indices, SHA-256 of the pixels and of the labels), the extra
// resolved settings (the adversarial training, the evaluation attack) and
// every flag that changes results (ri: the command line and resolved
// flags). keep lists flags identityIgnore would drop but this command must
// compare.
func RunIdentity(ri report.RunInfo, models [][2]string, data []IdentityData, extra []finetune.Setting, keep ...string) ([]finetune.Setting, error) {
	id := []finetune.Setting{{Name: "srtool version", Value: ri.Version}, {Name: "command", Value: ri.Command}}
	for _, m := range models {
		d, err := report.FileDigests(m[1])
		if err != nil {
			return nil, err
		}
		id = append(id, finetune.Setting{Name: m[0] + " (SHA-256)", Value: d[m[1]]})
	}
	for _, d := range data {
		id = append(id, d.Settings()...)
	}
	id = append(id, extra...)
	names := make([]string, 0, len(ri.Flags))
	for k := range ri.Flags {
		if !identityIgnore[k] || slices.Contains(keep, k) {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		v, _ := json.Marshal(ri.Flags[k])
		id = append(id, finetune.Setting{Name: "--" + k, Value: string(v)})
	}
	return id, nil
}

// IdentityData is a data set as a run's identity names it.
type IdentityData struct {
	Role   string // "training data", "evaluation data"
	D      *dataset.Dataset
	Offset int // index of the first sample in its source
}

func (d IdentityData) Settings() []finetune.Setting {
	hx, hy := sha256.New(), sha256.New()
	var b [8]byte
	buf := make([]byte, 0, 1<<16)
	for i, v := range d.D.X {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		if len(buf) == cap(buf) || i == len(d.D.X)-1 {
			hx.Write(buf)
			buf = buf[:0]
		}
	}
	for _, y := range d.D.Y {
		binary.LittleEndian.PutUint64(b[:], uint64(y))
		hy.Write(b[:])
	}
	n := d.D.Len()
	return []finetune.Setting{
		{Name: d.Role, Value: fmt.Sprintf("%d samples of %d×%d×%d, indices %d..%d, %d classes", n, d.D.C, d.D.H, d.D.W, d.Offset, d.Offset+n-1, d.D.Classes)},
		{Name: d.Role + " pixels (SHA-256)", Value: hex.EncodeToString(hx.Sum(nil))},
		{Name: d.Role + " labels (SHA-256)", Value: hex.EncodeToString(hy.Sum(nil))},
	}
}

// SettingJSON is a Setting whose value is v as JSON ("null" for nil).
func SettingJSON(name string, v any) finetune.Setting {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(fmt.Sprintf("%q", fmt.Sprint(v)))
	}
	return finetune.Setting{Name: name, Value: string(b)}
}

// RemoveStale removes path if it exists (a leftover of an earlier run).
func RemoveStale(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
