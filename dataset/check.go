package dataset

import (
	"fmt"
	"strconv"
	"strings"
)

// CheckLabels refuses data whose labels fall outside a model's classes, and
// a source that names its classes (image folders, CIFAR, MNIST) with another
// number of classes than the model's. model names the model in the error.
func (d *Dataset) CheckLabels(classes int, model string) error {
	if len(d.ClassNames) > 0 && len(d.ClassNames) != classes {
		return fmt.Errorf("the data %s has %d classes but %s has %d outputs; use data of the model's classes (for folder: one sub-folder per class)", d.Name, len(d.ClassNames), model, classes)
	}
	for i, y := range d.Y {
		if y < 0 || int(y) >= classes {
			return fmt.Errorf("label %d of sample %d of %s is outside the %d classes of %s (labels must be 0..%d)", y, i, d.Name, classes, model, classes-1)
		}
	}
	return nil
}

// CheckShape says in one sentence when the data's sample shape (C×H×W) is
// not a model's per-sample input shape. model names the model in the error.
func (d *Dataset) CheckShape(model string, modelShape []int) error {
	want := []int{d.C, d.H, d.W}
	if fmt.Sprint(modelShape) == fmt.Sprint(want) {
		return nil
	}
	return fmt.Errorf("model %s takes inputs of shape %s (C×H×W) but the data %s has samples of shape %s", model, shapeString(modelShape), d.Name, shapeString(want))
}

func shapeString(s []int) string {
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = strconv.Itoa(v)
	}
	return strings.Join(parts, "×")
}
