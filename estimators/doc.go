// Package estimators provides dependence estimators between paired samples
// of two random vectors: the authors' EDGE (bit-exact with their Python in
// RNG "reference" mode), KSG (Kraskov estimator 1), a Gaussian log-det
// estimator with analytic null-bias correction, linear and RBF CKA, RBF
// HSIC, the authors' normalised HSIC (NOCCO) and correlation connectivity,
// plus per-class weighting, permutation nulls and bootstrap intervals.
//
// Conventions:
//   - Data are gonum matrices with one sample per row; x and y must have
//     the same number of rows. Inputs are never modified.
//   - Information estimates (EDGE, KSG, Gaussian) are in bits unless the
//     options' Units is Nats. CKA, HSIC, NOCCO and Corr are unitless.
//   - Every estimator is an options struct whose zero value is its
//     documented default; the structs marshal to JSON so a report can
//     record exactly what ran. New builds one by name from JSON options,
//     refusing unknown fields and out-of-range values (Validate: negative,
//     non-finite, or counts above MaxEDGEL, MaxKSGK, MaxReps).
//   - Randomness is explicit: the same Seed gives the same result.
//   - Bad input returns an error (never a panic) wrapping one of
//     ErrShape, ErrNonFinite, ErrTooFewSamples, ErrConstant or ErrOption.
//   - Library code never prints; long calls take a context and an optional
//     progress callback.
package estimators
