#!/usr/bin/env python3
"""Table and verdicts for bench/paper_rag_storage.sh (reads vqs-eval/2 JSON).

The paper's claims, checked on each data set with recall@10 and nDCG@10
against exact cosine ground truth (mean over the seeds in the file):
  1. float8 stores 4x smaller with < 0.3% loss
  2. int8 is worse than float8 at the same 4x (the paper's int8 is a plain
     cast with one scale, vqs SQ8s; vqs's own SQ8 has a range per dimension)
  3. PCA to 50% of d + float8 beats int4 (both 8x)
  4. the front of quality against bytes mixes PCA and quantization
Standard library only."""
import json
import sys

METRICS = ("recall_at_10", "ndcg_at_10")


def load(path):
    with open(path) as f:
        r = json.load(f)
    if r.get("format") != "vqs-eval/2":
        sys.exit(f"{path}: not a vqs-eval/2 file")
    return r


def label(row):
    rest = [t for t in (row.get("transform") or "").split(",") if t and not t.startswith("PCA")]
    return ",".join(rest + [row["quantizer"]])


def pca_key(row):
    f = row.get("pca_fraction")
    return "none" if f is None else f"{round(f * 100)}%"


def front(rows, metric):
    ok = sorted(rows, key=lambda r: (r["code_bytes"], -r[metric]))
    out, best = [], -1.0
    for r in ok:
        if r[metric] > best:
            out.append(r)
            best = r[metric]
    return out


def fmt(x):
    return f"{x:.4f}"


def report(path):
    res = load(path)
    ds = res["dataset"]
    rows = [r for r in res["rows"] if r.get("status") == "ok"]
    err = [r for r in res["rows"] if r.get("status") != "ok"]
    name = ds.get("name") or ds["base"]
    print(f"\n### {name}: {ds['n']} x {ds['d']}, {ds['metric']}, queries {ds['queries']}, "
          f"k = {res['k']}, {res['seeds']} seeds\n")
    cells = {}
    for r in rows:
        cells[(label(r), pca_key(r))] = r
    labels = []
    for r in rows:
        if label(r) not in labels:
            labels.append(label(r))
    pcas = ["none", "25%", "50%", "75%"]
    print("recall@10 / nDCG@10 (bytes per vector) against exact search:\n")
    print("| codec | " + " | ".join(f"PCA {p}" if p != "none" else "no PCA" for p in pcas) + " |")
    print("|---|" + "---|" * len(pcas))
    for lb in labels:
        out = []
        for p in pcas:
            r = cells.get((lb, p))
            out.append("–" if r is None else
                       f"{r['recall_at_10']:.4f} / {r['ndcg_at_10']:.4f} ({r['code_bytes']:g} B)")
        print(f"| {lb} | " + " | ".join(out) + " |")
    for r in err:
        print(f"\nerror: {r['spec']}: {r.get('error')}")

    def get(lb, p="none"):
        r = cells.get((lb, p))
        if r is None:
            sys.exit(f"{path}: no row for {lb} with PCA {p}")
        return r

    base = get("Flat")
    verdicts = []
    fp8 = get("SQfp8")
    loss = {m: (base[m] - fp8[m]) / base[m] * 100 for m in METRICS}
    ok = all(v < 0.3 for v in loss.values())
    verdicts.append(("float8 (4x) loses < 0.3%", ok,
                     f"SQfp8 loses {loss['recall_at_10']:.2f}% recall@10, "
                     f"{loss['ndcg_at_10']:.2f}% nDCG@10 against float32"))
    s8s, s8 = get("SQ8s"), get("SQ8")
    ok = s8s["recall_at_10"] < fp8["recall_at_10"]
    verdicts.append(("int8 is worse than float8 (4x)", ok,
                     f"plain int8 (SQ8s) {fmt(s8s['recall_at_10'])}, vqs SQ8 {fmt(s8['recall_at_10'])}, "
                     f"SQfp8 {fmt(fp8['recall_at_10'])} recall@10"))
    p50, i4 = get("SQfp8", "50%"), get("SQ4")
    ok = p50["recall_at_10"] > i4["recall_at_10"]
    verdicts.append(("PCA 50% + float8 beats int4 (8x)", ok,
                     f"PCA50%,SQfp8 {fmt(p50['recall_at_10'])} ({p50['code_bytes']:g} B) vs SQ4 "
                     f"{fmt(i4['recall_at_10'])} ({i4['code_bytes']:g} B) recall@10"))
    fr = front(rows, "recall_at_10")
    mixed = any(r.get("pca_fraction") is not None for r in fr) and any(
        r.get("pca_fraction") is None for r in fr)
    verdicts.append(("the front mixes PCA and quantization", mixed,
                     "front (bytes → recall@10): " + ", ".join(
                         f"{r['spec']} {r['code_bytes']:g} B {r['recall_at_10']:.4f}" for r in fr)))
    print("\n| claim | verdict | measured |\n|---|---|---|")
    for c, ok, m in verdicts:
        print(f"| {c} | {'holds' if ok else '**does not hold**'} | {m} |")


for p in sys.argv[1:]:
    report(p)
