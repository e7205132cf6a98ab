// Package autodiff writes gradient graphs: given an ONNX classifier, a loss
// head and the tensors to differentiate with respect to, Gradient returns a
// new ONNX model that computes the loss, the per-sample losses, the logits
// and the requested gradients in one ONNX Runtime session run. The backward
// pass is reverse-mode autodiff over the ONNX graph written with standard
// ONNX ops only (no com.microsoft training ops), so plain ONNX Runtime runs
// it on the CPU or CUDA.
//
// Conventions. Images are float32 NCHW; the batch dimension stays dynamic
// (the gradient model accepts any batch size). Labels are int64 class
// indices in [0, classes). Losses are in nats. The Mean reduction divides by
// the batch size, like PyTorch; gradients are always those of the reduced
// loss (for Reduction None, of the sum of the per-sample losses, which for
// the input gradient is each sample's own gradient).
//
// The graph variants a caller builds with Spec: the loss and input gradient
// (attacks: WrtInput, no weight gradient is ever computed and everything not
// needed is pruned); the train step (WrtParams: trainable initializers become
// graph inputs that are fed each step, frozen ones stay initializers;
// TrainBN: BatchNormalization nodes that use batch statistics and output
// their updated running statistics, PyTorch's rule with the unbiased
// variance); or only the loss (neither). Initializers the TorchScript
// exporter deduplicated into Identity nodes are split back into
// independent tensors when parameters are trained.
//
// Gradients are a table of VJP rules keyed by op type (vjp_*.go). Graph
// construction panics internally and Gradient recovers the panic into an
// error (as GoMLX does); an op on the differentiated path without a rule is
// an *UnsupportedOpError naming op and node. Integer and boolean tensors
// (the Shape→Gather→Concat→Reshape chains of TorchScript's view) carry no
// gradient. The model's default-domain opset must be ≥ 13; below 17 it is
// raised to 17 after checking that every op present means the same there.
//
// Formulations (ops as emitted; "pass" = one sweep over an activation):
//
//   - Conv dX, unit stride, constant weight: a Conv of dY with the flipped,
//     channel-transposed kernel and pads eff−1−p. ONNX Runtime folds the
//     flip at load and runs the Conv on its NCHWc path. With ConvTranspose
//     instead, ONNX Runtime's profile of the ResNet-18 CIFAR input-gradient
//     graph (batch 64, 2 threads) showed 3.96 s in ConvTranspose against
//     2.0 s for the forward convolutions doing the same arithmetic.
//   - Conv dX otherwise (strided, or a trained weight that is a graph input,
//     where a per-step flip costs more than it saves): ConvTranspose(dY, W)
//     with the forward strides, dilations and group; the Conv weight layout
//     is already ConvTranspose's. Pads are explicit and symmetric
//     (min(pb, pe), since ONNX Runtime's CUDA provider runs asymmetric
//     ConvTranspose pads on the CPU), the far edge is reached with
//     output_padding or extra end padding, and a Slice trims the rest. Never
//     auto_pad or output_shape. Pointwise unit-stride convolutions use a
//     MatMul with Wᵀ.
//   - Conv dW: im2col by a Conv of X reshaped to [N·C, 1, H, W] with a
//     one-hot kernel bank [K, 1, kh, kw] (a Strided Slice for pointwise
//     convolutions), giving cols [N, C·K, L], then per layer the cheaper of
//     (a) batched MatMul with dYᵀ and ReduceSum over N, which writes an
//     [N, C·K, M] product, or (b) Transposes of dY and cols and one
//     [M, N·L]·[N·L, C·K] Gemm, by comparing C·K·M with C·K·L + M·L
//     elements per sample. For ResNet-18 this picks (a) in the 32×32 and
//     16×16 stages and (b) in the 8×8 and 4×4 stages, where (a) would write
//     600 MB for the last stage; measured on the train step: (a) everywhere
//     ≈ 0.69 s, (b) everywhere ≈ 0.56 s, per-layer choice ≈ 0.40 s of dW time.
//     Groups > 1 (depthwise included) use (a) per group. dB = ReduceSum.
//   - BatchNormalization, inference form: dX = dY·γ/√(σ²+ε) per channel,
//     dγ = inv·Σ dY·(X−μ), dβ = Σ dY. Training form (batch statistics,
//     written with ReduceMean/ReduceSumSquare because ONNX Runtime's CUDA
//     provider rejects training_mode=1): Y = (X−μ)·(γ·inv) + β without
//     materialising x̂, and dX = a·dY − (X−μ)·(a·inv·dγ/n) − a·dβ/n with
//     a = γ·inv, n = N·H·W (runtime).
//   - MaxPool: the forward node gets its Indices output and
//     dX = ScatterElements(zeros, Indices, dY, reduction="add") on the
//     flattened tensor: windows overlap (3×3 stride 2), so plain scatter or
//     MaxUnpool would lose gradient.
//   - AveragePool: kernel = stride without padding (avg_pool2d(out, 4)) is a
//     Reshape, a broadcast Mul by 1/k and a Reshape; otherwise
//     ConvTranspose(dY/count, ones, group=C) with the per-window divisor
//     computed here from count_include_pad, pads and ceil_mode.
//     GlobalAveragePool and ReduceMean/ReduceSum: Expand.
//   - Relu: Where(Y > 0, dY, 0) (zero at 0 like PyTorch); LeakyRelu,
//     Sigmoid, Tanh, Clip (bounds not differentiated), Softmax and
//     LogSoftmax by their closed forms; Add/Sub/Mul/Div with numpy
//     broadcasting reduce each operand's gradient over its broadcast axes.
//   - Gemm: Gemm nodes with flipped transA/transB (ONNX Runtime's own
//     builder); MatMul: Gemm for 2-D, batched MatMul with a swapped operand
//     and ReduceSum over broadcast batch axes otherwise.
//   - Flatten, Reshape, Squeeze, Unsqueeze: Reshape back; Transpose: the
//     inverse permutation; Concat: Slices; Pad (constant mode): a Slice;
//     Identity and inference Dropout: pass-through.
//   - Loss heads are differentiated in closed form, not through their ops:
//     cross-entropy softmax(z) − onehot(y); C&W onehot(argmax_{j≠y}) −
//     onehot(y) (masked where the κ clamp is active); DLR and targeted DLR
//     through TopK's values and indices as one-hot combinations; KL
//     softmax(z)·Σp − p.
//
// Not covered: training-mode Dropout, Pad modes other than constant,
// gradients with respect to Clip bounds, MaxPool with storage_order=1,
// 1-D MatMul operands, and ops without a rule (e.g. Erf, Pow, Resize).
// Nothing in this package prints.
package autodiff
