package attacks

import (
	"slices"
	"testing"
)

func TestAPGDCheckpoints(t *testing.T) {
	var got []int
	for _, c := range apgdCheckpoints(100) {
		got = append(got, c.it+1)
	}
	want := []int{22, 41, 57, 70, 80, 87, 93, 99} // docs/attacks.md §5.3
	if !slices.Equal(got, want) {
		t.Errorf("APGD checkpoints for N=100 = %v; want %v", got, want)
	}
}
