package ort

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// modelInfo is what NewSession needs from a serialized ModelProto: the
// graph's inputs that must be fed (graph inputs that are not initializers,
// which is how ONNX Runtime counts them) and its outputs, in graph order.
type modelInfo struct {
	inputs  []ValueInfo
	outputs []ValueInfo
}

// parseModelInfo walks the ModelProto wire format (field numbers from
// onnx/onnx.proto) without decoding weights: it skips initializer payloads.
func parseModelInfo(model []byte) (*modelInfo, error) {
	var graph []byte
	err := walk(model, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num == 7 && typ == protowire.BytesType { // ModelProto.graph
			graph = v
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("model is not a valid ONNX ModelProto: %w", err)
	}
	if graph == nil {
		return nil, fmt.Errorf("model is not a valid ONNX ModelProto: no graph")
	}
	var ins, outs []ValueInfo
	inits := map[string]bool{}
	err = walk(graph, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 5: // GraphProto.initializer (TensorProto, name = 8)
			name, err := stringField(v, 8)
			if err != nil {
				return err
			}
			inits[name] = true
		case 15: // GraphProto.sparse_initializer (values = 1 → TensorProto)
			var name string
			err := walk(v, func(n protowire.Number, t protowire.Type, b []byte, _ uint64) error {
				if n == 1 && t == protowire.BytesType {
					var err error
					name, err = stringField(b, 8)
					return err
				}
				return nil
			})
			if err != nil {
				return err
			}
			inits[name] = true
		case 11, 12: // GraphProto.input, GraphProto.output (ValueInfoProto)
			vi, err := parseValueInfo(v)
			if err != nil {
				return err
			}
			if num == 11 {
				ins = append(ins, vi)
			} else {
				outs = append(outs, vi)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("model is not a valid ONNX ModelProto: graph: %w", err)
	}
	info := &modelInfo{outputs: outs}
	for _, in := range ins {
		if !inits[in.Name] {
			info.inputs = append(info.inputs, in)
		}
	}
	return info, nil
}

// parseValueInfo decodes ValueInfoProto{name = 1, type = 2 (TypeProto)}, with
// TypeProto.tensor_type = 1 {elem_type = 1, shape = 2 {dim = 1
// {dim_value = 1, dim_param = 2}}}.
func parseValueInfo(b []byte) (ValueInfo, error) {
	var vi ValueInfo
	err := walk(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			vi.Name = string(v)
		case num == 2 && typ == protowire.BytesType:
			return walk(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
				if num != 1 || typ != protowire.BytesType {
					return nil
				}
				return walk(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
					switch {
					case num == 1 && typ == protowire.VarintType:
						vi.ElemType = int32(x)
					case num == 2 && typ == protowire.BytesType:
						vi.HasShape = true
						vi.Shape = []int64{}
						return walk(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
							if num != 1 || typ != protowire.BytesType {
								return nil
							}
							d := int64(-1)
							err := walk(v, func(num protowire.Number, typ protowire.Type, _ []byte, x uint64) error {
								if num == 1 && typ == protowire.VarintType && int64(x) >= 0 {
									d = int64(x)
								}
								return nil
							})
							vi.Shape = append(vi.Shape, d)
							return err
						})
					}
					return nil
				})
			})
		}
		return nil
	})
	return vi, err
}

// stringField returns the last value of string field num in message b.
func stringField(b []byte, num protowire.Number) (string, error) {
	var s string
	err := walk(b, func(n protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if n == num && typ == protowire.BytesType {
			s = string(v)
		}
		return nil
	})
	return s, err
}

// walk calls f for every field of message b: v is the payload of a
// length-delimited field, x the value of a varint or fixed field.
func walk(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var y uint32
			y, n = protowire.ConsumeFixed32(b)
			x = uint64(y)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := f(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}
