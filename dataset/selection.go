package dataset

import (
	"fmt"

	"github.com/semirobust/srtool/internal/option"
)

// ErrOption marks an error in a Selection (a missing spec, a negative
// count, fewer samples than asked for): srtool reports such errors as
// usage errors, in words that name its flags. It is option.Err, the
// ErrOption of every package that checks settings.
var ErrOption = option.Err

// Selection is the data a command reads, as its flags write it: the data
// Spec (Load's), the Split (train or test), the first N samples (0 = all)
// after the first Offset, read in batches of Batch (only checked here).
type Selection struct {
	Spec, Split      string
	N, Offset, Batch int
}

// Load checks s and loads its samples; it refuses a positive N that the
// data cannot fill after Offset. Errors in s wrap ErrOption.
func (s Selection) Load() (*Dataset, error) {
	switch {
	case s.Spec == "":
		return nil, option.Errorf("--data is required")
	case s.Batch < 1:
		return nil, option.Errorf("--batch must be at least 1")
	case s.Split != "train" && s.Split != "test":
		return nil, option.Errorf("--split %q: want train or test", s.Split)
	case s.N < 0 || s.Offset < 0:
		return nil, option.Errorf("--n and --offset must not be negative")
	}
	d, err := Load(s.Spec, Options{Split: s.Split, N: s.N, Offset: s.Offset})
	if err != nil {
		return nil, fmt.Errorf("data %s: %w", s.Spec, err)
	}
	if s.N > 0 && d.Len() < s.N {
		return nil, option.Errorf("--n %d but %s has only %d samples after --offset %d; lower --n, or leave it out to use them all", s.N, s.Spec, d.Len(), s.Offset)
	}
	return d, nil
}

// LoadTrain checks s and loads training data: its split (all of an
// npz, npy or folder source), which must hold a sample after Offset. Errors
// in s wrap ErrOption.
func (s Selection) LoadTrain() (*Dataset, error) {
	switch {
	case s.Spec == "":
		return nil, option.Errorf("--data is required")
	case s.Batch < 1:
		return nil, option.Errorf("--batch must be at least 1")
	case s.N < 0 || s.Offset < 0:
		return nil, option.Errorf("--n and --offset must not be negative")
	case s.Split != "train" && s.Split != "test":
		return nil, option.Errorf("--split %q: want train or test", s.Split)
	}
	d, err := Load(s.Spec, Options{Split: s.Split, N: s.N, Offset: s.Offset})
	if err != nil {
		return nil, fmt.Errorf("training data %s: %w", s.Spec, err)
	}
	if d.Len() == 0 {
		return nil, option.Errorf("training data %s has no sample after --offset %d", s.Spec, s.Offset)
	}
	return d, nil
}

// LoadEval loads evaluation data: the first n samples (0 = all) of the
// test split of spec, or of train's (the training data's spec) when spec
// is empty; train must then have a test split (not npz, npy or folder).
// Errors in the arguments wrap ErrOption.
func LoadEval(spec, train string, n int) (*Dataset, error) {
	if n < 0 {
		return nil, option.Errorf("--eval-n %d: must not be negative (0 = all)", n)
	}
	if spec == "" {
		spec = train
		if s, err := ParseSpec(spec); err == nil {
			switch s.Format {
			case "npz", "npy", "folder":
				return nil, option.Errorf("--data %s has no separate test split: name the evaluation data with --eval-data", spec)
			}
		}
	}
	d, err := Load(spec, Options{Split: "test", N: n})
	if err != nil {
		return nil, fmt.Errorf("evaluation data %s: %w", spec, err)
	}
	return d, nil
}
