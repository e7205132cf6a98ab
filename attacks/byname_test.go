package attacks

import (
	"testing"
)

func TestByName(t *testing.T) {
	for _, n := range Names() {
		a, err := ByName(n, 0, "")
		if err != nil {
			t.Errorf("ByName(%q): %v", n, err)
			continue
		}
		if a.Name() != n {
			t.Errorf("ByName(%q).Name() = %q", n, a.Name())
		}
	}
	a, err := ByName("pgd", 0.5, "l2")
	if err != nil {
		t.Fatal(err)
	}
	if eps, p := a.(Bounded).Threat(); eps != 0.5 || p != L2 {
		t.Errorf("ByName(pgd, 0.5, l2) threat = %g %v; want 0.5 L2", eps, p)
	}
	if eps, p := (&PGD{}).Threat(); eps != 8.0/255 || p != LInf {
		t.Errorf("zero PGD threat = %g %v; want 8/255 Linf", eps, p)
	}
	for _, bad := range []struct {
		name, norm string
		eps        float32
	}{{"deepfool", "", 0}, {"pgd", "l3", 0}, {"pgd", "", 2}, {"pgd", "", -1}, {"apgd-ce", "l1", 0}, {"cw", "linf", 0}, {"mifgsm", "l2", 0}, {"autoattack", "l1", 0}} {
		if _, err := ByName(bad.name, bad.eps, bad.norm); err == nil {
			t.Errorf("ByName(%q, %g, %q): no error", bad.name, bad.eps, bad.norm)
		}
	}
}
