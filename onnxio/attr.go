package onnxio

import "github.com/semirobust/srtool/onnxio/onnxpb"

// Attribute constructors and readers.

// AttrInt makes an INT attribute.
func AttrInt(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_INT, I: v}
}

// AttrInts makes an INTS attribute.
func AttrInts(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_INTS, Ints: append([]int64{}, v...)}
}

// AttrFloat makes a FLOAT attribute.
func AttrFloat(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_FLOAT, F: v}
}

// AttrString makes a STRING attribute.
func AttrString(name, v string) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_STRING, S: []byte(v)}
}

// AttrTensor makes a TENSOR attribute.
func AttrTensor(name string, t *onnxpb.TensorProto) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_TENSOR, T: t}
}

// FindAttr returns the named attribute of n, or nil.
func FindAttr(n *onnxpb.NodeProto, name string) *onnxpb.AttributeProto {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}

// GetInt returns an INT attribute or def.
func GetInt(n *onnxpb.NodeProto, name string, def int64) int64 {
	if a := FindAttr(n, name); a != nil {
		return a.GetI()
	}
	return def
}

// GetInts returns an INTS attribute or def (copied).
func GetInts(n *onnxpb.NodeProto, name string, def []int64) []int64 {
	if a := FindAttr(n, name); a != nil {
		return append([]int64(nil), a.GetInts()...)
	}
	return append([]int64(nil), def...)
}

// GetFloat returns a FLOAT attribute or def.
func GetFloat(n *onnxpb.NodeProto, name string, def float32) float32 {
	if a := FindAttr(n, name); a != nil {
		return a.GetF()
	}
	return def
}

// GetString returns a STRING attribute or def.
func GetString(n *onnxpb.NodeProto, name string, def string) string {
	if a := FindAttr(n, name); a != nil {
		return string(a.GetS())
	}
	return def
}
