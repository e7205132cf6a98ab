package semirobust

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/semirobust/srtool/report"
)

// TestLoadUnitBound: a run with Bound does not take over a finished trial
// unit that has no bound, even one with its fingerprint; a unit with the
// bound is taken over, by runs with and without Bound.
func TestLoadUnitBound(t *testing.T) {
	dir := t.TempDir()
	id := UnitID{Attack: "pgd", K: 2, Trial: 1}
	u := gridUnits(48)[id.String()]
	u.Index, u.Fingerprint = 1, "fp"
	u.Model = filepath.Join(dir, id.file()+".onnx")
	b := []byte("model")
	if err := os.WriteFile(u.Model, b, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	u.ModelSHA256 = hex.EncodeToString(sum[:])
	r := &runner{fp: "fp", unitsDir: dir, ks: []int{2}, bound: true}
	if err := report.WriteJSON(r.unitFile(id), u); err != nil {
		t.Fatal(err)
	}
	if _, err := r.loadUnit(id, 1); err == nil || !strings.Contains(err.Error(), "written without --bound") {
		t.Errorf("a unit without a bound in a run with Bound: %v; want a refusal", err)
	}
	u.Bound = &TrialBound{Trial: 1, Bound: 1}
	if err := report.WriteJSON(r.unitFile(id), u); err != nil {
		t.Fatal(err)
	}
	for _, bound := range []bool{true, false} {
		r.bound = bound
		if got, err := r.loadUnit(id, 1); err != nil || got == nil || got.Bound == nil || got.Bound.Bound != 1 {
			t.Errorf("Bound %v: unit %+v, %v; want it taken over with its bound", bound, got, err)
		}
	}
}
