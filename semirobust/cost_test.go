package semirobust

import (
	"slices"
	"testing"
)

// TestParseKList: K lists are integers and ranges, each K once.
func TestParseKList(t *testing.T) {
	for in, want := range map[string][]int{
		"4":        {4},
		"1-3":      {1, 2, 3},
		"2,4,6-8":  {2, 4, 6, 7, 8},
		" 3 , 1-2": {3, 1, 2},
		"5-5":      {5},
	} {
		got, err := ParseKList(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseKList(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "3-1", "1-3,2", "a", "1-", "-2", "1,,2"} {
		if got, err := ParseKList(in); err == nil {
			t.Errorf("ParseKList(%q) = %v; want an error", in, got)
		}
	}
}
