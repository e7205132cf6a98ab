package zoo

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/semirobust/srtool/arch"
	"github.com/semirobust/srtool/checkpoint"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/onnxio/onnxpb"
)

// Options adjusts Import. The zero value imports RobustBench's full-size
// model.
type Options struct {
	// Width replaces the architecture's base width (arch.Config.Width: 16
	// for the WideResNets, 64 for the ResNets) when positive. RobustBench's
	// own checkpoints need 0; a smaller width serves shrunken checkpoints
	// of the same family, such as srtool's test fixtures.
	Width int `json:"width,omitempty"`
}

// Normalization sources.
const (
	FromCheckpoint = "checkpoint" // the checkpoint's mu and sigma
	FromTable      = "table"      // the table's values (RobustBench's class definition)
)

// NormalizationUsed is the input normalisation Import put in the model.
type NormalizationUsed struct {
	Mean   []float32 `json:"mean"`
	Std    []float32 `json:"std"`
	Source string    `json:"source"` // FromCheckpoint or FromTable
	// TableMean and TableStd are the table's values when the checkpoint's
	// differ from them (the checkpoint's win).
	TableMean []float32 `json:"table_mean,omitempty"`
	TableStd  []float32 `json:"table_std,omitempty"`
	Forward   string    `json:"forward"` // RobustBench's forward, e.g. "(x - mu) / sigma"
}

// DiffersFromTable reports whether the checkpoint's values replaced
// different ones in the table.
func (n *NormalizationUsed) DiffersFromTable() bool { return n != nil && n.TableMean != nil }

// Report says what Import did. Name lists are sorted.
type Report struct {
	ID     string      `json:"id"`
	Arch   string      `json:"arch"`
	Config arch.Config `json:"config"`
	// Normalization is nil for a model that does not normalise its input.
	Normalization *NormalizationUsed `json:"normalization"`
	// Stripped counts the keys that lost a "model." prefix ("module." is
	// stripped by checkpoint.Read before Import sees the tensors).
	Stripped int `json:"stripped_model_prefix,omitempty"`
	// Dropped lists the unused sub_block1.* tensors left out.
	Dropped []string `json:"dropped"`
	// Loaded lists the model's tensors set from the checkpoint (mu and sigma
	// included only when they came from it).
	Loaded []string `json:"loaded"`
}

// MismatchError refuses a checkpoint that does not fit the entry: Missing
// are the architecture's tensors the checkpoint lacks, Unexpected the
// checkpoint's tensors it has no place for, Shape the tensors whose shape
// or type differ ("name (checkpoint F32 [10 64] vs model [10 32])"). Lists
// are sorted and complete; Error shows the first ten of each. Looks, when
// not empty, describes what the checkpoint's names and shapes look like.
type MismatchError struct {
	ID, Arch                   string
	Config                     arch.Config
	Missing, Unexpected, Shape []string
	Looks                      string
	Notes                      []string
}

func (e *MismatchError) Error() string {
	var parts []string
	if len(e.Missing) > 0 {
		parts = append(parts, fmt.Sprintf("%d missing from the checkpoint (%s)", len(e.Missing), firstN(e.Missing, 10)))
	}
	if len(e.Unexpected) > 0 {
		parts = append(parts, fmt.Sprintf("%d unexpected in the checkpoint (%s)", len(e.Unexpected), firstN(e.Unexpected, 10)))
	}
	if len(e.Shape) > 0 {
		parts = append(parts, fmt.Sprintf("%d with a different shape or type (%s)", len(e.Shape), firstN(e.Shape, 10)))
	}
	msg := fmt.Sprintf("checkpoint does not fit %s (%s, %d classes, base width %d): %s",
		e.ID, e.Arch, e.Config.Classes, e.Config.Width, strings.Join(parts, "; "))
	for _, n := range e.Notes {
		msg += "; " + n
	}
	if e.Looks != "" {
		msg += "; the checkpoint looks like " + e.Looks
	}
	return msg
}

func firstN(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s, … (%d more)", strings.Join(names[:n], ", "), len(names)-n)
}

// Import builds e's architecture (at opt.Width when set) and loads the
// checkpoint's tensors into it under the conventions in the package
// documentation. tensors is a state_dict as checkpoint.Read returns it; it
// is not modified. The model takes pixels in [0,1] and carries its
// normalisation, so later commands need no --mean/--std. A checkpoint that
// does not fit is refused with a *MismatchError.
func Import(e Entry, tensors map[string]checkpoint.Tensor, opt Options) (*onnxio.Model, *Report, error) {
	if opt.Width < 0 {
		return nil, nil, fmt.Errorf("zoo import %s: width %d is negative", e.ID, opt.Width)
	}
	rep := &Report{ID: e.ID, Arch: e.Arch, Dropped: []string{}}
	sd, err := stripModelPrefix(tensors, &rep.Stripped)
	if err != nil {
		return nil, nil, fmt.Errorf("zoo import %s: %w", e.ID, err)
	}
	wrn := strings.HasPrefix(e.Arch, "wrn-")
	if wrn {
		for k := range sd {
			if strings.HasPrefix(k, "sub_block1.") {
				rep.Dropped = append(rep.Dropped, k)
				delete(sd, k)
			}
		}
		slices.Sort(rep.Dropped)
	}

	given := maps.Clone(sd) // the checkpoint's tensors, for describe
	cfg := arch.Config{Classes: e.Classes, Width: opt.Width}
	mis := &MismatchError{ID: e.ID, Arch: e.Arch}
	fromCheckpoint := false
	if nz := e.Normalization; nz != nil {
		used := &NormalizationUsed{Mean: nz.Mean, Std: nz.Std, Source: FromTable, Forward: nz.Forward}
		mu, hasMu := sd["mu"]
		sigma, hasSigma := sd["sigma"]
		switch {
		case !nz.Buffers && (hasMu || hasSigma):
			// The model's forward hard-codes its constants (2x − 1):
			// RobustBench's strict load refuses mu/sigma, and so does srtool.
			for _, k := range []string{"mu", "sigma"} {
				if _, ok := sd[k]; ok {
					mis.Unexpected = append(mis.Unexpected, k)
				}
			}
			mis.Notes = append(mis.Notes, fmt.Sprintf("%s normalises as %s with fixed constants, not mu/sigma buffers", e.Name, nz.Forward))
		case hasMu && hasSigma:
			m, errM := channelValues(mu, "mu", len(nz.Mean))
			s, errS := channelValues(sigma, "sigma", len(nz.Std))
			if errM != nil || errS != nil {
				for _, err := range []error{errM, errS} {
					if err != nil {
						mis.Shape = append(mis.Shape, err.Error())
					}
				}
				break
			}
			used.Mean, used.Std, used.Source = m, s, FromCheckpoint
			if !slices.Equal(m, nz.Mean) || !slices.Equal(s, nz.Std) {
				used.TableMean, used.TableStd = nz.Mean, nz.Std
			}
			fromCheckpoint = true
		case hasMu != hasSigma:
			missing := "sigma"
			if hasSigma {
				missing = "mu"
			}
			mis.Missing = append(mis.Missing, missing)
			mis.Notes = append(mis.Notes, "the checkpoint has only one of the mu/sigma normalisation buffers")
		default:
			// RobustBench loads these checkpoints non-strictly and keeps the
			// class's buffers: the table's values.
			sd["mu"] = checkpoint.FromFloat32([]int64{1, int64(len(nz.Mean)), 1, 1}, nz.Mean)
			sd["sigma"] = checkpoint.FromFloat32([]int64{1, int64(len(nz.Std)), 1, 1}, nz.Std)
		}
		if used.Source == FromCheckpoint || len(mis.Missing)+len(mis.Unexpected)+len(mis.Shape) == 0 {
			rep.Normalization = used
			cfg.Normalize = &arch.Normalization{Mean: used.Mean, Std: used.Std}
		}
	} else {
		for _, k := range []string{"mu", "sigma"} {
			if _, ok := sd[k]; ok {
				mis.Notes = appendOnce(mis.Notes, fmt.Sprintf("RobustBench's %s does not normalise its input, so it has no mu/sigma", e.Name))
			}
		}
	}
	if cfg.Normalize == nil && e.Normalization != nil {
		// Build without normalisation so the lists below cover the rest.
		delete(sd, "mu")
		delete(sd, "sigma")
	}

	m, err := arch.Build(e.Arch, cfg)
	if err != nil {
		if cfg.Normalize != nil && fromCheckpoint {
			return nil, nil, fmt.Errorf("zoo import %s: the checkpoint's mu %v, sigma %v: %w", e.ID, cfg.Normalize.Mean, cfg.Normalize.Std, err)
		}
		return nil, nil, fmt.Errorf("zoo import %s: %w", e.ID, err)
	}
	rep.Config = configOf(m, cfg)
	mis.Config = rep.Config
	ir, err := checkpoint.Import(m, sd, checkpoint.ImportOptions{})
	var cm *checkpoint.MismatchError
	switch {
	case errors.As(err, &cm):
		mis.Missing = append(mis.Missing, cm.Missing...)
		mis.Unexpected = append(mis.Unexpected, cm.Unexpected...)
		mis.Shape = append(mis.Shape, cm.Shape...)
	case err != nil:
		return nil, nil, fmt.Errorf("zoo import %s: %w", e.ID, err)
	}
	if len(mis.Missing)+len(mis.Unexpected)+len(mis.Shape) > 0 {
		for _, l := range []*[]string{&mis.Missing, &mis.Unexpected, &mis.Shape} {
			slices.Sort(*l)
			*l = slices.Compact(*l)
		}
		mis.Looks = describe(given)
		return nil, nil, mis
	}
	for _, k := range ir.Loaded {
		if (k == "mu" || k == "sigma") && !fromCheckpoint {
			continue
		}
		rep.Loaded = append(rep.Loaded, k)
	}
	setMeta(m, e)
	return m, rep, nil
}

func appendOnce(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// stripModelPrefix returns a copy of sd with "model." removed from every key
// that starts with it (robustbench/utils.py does this for Chen2020Efficient;
// "module." is checkpoint.Read's). A key that would collide is an error.
func stripModelPrefix(sd map[string]checkpoint.Tensor, n *int) (map[string]checkpoint.Tensor, error) {
	out := make(map[string]checkpoint.Tensor, len(sd))
	for k, v := range sd {
		name := k
		if s, ok := strings.CutPrefix(k, "model."); ok {
			name = s
			*n++
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("checkpoint has both %q and %q", name, "model."+name)
		}
		out[name] = v
	}
	return out, nil
}

// channelValues reads a [1, c, 1, 1] normalisation buffer.
func channelValues(t checkpoint.Tensor, name string, c int) ([]float32, error) {
	if !t.DType.IsFloat() || !slices.Equal(t.Shape, []int64{1, int64(c), 1, 1}) {
		return nil, fmt.Errorf("%s (checkpoint %s %v vs model [1 %d 1 1])", name, t.DType, t.Shape, c)
	}
	v, err := t.Float32s()
	if err != nil {
		return nil, fmt.Errorf("%s (%v)", name, err)
	}
	return v, nil
}

// configOf returns the configuration Build filled in (recorded in the
// model's srtool.arch.config metadata), falling back to cfg.
func configOf(m *onnxio.Model, cfg arch.Config) arch.Config {
	for _, p := range m.Proto.GetMetadataProps() {
		if p.GetKey() == "srtool.arch.config" {
			var c arch.Config
			if err := json.Unmarshal([]byte(p.GetValue()), &c); err == nil {
				return c
			}
		}
	}
	return cfg
}

// setMeta records the zoo entry and the table's source in the model.
func setMeta(m *onnxio.Model, e Entry) {
	src := ""
	if t, err := Load(); err == nil {
		src = t.Source.Repository + "@" + t.Source.Commit
	}
	input := "pixels in [0,1], NCHW"
	if e.Normalization != nil {
		input += "; normalised inside the graph as (input - mu) / sigma"
	}
	m.Proto.MetadataProps = append(m.Proto.MetadataProps,
		&onnxpb.StringStringEntryProto{Key: "srtool.zoo.id", Value: e.ID},
		&onnxpb.StringStringEntryProto{Key: "srtool.zoo.source", Value: src},
		&onnxpb.StringStringEntryProto{Key: "srtool.input", Value: input})
}
