package zoo

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

//go:embed robustbench.json
var tableJSON []byte

// Source says where the table's facts come from.
type Source struct {
	Repository string   `json:"repository"`
	Commit     string   `json:"commit"`
	CommitDate string   `json:"commit_date"`
	Version    string   `json:"version"`   // RobustBench's setup.py version at Commit
	Read       []string `json:"read"`      // the files the facts were read from
	Generator  string   `json:"generator"` // the script that wrote the table
}

// Entry is one RobustBench model srtool rebuilds exactly.
type Entry struct {
	ID          string  `json:"id"` // "<dataset>/<threat>/<name>"
	Name        string  `json:"name"`
	Dataset     string  `json:"dataset"`      // cifar10 or cifar100
	ThreatModel string  `json:"threat_model"` // Linf, L2 or corruptions
	Eps         *string `json:"eps"`          // as RobustBench writes it ("8/255", "0.5"); nil for corruptions
	// Arch is the arch.Build name, Classes the number of logits.
	Arch    string `json:"arch"`
	Classes int    `json:"classes"`
	// RobustBenchArchitecture is model_info's "architecture" text;
	// Definition the constructor the table was derived from.
	RobustBenchArchitecture string `json:"robustbench_architecture"`
	Definition              string `json:"definition"`
	// SubBlock1 marks WideResNet(sub_block1=True): the checkpoint carries
	// sub_block1.* tensors that forward never uses.
	SubBlock1 bool `json:"sub_block1,omitempty"`
	// Normalization is what the model does to its [0,1] input before the
	// network; nil when it does nothing.
	Normalization *Normalization `json:"normalization"`
	// Accuracies in percent as RobustBench lists them: AutoAttack for Linf
	// and L2, the common-corruptions accuracy for corruptions.
	CleanAcc       *float64 `json:"clean_acc"`
	AutoAttackAcc  *float64 `json:"autoattack_acc,omitempty"`
	CorruptionsAcc *float64 `json:"corruptions_acc,omitempty"`
	AdditionalData bool     `json:"additional_data"`
	Unreliable     bool     `json:"unreliable,omitempty"`
	// Nested is the key RobustBench's loader takes the state_dict from
	// ("last" for Andriushchenko2020Understanding and Kireev2021*).
	Nested string `json:"nested,omitempty"`
}

// Normalization is an input normalisation (x − Mean) / Std per channel.
// Buffers says that the model keeps Mean and Std as mu/sigma buffers, so
// its checkpoint may carry its own values; Forward is how RobustBench's
// forward writes it.
type Normalization struct {
	Mean    []float32 `json:"mean"`
	Std     []float32 `json:"std"`
	Buffers bool      `json:"buffers"`
	Forward string    `json:"forward"`
}

// Excluded is a RobustBench CIFAR model srtool does not rebuild.
type Excluded struct {
	ID         string `json:"id"`
	Definition string `json:"definition"`
	Reason     string `json:"reason"`
}

// Table is the whole embedded table.
type Table struct {
	Source   Source     `json:"source"`
	Models   []Entry    `json:"models"`
	Excluded []Excluded `json:"excluded"`
}

var loadTable = sync.OnceValues(func() (*Table, error) {
	var t Table
	if err := json.Unmarshal(tableJSON, &t); err != nil {
		return nil, fmt.Errorf("zoo table robustbench.json: %w", err)
	}
	return &t, nil
})

// Load returns the embedded table. The caller must not modify it.
func Load() (*Table, error) { return loadTable() }

// ErrUnknownID is wrapped by Lookup's error for an ID the table lacks.
var ErrUnknownID = errors.New("not in srtool's RobustBench table")

// Lookup returns the entry with this ID ("cifar10/Linf/Carmon2019Unlabeled")
// or, when exactly one entry has it, this name ("Carmon2019Unlabeled") or
// dataset/name ("cifar100/Rice2020Overfitting"). An ambiguous name lists the
// IDs it could mean; a RobustBench model srtool does not rebuild says why.
func Lookup(id string) (Entry, error) {
	t, err := Load()
	if err != nil {
		return Entry{}, err
	}
	var hits []Entry
	for _, e := range t.Models {
		if e.ID == id || e.Name == id || e.Dataset+"/"+e.Name == id {
			hits = append(hits, e)
		}
	}
	switch {
	case len(hits) == 1:
		return hits[0], nil
	case len(hits) > 1:
		for _, e := range hits {
			if e.ID == id {
				return e, nil
			}
		}
		ids := make([]string, len(hits))
		for i, e := range hits {
			ids[i] = e.ID
		}
		return Entry{}, fmt.Errorf("zoo model %q is ambiguous: it could be %s; give the full ID", id, strings.Join(ids, ", "))
	}
	for _, x := range t.Excluded {
		if x.ID == id || strings.HasSuffix(x.ID, "/"+id) {
			return Entry{}, fmt.Errorf("zoo model %q: %w: RobustBench's %s is %s, whose architecture srtool does not build (%s); export it to ONNX from PyTorch instead",
				id, ErrUnknownID, x.ID, x.Definition, x.Reason)
		}
	}
	var near []string
	low := strings.ToLower(id)
	for _, e := range t.Models {
		if strings.Contains(strings.ToLower(e.ID), low) && !slices.Contains(near, e.ID) {
			near = append(near, e.ID)
		}
	}
	if len(near) > 0 && len(near) <= 8 {
		return Entry{}, fmt.Errorf("zoo model %q: %w; did you mean %s?", id, ErrUnknownID, strings.Join(near, ", "))
	}
	return Entry{}, fmt.Errorf("zoo model %q: %w (%d models; `srtool zoo list` shows them)", id, ErrUnknownID, len(t.Models))
}

// RobustAcc returns the accuracy RobustBench ranks the model by: AutoAttack
// for Linf and L2, corruptions for corruptions; nil when it lists none.
func (e Entry) RobustAcc() *float64 {
	if e.ThreatModel == "corruptions" {
		return e.CorruptionsAcc
	}
	return e.AutoAttackAcc
}
