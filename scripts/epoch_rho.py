#!/usr/bin/env python3
# Usage: scripts/epoch_rho.py DIR/report.json  (a semirobust report made with --rho-every-epoch)
# Does ρ_n (the tail's last pair, after every epoch: the trial rhos) move with the
# epoch's accuracy?  Held within one trial (same K, same start, same data), every
# pair of epochs: does the epoch with the higher ρ_n also have the higher accuracy?
# Pooled (concordant - discordant) / pairs per K and over all K, and the
# converged-vs-not comparison of ρ_n at each trial's best epoch within a K.
import itertools, json, sys
r = json.load(open(sys.argv[1]))
tot = [0, 0, 0]
print("| K | trials converged | epoch pairs | concordant | discordant | tied | (c − d) / pairs | ρ_n first → last epoch (mean over trials) | ρ_n at best epoch: converged / not |")
print("|---|---|---|---|---|---|---|---|---|")
for row in r['rows']:
    last = row['rhos'][-1]
    key = f"rho_{last['parent']}:{last['child']}"
    c = d = t = 0
    first, final, conv, notconv = [], [], [], []
    for tr in row['finetune']:
        eps = [(e['eval_acc'], e['extra'][key]) for e in tr['epochs']]
        for (a1, r1), (a2, r2) in itertools.combinations(eps, 2):
            x = (a1 - a2) * (r1 - r2)
            if x > 0: c += 1
            elif x < 0: d += 1
            else: t += 1
        first.append(eps[0][1]); final.append(eps[-1][1])
        best = tr['epochs'][tr['best_epoch'] - 1]['extra'][key]
        (conv if tr['converged'] else notconv).append(best)
    n = c + d + t
    tot = [tot[0] + c, tot[1] + d, tot[2] + t]
    mean = lambda v: sum(v) / len(v)
    cv = f"{mean(conv):.3f}" if conv else "–"
    nv = f"{mean(notconv):.3f}" if notconv else "–"
    score = f"{(c - d) / n:+.2f}" if n else "–"
    print(f"| {row['fb_layers']} | {row['trials_converged']}/{row['trials']} | {n} | {c} | {d} | {t} | {score} | {mean(first):.3f} → {mean(final):.3f} | {cv} / {nv} |")
c, d, t = tot
n = c + d + t
print(f"| all | | {n} | {c} | {d} | {t} | {(c - d) / n:+.2f} | | |")
