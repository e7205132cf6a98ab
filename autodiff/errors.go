package autodiff

import "fmt"

// UnsupportedOpError reports an op on the differentiated path that has no
// gradient rule (or an attribute combination the rule does not handle).
type UnsupportedOpError struct {
	Op, Node string
	// Reason is empty when the op has no rule at all.
	Reason string
}

func (e *UnsupportedOpError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("autodiff: cannot differentiate %s node %q: %s", e.Op, e.Node, e.Reason)
	}
	return fmt.Sprintf("autodiff: no gradient rule for op %s (node %q)", e.Op, e.Node)
}

// NoPathError reports a tensor to differentiate with respect to that does
// not reach the loss through floating-point ops (e.g. only through a shape
// computation), so its gradient would be identically zero.
type NoPathError struct {
	Wrt, Loss string
}

func (e *NoPathError) Error() string {
	return fmt.Sprintf("autodiff: no differentiable path from %q to the loss on %q", e.Wrt, e.Loss)
}

// UnknownTensorError reports a name in Spec that the model does not have
// in the required role.
type UnknownTensorError struct {
	Name, Reason string
}

func (e *UnknownTensorError) Error() string {
	return fmt.Sprintf("autodiff: %q: %s", e.Name, e.Reason)
}

// OpsetError reports a model whose default-domain opset this package cannot
// emit gradients for, and cannot safely raise.
type OpsetError struct {
	Opset  int64
	Reason string
}

func (e *OpsetError) Error() string {
	return fmt.Sprintf("autodiff: opset %d: %s", e.Opset, e.Reason)
}

// buildError wraps an error raised by a panic during graph construction.
type buildError struct{ err error }

// fail aborts graph construction with an error; Gradient recovers it.
func fail(format string, args ...any) {
	panic(buildError{fmt.Errorf("autodiff: "+format, args...)})
}

// unsupported aborts graph construction with an *UnsupportedOpError.
func unsupported(op, node, format string, args ...any) {
	panic(&UnsupportedOpError{Op: op, Node: node, Reason: fmt.Sprintf(format, args...)})
}
