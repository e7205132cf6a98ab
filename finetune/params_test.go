package finetune

import "testing"

func TestMerge(t *testing.T) {
	a := Params{"w": {1, 2}, "b": {3}}
	b := Params{"b": {4}, "s": {5}}
	m := Merge(a, b, nil)
	if len(m) != 3 || m["w"][1] != 2 || m["b"][0] != 4 || m["s"][0] != 5 {
		t.Fatalf("Merge = %v; want w from a, b and s from b", m)
	}
	if &m["w"][0] != &a["w"][0] {
		t.Error("Merge copied a slice; want it shared")
	}
}
