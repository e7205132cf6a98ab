// Package semirobust holds the paper's pipeline: Algorithm 1's setup (a
// robust model f* whose tail of K weight layers is replaced by a normal
// model f's, the head frozen), fine-tuning that tail until it reaches f*'s
// robust accuracy Acc*, the layer dependence ρ per layer pair (and per
// epoch), the dependence measures compared against the outcome, Algorithm
// S1 (a linear predictor from the head's outputs), the cost of fine-tuning,
// the weight-difference bound, and the experiment runner over attacks × K ×
// trials with its Report, shard merge and rendering (Markdown, JSON, PNG).
//
// Accuracies are percentages; ρ is in the estimator's units (bits unless
// nats). Weight layers are numbered from 1 in graph order (analyzer.Layers).
//
// The package never prints on its own: long work takes a context.Context
// and reports progress through a Progress callback; the few functions that
// write human-readable lines take the io.Writer to write them to. An error
// in the caller's settings wraps ErrOption, which cmd/srtool reports as a
// usage error.
package semirobust
