// Package runs holds srtool's measurement jobs as library calls: Eval
// (clean accuracy), Attack (robust accuracy in AutoAttack's or the
// adv-acc convention, with per-sample verdicts, adversarial inputs and a
// resume state), MIArrays (dependence between two arrays), and the merging
// of shard reports of these jobs into the report of the unsharded run.
//
// A job takes the loaded model (an attacks.Model or attacks.Gradienter),
// the data, and an options struct; it writes its JSON report and output
// files itself (atomically, .partial names for unfinished outputs), writes
// its human-readable summary to an io.Writer and reports progress through a
// callback. A job stopped by its context returns a *report.Interrupted that
// says what finished and how to continue; its report says complete: false.
// The command line (cmd/srtool) only reads flags into these options.
package runs
