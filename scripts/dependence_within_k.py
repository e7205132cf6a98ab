#!/usr/bin/env python3
# Usage: scripts/dependence_within_k.py DIR/report.json  (a semirobust report made with --dependence and --trials >= 2)
# Within-K agreement of each fine-tuned-tail measure with the trial outcome:
# for every K, every pair of trials (3 trials -> 3 pairs), does the trial with the
# higher measure also have the higher Acc~ - Acc*?  Pooled Kendall-style score
# (concordant - discordant) / pairs, over all K. K itself is held fixed, so a
# measure that only tracks K scores 0 here.
import collections, itertools, json, sys
r = json.load(open(sys.argv[1]))
score = collections.defaultdict(lambda: [0, 0, 0])  # conc, disc, ties
spread = collections.defaultdict(list)
for row in r['rows']:
    trials = row['dependence']
    for (a, b) in itertools.combinations(trials, 2):
        da, db = a['delta'], b['delta']
        va = {(v['measure'], v['tail'], v['data']): v['value'] for v in a['values']}
        vb = {(v['measure'], v['tail'], v['data']): v['value'] for v in b['values']}
        for key in va:
            if key[1] != 'finetuned':
                continue
            s = score[key]
            x = (va[key] - vb[key]) * (da - db)
            if x > 0: s[0] += 1
            elif x < 0: s[1] += 1
            else: s[2] += 1
    deltas = [t['delta'] for t in trials]
    spread['delta'].append(max(deltas) - min(deltas))
for key in sorted(score):
    c, d, t = score[key]
    n = c + d + t
    print(f"| {key[0]} | {key[2]} | {n} | {c} | {d} | {t} | {(c-d)/n:+.2f} |")
print("within-K spread of Acc~-Acc* (max-min over 3 trials) per K:", ' '.join(f"{x:.2f}" for x in spread['delta']))
