//go:build !cgo

package ort

import (
	"context"
	"errors"
	"testing"

	"github.com/semirobust/srtool/ort/internal/onnxtest"
)

func TestUnavailableWithoutCgo(t *testing.T) {
	if err := Init(""); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Init = %v; want ErrUnavailable", err)
	}
	if v := Version(); v != "" {
		t.Errorf("Version() = %q; want \"\"", v)
	}
	s, err := NewSession(onnxtest.Linear([]float32{1}, []float32{0}).Marshal(), Options{})
	if !errors.Is(err, ErrUnavailable) || s != nil {
		t.Errorf("NewSession = %v, %v; want nil, ErrUnavailable", s, err)
	}
	if s, err := NewModelSession(onnxtest.Linear([]float32{1}, []float32{0}).Proto(), Options{}); !errors.Is(err, ErrUnavailable) || s != nil {
		t.Errorf("NewModelSession = %v, %v; want nil, ErrUnavailable", s, err)
	}
	var zero Session
	if _, err := zero.Run(context.Background(), nil, nil); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Run = %v; want ErrUnavailable", err)
	}
	if _, _, err := Forward(context.Background(), &zero, "X", "Y", []float32{1}, []int{1}, 1, nil); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Forward = %v; want ErrUnavailable", err)
	}
	if err := zero.Close(); err != nil {
		t.Errorf("Close = %v; want nil", err)
	}
	if err := (*Session)(nil).Close(); err != nil {
		t.Errorf("nil Close = %v; want nil", err)
	}
}
