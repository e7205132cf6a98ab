// Package attacks provides adversarial attacks on image classifiers and the
// AutoAttack-style robustness evaluation built on them.
//
// # Units and conventions
//
// Inputs are float32, row-major (NCHW for images), one sample after another,
// with values in [0,1]; ε is in the same pixel units (8/255, not 8). Models
// that expect normalised input must include the normalisation, so that ε
// always means pixels. Norms are L∞ (max |δ_i|), L2 (√Σ δ_i²) and L1
// (Σ |δ_i|) over the whole sample. Attacks are untargeted: success means the
// model's argmax at the returned point differs from the true label, and the
// true labels are mandatory (no "predicted label" fallback).
//
// Every attack is a plain options struct whose zero value is its documented
// default and which marshals to JSON, so a report can record exactly what
// ran. Its Run method takes ctx first, checks it before every model call,
// never modifies its inputs, and returns the adversarial inputs, the
// per-sample success, the perturbation norms and the number of gradient and
// forward calls (Counts). A Seed fully determines the result for a
// deterministic model and a fixed batch. After every attack the invariants
// x_adv ∈ [0,1] and ‖x_adv − x‖ ≤ ε + 1e-6 (in the attack's norm) are checked
// and a violation is an error. The library never prints: Evaluate reports
// through a Progress callback and returns warnings as Flags.
//
// Attacks run against two small interfaces, Model (logits) and Gradienter
// (per-sample loss, its input gradient and the logits, for the LossKinds
// CrossEntropy, CWMargin, DLR, TargetedDLR and LogitDiff), satisfied by
// diffmodel.Classifier. The attacks only ask for CWMargin with Kappa = 1e30 and
// apply C&W's clamp themselves; FAB-T follows the LogitDiff head z_t − z_y,
// untargeted FAB takes ∇z_c − ∇z_y = ∇CE(y) − ∇CE(c) from the cross-entropy
// head.
//
// # What each attack follows
//
//   - FGSM: Goodfellow et al. 2015, torchattacks.FGSM.
//   - PGD (L∞, L2, L1; random start, restarts, last or best iterate): Madry et al. 2018;
//     defaults are torchattacks.PGD(eps=8/255, alpha=2/255, steps=10), i.e. α = ε/4 as in Madry et al.;
//     L1 steps as SLIDE (Tramèr & Boneh 2019).
//   - MIFGSM: Dong et al. 2018, torchattacks.MIFGSM.
//   - CW: Carlini & Wagner 2017 (L2, tanh space, Adam, binary search over c); the default is torchattacks.CW(c=1, kappa=0, steps=50, lr=0.01).
//   - APGD (CE, DLR) and APGDT: Croce & Hein 2020, fra31/auto-attack autopgd_base.py.
//   - FAB (FAB-T and untargeted): Croce & Hein 2020, fra31/auto-attack fab_base.py.
//   - Square (L∞, L2): Andriushchenko et al. 2020, fra31/auto-attack square.py.
//   - AutoAttack (standard, plus, rand, custom; optional torchattacks-port mode) and Evaluate:
//     fra31/auto-attack autoattack.py run_standard_evaluation, checks.py, state.py.
//
// # Deviations from the reference implementations
//
//   - Random numbers come from math/rand/v2 PCG streams drawn per sample: a
//     sample's stream is seeded by Seed, the attack type, the run (restart,
//     target) and the sample's own values and label, so its result does not
//     depend on which other samples share its batch. Results therefore agree
//     with the PyTorch code statistically, not bit for bit (the official code
//     reseeds torch with the same seed for every attack, so its APGD-CE and
//     first APGD-T run share a start; here they do not). Square draws its
//     windows per sample, where square.py draws one window per iteration for
//     the whole batch; each sample's windows are uniform either way.
//   - Untargeted FAB needs ∇(z_c − z_y) for every class c; it takes
//     ∇CE(y) − ∇CE(c) from one LossGrad call on N·K samples (the official
//     code back-propagates the K logits of N samples one by one). FAB-T
//     back-propagates z_t − z_y on N samples, as the official code. The
//     box-constrained hyperplane projections are exact (a selection over breakpoints),
//     like the official ones, but written independently.
//   - Target counts above classes − 1 are capped (official: a warning); windows
//     of Square are capped at min(H, W) (official: fails on some non-square inputs).
//   - Not implemented: L1 versions of APGD, FAB, Square and AutoAttack;
//     AutoAttack's dynamic-defence check (it traces Python calls). The
//     randomness check compares 2 forward passes (official: 5).
//   - The zero-gradient count covers the first gradient of every gradient
//     attack (official: APGD with DLR losses only).
//   - C&W uses the exact margin max(z_y − max_{j≠y} z_j, −κ); torchattacks takes
//     the maxima over one-hot-masked logits, which treats masked entries as 0.
//     Its tanh-space start is atanh((2x − 1)(1 − 1e-6)) where torchattacks'
//     atanh of ±1 freezes saturated pixels at ±∞.
//   - Evaluate resumes at work-unit granularity (official state.py: per
//     attack): with a Checkpoint, units are sized to take about a third of
//     CheckpointEvery (30 s), and the state is saved at least that often and
//     when Evaluate stops early. The resumed result equals the uninterrupted
//     one for deterministic models. A state records a fingerprint of its run
//     (data hash, classes, every attack's resolved settings, plus what the
//     caller adds: model hash, tool version) and a checksum; a resume with
//     another run's state, an edited state or an inconsistent one is refused.
package attacks
