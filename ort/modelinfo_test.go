package ort

import (
	"reflect"
	"testing"

	"github.com/semirobust/srtool/ort/internal/onnxtest"
)

func TestParseModelInfo(t *testing.T) {
	m := onnxtest.Linear([]float32{1, 2, 3, 4, 5, 6}, []float32{0, 0})
	// An initializer that is also listed as a graph input is not fed.
	m.Inputs = append(m.Inputs,
		onnxtest.Value{Name: "W", ElemType: onnxtest.Float, Dims: []int64{3, 2}},
		onnxtest.Value{Name: "L", ElemType: onnxtest.Int64, NoShape: true})
	m.Outputs = append(m.Outputs, onnxtest.Value{Name: "S", ElemType: onnxtest.Float, Dims: []int64{}})
	info, err := parseModelInfo(m.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	wantIn := []ValueInfo{
		{Name: "X", ElemType: 1, Shape: []int64{-1, 3}, HasShape: true},
		{Name: "L", ElemType: 7},
	}
	wantOut := []ValueInfo{
		{Name: "Y", ElemType: 1, Shape: []int64{-1, 2}, HasShape: true},
		{Name: "S", ElemType: 1, Shape: []int64{}, HasShape: true},
	}
	if !reflect.DeepEqual(info.inputs, wantIn) {
		t.Errorf("inputs = %+v; want %+v", info.inputs, wantIn)
	}
	if !reflect.DeepEqual(info.outputs, wantOut) {
		t.Errorf("outputs = %+v; want %+v", info.outputs, wantOut)
	}
	// NewModelSession reads the same from the graph itself.
	if g := graphInfo(m.Proto()); !reflect.DeepEqual(g, info) {
		t.Errorf("graphInfo = %+v; parseModelInfo gives %+v", g, info)
	}
}

func TestParseModelInfoBad(t *testing.T) {
	good := onnxtest.Linear([]float32{1}, []float32{0}).Marshal()
	for name, b := range map[string][]byte{
		"empty":     nil,
		"garbage":   []byte("this is not an onnx model"),
		"truncated": good[:len(good)/2],
		"no graph":  {0x08, 0x08}, // ir_version = 8 only
	} {
		if info, err := parseModelInfo(b); err == nil {
			t.Errorf("parseModelInfo(%s) = %+v, nil; want an error", name, info)
		}
	}
}
