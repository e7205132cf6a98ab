// Package analyzer finds a model's weight layers and splits it into a head
// f_a and a tail f_b.
//
// A weight layer is a Conv, ConvTranspose, Gemm or MatMul node whose weight
// (second input) is an initializer, possibly behind Identity nodes. Layers are
// numbered 1..L in topological (forward) order, the convention of the paper's
// code: a CIFAR ResNet-18 has 21 (17 convs, 3 shortcut convs, 1 linear).
//
// Splitting at layer a puts into the tail every node that depends, directly
// or not, on a weight layer numbered above a, and everything else into the
// head. The cut is the set of tensors the head produces and the tail reads;
// inside a residual block the skip tensor crosses too. Head outputs and tail
// inputs keep the original tensor names.
package analyzer
