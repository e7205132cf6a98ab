package semirobust

import (
	"reflect"
	"testing"
)

func TestSelectPairs(t *testing.T) {
	got, err := SelectPairs("", 2, 5)
	want, _ := TailPairs(5, 2)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("SelectPairs(\"\", 2, 5) = %v, %v; want TailPairs' %v", got, err, want)
	}
	got, err = SelectPairs("all", 2, 5)
	want, _ = ParsePairs("all", 5)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("SelectPairs(all, 2, 5) = %v, %v; want ParsePairs' %v", got, err, want)
	}
}
