// Package finetune trains the tail of a split network with its head frozen —
// the "semirobust" fine-tuning of Algorithm 1 (docs/method.md §3) — and, with the same
// loop, plain or adversarial training of whole networks.
//
// The package is pure Go and knows nothing about ONNX: it drives training
// through small interfaces. A Stepper runs one forward and backward pass
// (loss, gradients of the trainable tensors, updated BatchNorm running
// statistics); an Evaluator reports accuracy in percent after each epoch,
// clean or under the evaluation attack; an optional AdvGenerator makes
// adversarial training inputs. Parameters travel as Params, float32 tensors
// keyed by their PyTorch names. Images are float32 NCHW with pixels in [0,1]
// (dataset.Dataset).
//
// # The loop
//
// Options.Run runs Trials trials. Each restarts from the Job's initial
// parameters with a fresh optimizer state and schedule, and runs up to
// Epochs epochs over the training set, shuffled and augmented by
// dataset.Batches with seed Options.Seed + trial and the epoch number. Per
// batch it checks the context, asks the AdvGenerator (if any) for inputs,
// calls the Stepper, rejects a non-finite loss or gradient (ErrDiverged,
// with a *DivergedError naming trial, epoch and batch), applies the
// optimizer with the rates the schedule sets, stores the new state, and
// restores every Frozen tensor to its initial value — the authors' code
// reloads the frozen head after every optimizer step, so weight decay and
// BatchNorm updates cannot move it. After each epoch it evaluates, calls
// Job.EpochMetrics (the "trial ρ" hook), keeps the best accuracy and its
// parameters, writes a checkpoint and stops the trial as soon as the best
// accuracy is ≥ Target − Tolerance (Algorithm 1's rule, both in percent),
// recording the number of epochs that took (−1 if never). Nothing carries
// over from one trial to the next, so Options.FirstTrial can run any trial
// on its own (a work unit of a sharded experiment) with exactly the records
// and parameters it has in the whole run.
//
// Options.HeadBN records whether the frozen head's BatchNorm layers ran in
// eval mode (default; running statistics) or train mode (batch statistics,
// as the authors' model.train() does); the Stepper implements it.
//
// Trials, epochs and batches count from 1 in every record, error and
// progress report; EpochsToConverge is a count. The library never prints: it
// reports through Job.Progress and returns a Result that marshals to JSON
// with the Options it ran. A run that stops early returns the Result so far
// with Complete false and the unfinished trial's best epoch in Partial.
//
// # Optimizers and schedules
//
// SGD and AdamW reproduce torch.optim.SGD and torch.optim.AdamW of PyTorch
// 1.13 on CPU bit for bit, including where its AVX2 kernels use fused
// multiply-adds (checked against testdata/optim.json). MultiStep, Cosine
// and OneCycle reproduce the lr_scheduler classes, using PyTorch's
// recursive updates in float64; Go's math.Cos may differ from glibc's in
// the last bit of a float64, and the float32 rates the optimizers use agree
// on every step of testdata/schedules.json. Options.ScheduleEvery says
// whether the schedule steps after each epoch or each batch.
//
// # Checkpoints
//
// With Options.CheckpointDir set, the loop writes after every epoch the
// whole resumable state to CheckpointDir/checkpoint.safetensors, atomically
// (internal/atomicfile: a temporary file in the same folder, fsync, rename),
// so a cancelled or killed run always leaves the last complete epoch. The
// file is in the safetensors layout — an 8-byte little-endian header length,
// a JSON header padded with spaces to 8 bytes, then the raw little-endian
// data with contiguous data_offsets — so safetensors tools can open it; the
// codec is package checkpoint's (EncodeSafetensorsHeader,
// ReadSafetensorsHeader), with the data streamed. Every tensor is 1-D F32,
// named
//
//	trainable/NAME, state/NAME        current parameters
//	optim/KIND/NAME                   optimizer buffers (momentum_buffer; exp_avg, exp_avg_sq)
//	best/trainable/NAME, best/state/NAME
//	                                  the current trial's best epoch (while it runs)
//	overall/trainable/NAME, overall/state/NAME
//	                                  Result.Best, the best finished trial's best epoch
//
// and the header's __metadata__ holds "format": "srtool.finetune/2" and
// "srtool.finetune": a JSON resume record with the Options, the Job's
// Identity (what the run belongs to: model files, evaluation data and
// attack, program version — whatever the caller names) and Measured values,
// CRC-64 fingerprints of the initial parameters and of the training set,
// the per-trial and per-epoch records so far, the optimizer step count, and
// the number of schedule steps taken (the schedule is replayed on resume;
// random choices need no saved state because they derive from seed, trial,
// epoch and batch). Options.Resume continues such a run — with the same
// Options, Identity, initial parameters and training data, which it checks,
// naming the first difference — and ends with exactly the parameters and
// records of an uninterrupted run. OpenCheckpoint reads a checkpoint and
// checks that it is consistent in itself (a file edited by hand or damaged
// is an error, never a panic: every size in the header is checked against
// the file before anything is allocated); Checkpoint.Check says whether it
// belongs to a run before any work starts. ReadCheckpoint returns the
// tensors for inspection or export.
package finetune
