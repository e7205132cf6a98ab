package attacks

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func TestAutoAttackVersions(t *testing.T) {
	cases := []struct {
		a    AutoAttack
		want []string
	}{
		{AutoAttack{}, []string{"apgd-ce", "apgd-t", "fab-t", "square"}},
		{AutoAttack{Version: "plus"}, []string{"apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t"}},
		{AutoAttack{Version: "rand"}, []string{"apgd-ce", "apgd-dlr"}},
		{AutoAttack{Version: "custom", Attacks: []string{"square", "apgd-dlr"}}, []string{"square", "apgd-dlr"}},
		{AutoAttack{Torchattacks: true}, []string{"apgd-ce", "apgd-t", "fab", "square"}},
	}
	for _, c := range cases {
		cs, err := c.a.Components()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range cs {
			got = append(got, a.Name())
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s components %v; want %v", c.a.Name(), got, c.want)
		}
	}
	std, _ := (&AutoAttack{}).Components()
	if a := std[0].(*APGD); a.Steps != 100 || a.Restarts != 1 || a.Epsilon != 8.0/255 {
		t.Errorf("standard APGD-CE %+v; want 100 steps, 1 restart, ε 8/255", *a)
	}
	if s := std[3].(*Square); s.Queries != 5000 || s.PInit != 0.8 || s.RescaleSchedule {
		t.Errorf("standard Square %+v; want 5000 queries, p_init 0.8, no rescaling", *s)
	}
	rnd, _ := (&AutoAttack{Version: "rand"}).Components()
	if a := rnd[1].(*APGD); a.EOT != 20 || a.Loss != DLR {
		t.Errorf("rand APGD-DLR %+v; want EOT 20", *a)
	}
	ta, _ := (&AutoAttack{Torchattacks: true}).Components()
	if a := ta[1].(*APGDT); a.Steps != 10 || a.Targets != allTargets {
		t.Errorf("torchattacks APGD-T %+v; want 10 steps, all targets", *a)
	}
	if s := ta[3].(*Square); !s.RescaleSchedule {
		t.Errorf("torchattacks Square does not rescale its schedule")
	}
}

// TestAutoAttackVersionJSON checks that the typed version keeps the JSON of
// the string it replaced and is still read in any case.
func TestAutoAttackVersionJSON(t *testing.T) {
	for _, c := range []struct {
		a    AutoAttack
		json string
		name string
	}{
		{AutoAttack{}, `"version":""`, "autoattack"},
		{AutoAttack{Version: AutoAttackPlus}, `"version":"plus"`, "autoattack-plus"},
		{AutoAttack{Version: "RAND"}, `"version":"RAND"`, "autoattack-rand"},
		{AutoAttack{Version: AutoAttackCustom, Attacks: []string{"square"}}, `"version":"custom"`, "autoattack-custom"},
	} {
		b, err := json.Marshal(c.a)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), c.json) {
			t.Errorf("AutoAttack JSON %s; want it to contain %s", b, c.json)
		}
		if got := c.a.Name(); got != c.name {
			t.Errorf("AutoAttack{Version: %q}.Name() = %q; want %q", c.a.Version, got, c.name)
		}
		if _, err := c.a.Components(); err != nil {
			t.Errorf("AutoAttack{Version: %q}.Components: %v", c.a.Version, err)
		}
	}
}
