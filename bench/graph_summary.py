#!/usr/bin/env python3
"""graph_summary.py: queries/s at a recall@10 target, from the rows of one
bench/run_graph.sh data set (bench_index sweep rows: vqs beside FAISS; and
bench/peers/peers.mjs rows: usearch, hnswlib) on stdin.

For each index and target (0.95, 0.99, 0.995): the most queries/s on 1 and
on THREADS threads among that index's settings whose recall@10 (from the
timed search) reaches the target, with the setting; "-" if none does. Each
figure is one measured row, not an interpolation."""
import re
import sys

TARGETS = (0.95, 0.99, 0.995)


def num(s):
    s = s.replace(',', '').replace('*', '').replace('×', '').strip()
    try:
        return float(s)
    except ValueError:
        return None


rows = {}  # index -> list of (recall, qps1, qpsT, setting)
mem = {}   # index -> "B/vec"
for line in sys.stdin:
    m = re.match(r'# (vqs|FAISS) (\S+): ([0-9.]+) B/vec', line)
    if m:
        mem[f'{m.group(1)} {m.group(2)}'] = m.group(3)
        continue
    if not line.startswith('|') or line.startswith('|---'):
        continue
    c = [x.strip() for x in line.strip().strip('|').split('|')]
    if len(c) == 15 and num(c[2]) is not None:  # bench_index
        ef, os_ = c[2], c[3]
        vname = f'vqs {c[0]}'
        rows.setdefault(vname, []).append((num(c[7]), num(c[9]), num(c[12]), f'ef {ef}, os {os_}'))
        if c[1] != '(none)':
            fname = f'FAISS {c[1]}'
            rows.setdefault(fname, []).append((num(c[8]), num(c[10]), num(c[13]), f'efSearch {ef}'))
    elif len(c) == 7 and num(c[3]) is not None:  # peers.mjs
        lib, idx = c[0], c[1]
        m = re.match(r'(.*), ef (\d+)$', idx)
        name = f'{lib} {m.group(1) if m else idx}'
        rows.setdefault(name, []).append((num(c[3]), num(c[4]), num(c[5]), f'ef {m.group(2) if m else "?"}'))
        mem[name] = c[6]

print('| index | B/vec | ' + ' | '.join(f'q/s 1t at R@10 ≥ {t}' for t in TARGETS) + ' | ' +
      ' | '.join(f'q/s Tt at R@10 ≥ {t}' for t in TARGETS) + ' |')
print('|---|---|' + '---|' * (2 * len(TARGETS)))
for name, rs in rows.items():
    cells = []
    for col in (1, 2):
        for t in TARGETS:
            ok = [r for r in rs if r[0] is not None and r[0] >= t and r[col] is not None]
            if not ok:
                cells.append('-')
                continue
            b = max(ok, key=lambda r: r[col])
            cells.append(f'{b[col]:,.0f} ({b[3]}, R {b[0]:.4f})')
    print(f'| {name} | {mem.get(name, "")} | ' + ' | '.join(cells) + ' |')
