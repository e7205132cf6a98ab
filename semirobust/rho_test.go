package semirobust

import (
	"strings"
	"testing"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/onnxio"
)

// TestPairRelation: a pair is parent → child only when the child reads the
// parent; a ResNet block's last conv and its shortcut conv are consecutive
// but not connected. The models srtool writes keep BatchNorm (PRESERVE).
func TestPairRelation(t *testing.T) {
	m, err := onnxio.Read(demoRobust)
	if err != nil {
		t.Fatal(err)
	}
	an, err := analyzer.Analyze(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		parent, child int
		connected     bool
		want          string
	}{
		{1, 2, true, "parent → child"},
		{4, 5, true, "parent → child"},
		{5, 6, false, "consecutive but not connected"},
		{6, 7, true, "parent → child"},
		{11, 12, false, "consecutive but not connected"},
		{12, 13, true, "parent → child"},
		{3, 13, false, "not connected"},
	} {
		ok, rel := PairRelation(an, c.parent, c.child)
		if ok != c.connected || !strings.Contains(rel, c.want) {
			t.Errorf("pair %d:%d: connected %v, %q; want %v, %q", c.parent, c.child, ok, rel, c.connected, c.want)
		}
	}
	if b := BNExportOf(an); b != BNPreserve || b.Warning() != "" {
		t.Errorf("export %q; want preserve without a warning", b)
	}
}
