// Package diffmodel turns ONNX graphs into trainable, differentiable models:
// it combines the gradient graphs of package autodiff with the ONNX Runtime
// sessions of package ort, and implements the interfaces that package
// attacks (Gradienter, Parallel) and package finetune (Stepper) declare.
//
// What it owns:
//   - Classifier (classifier.go): logits, and per-sample loss plus input
//     gradient for each loss head an attack asks for (cross-entropy, C&W
//     margin, DLR, targeted DLR, logit difference) and the KL head of
//     TRADES; one gradient graph and session per head, built on first use.
//     Overridable parameters (NewClassifierWithParams, SetParams) let a
//     training loop attack the current weights without new sessions.
//   - Workers (workers.go): single-threaded copies of a Classifier that
//     attacks run concurrently on parts of a batch; same results bit for bit.
//   - Trainer (trainer.go): one training step per call — mean cross-entropy
//     or the TRADES loss (trades.go, Zhang et al. 2019), gradients of the
//     trainable parameters and new BatchNorm running statistics.
//   - The CPU lowering (session.go, lower.go, internal/nchwc): convolutions
//     whose weights are fed at run time are moved to ONNX Runtime's NCHWc
//     kernels, which ONNX Runtime itself only uses for constant weights; the
//     blocked weights are computed from the fed ones on every step of a
//     Trainer (which updates its parameters in place) and once per SetParams
//     of a Classifier. ort.Options.StandardOpsOnly turns this off; CUDA
//     sessions always run the standard ops. NCHWcBlockSize reports the
//     kernels' channel block size on this CPU.
//
// Units and conventions: images are float32 NCHW, row-major, with the batch
// first; labels are int64 class indices; losses are in nats (natural log);
// gradients are with respect to the model's input in its own units (pixels
// in [0,1] for srtool's models, whose normalisation is part of the graph).
// Every graph is written in standard ONNX ops, so results on the CPU and on
// CUDA agree up to float rounding.
//
// Ownership: models passed in (*onnxio.Model) are read, never changed; a
// Classifier or Trainer keeps a reference. Inputs are read, never kept,
// except parameter slices given to SetParams, which the Classifier keeps
// until the next SetParams (do not modify them while it may run). Results
// are Go slices the caller owns. Classifier and Trainer own their ONNX
// Runtime sessions and must be closed; Close is safe twice. A Classifier is
// safe for concurrent use; call a Trainer's Step from one goroutine at a time.
//
// Like every package but ort, diffmodel has no cgo of its own: built with
// CGO_ENABLED=0 its constructors return ort.ErrUnavailable. It never prints.
package diffmodel
