package autodiff_test

import (
	"os"
	"testing"

	"github.com/semirobust/srtool/autodiff"
	"github.com/semirobust/srtool/onnxio"
	ortgo "github.com/yalue/onnxruntime_go"
)

// Temporary profiling harness (deleted before hand-off).
func TestProfTmp(t *testing.T) {
	path := os.Getenv("PROF_MODEL")
	if path == "" {
		t.Skip()
	}
	needORT(t)
	if v := os.Getenv("PROF_DW"); v != "" {
		d := map[string]int{"0": 0, "1": 1, "2": 2}[v]
		defer autodiff.SetDWStrategy(d)()
	}
	m := readModel(t, path)
	var spec autodiff.Spec
	switch os.Getenv("PROF_KIND") {
	case "fwd":
	case "train":
		var ps []string
		for _, t := range m.Graph().GetInitializer() {
			if t.GetDataType() == onnxio.Float && !isRunningStat(t.GetName()) {
				ps = append(ps, t.GetName())
			}
		}
		spec = autodiff.Spec{WrtParams: ps, TrainBN: autodiff.BatchNorms(m)}
	default:
		spec = autodiff.Spec{WrtInput: true}
	}
	var mm *onnxio.Model
	var r *autodiff.Result
	if os.Getenv("PROF_KIND") == "fwd" {
		mm = m
	} else {
		var err error
		r, err = autodiff.Gradient(m, spec)
		if err != nil {
			t.Fatal(err)
		}
		mm = r.Model
		if p := os.Getenv("PROF_SAVE"); p != "" {
			onnxio.Write(p, mm)
		}
	}
	b, _ := mm.Encode()
	so, _ := ortgo.NewSessionOptions()
	so.SetIntraOpNumThreads(2)
	so.EnableProfiling(os.Getenv("PROF_OUT"))
	var inNames, outNames []string
	for _, in := range mm.Graph().GetInput() {
		inNames = append(inNames, in.GetName())
	}
	for _, o := range mm.Graph().GetOutput() {
		outNames = append(outNames, o.GetName())
	}
	s, err := ortgo.NewDynamicAdvancedSessionWithONNXData(b, inNames, outNames, so)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	var ins []ortgo.Value
	for _, in := range mm.Graph().GetInput() {
		elem, sh := onnxio.ValueInfoShape(in)
		dims := sh.Ints()
		if len(dims) > 0 && dims[0] < 0 {
			dims[0] = 64
		}
		n := int64(1)
		for _, d := range dims {
			n *= d
		}
		if elem == onnxio.Int64 {
			v, _ := ortgo.NewTensor(ortgo.NewShape(dims...), make([]int64, n))
			ins = append(ins, v)
		} else {
			data := make([]float32, n)
			if r != nil {
				if tp, ok := r.Feeds[in.GetName()]; ok {
					data, _ = onnxio.Float32s(tp)
				}
			}
			for i := range data {
				if data[i] == 0 {
					data[i] = 0.5
				}
			}
			v, _ := ortgo.NewTensor(ortgo.NewShape(dims...), data)
			ins = append(ins, v)
		}
	}
	outs := make([]ortgo.Value, len(outNames))
	for i := 0; i < 3; i++ {
		for j := range outs {
			outs[j] = nil
		}
		if err := s.Run(ins, outs); err != nil {
			t.Fatal(err)
		}
	}
}
