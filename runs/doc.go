// Package runs holds srtool's jobs as library calls, one per command of the
// command line: Eval (clean accuracy), AttackAA and AttackAdvAcc (robust
// accuracy in AutoAttack's or torchattacks' convention, with per-sample
// verdicts, adversarial inputs and a resume state), MIModel and MIArrays
// (dependence between layers, the paper's ρ, or between two arrays), Grad,
// Layers, Split, Init, WeightsImport/WeightsExport, ZooList/ZooImport, and
// the merging of shard reports (MergeEval, MergeAttack, MergeMI) into the
// report of the unsharded run.
//
// A job takes the loaded model (an attacks.Model, or an *onnxio.Model where
// it builds its own graphs), the data and an options struct whose fields
// the command line fills from its flags. It writes its JSON report and
// output files itself (atomically; .partial names for unfinished outputs),
// its human-readable summary to an io.Writer, and reports progress through
// a callback. A job stopped by its context returns a *report.Interrupted
// that says what finished and how to continue; its report then says
// complete: false. cmd/srtool only reads flags into these options and maps
// errors to exit codes.
package runs
