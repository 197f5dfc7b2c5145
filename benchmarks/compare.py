"""Compare two builds' CPU (or GPU) suite results, run alternately on one machine.

    python benchmarks/compare.py --before 'DIR_A*/cpu-*.json' --after 'DIR_B*/cpu-*.json' [--out FILE.md]

Each glob names one result JSON per round (bench_cpu.py --out DIR writes one).  Prints, as
Markdown: each round's geomean and lowest speedup over torch, then per case the median over
rounds of poolext's time and of its speedup, before and after, and the after/before time ratio.
Timings on a shared machine move between rounds; the ratios to torch, measured in the same
process, move less.
"""

import argparse
import glob
import json
import math
import statistics


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def key(r):
    return (r["case"], r["direction"], r["dtype"], r["layout"])


def load(pattern):
    paths = sorted(glob.glob(pattern))
    if not paths:
        raise SystemExit(f"no result files match {pattern!r}")
    return paths, [json.load(open(p))["rows"] for p in paths]


def median_of(runs, k, field):
    return statistics.median(next(r for r in rows if key(r) == k)[field] for rows in runs)


def report(before, after):
    (bp, b), (ap, a) = before, after
    lines = [f"Rounds: {len(b)} before, {len(a)} after.", ""]
    lines += ["| build | geomean speedup per round | lowest speedup per round |", "|---|---|---|"]
    for name, runs in (("before", b), ("after", a)):
        geo = " ".join(f"{geomean([r['speedup'] for r in rows]):.2f}x" for rows in runs)
        low = " ".join(f"{min(r['speedup'] for r in rows):.2f}x" for rows in runs)
        lines.append(f"| {name} | {geo} | {low} |")
    lines += ["", "Per case, medians over the rounds:", "",
              "| case | dir | dtype | layout | before ms | after ms | after/before | "
              "before speedup | after speedup |",
              "|---|---|---|---|--:|--:|--:|--:|--:|"]
    ratios = []
    for k in [key(r) for r in b[0]]:
        bm, am = median_of(b, k, "poolext_ms"), median_of(a, k, "poolext_ms")
        bs, as_ = median_of(b, k, "speedup"), median_of(a, k, "speedup")
        ratios.append(am / bm)
        lines.append(f"| {k[0]} | {k[1]} | {k[2]} | {k[3]} | {bm:.3f} | {am:.3f} | {am / bm:.2f} "
                     f"| {bs:.2f}x | {as_:.2f}x |")
    lines += ["", f"after/before time ratio over the cases: geomean {geomean(ratios):.3f}, "
              f"lowest {min(ratios):.2f}, highest {max(ratios):.2f}."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", required=True, help="glob of the first build's result JSONs")
    p.add_argument("--after", required=True, help="glob of the second build's result JSONs")
    p.add_argument("--out", help="also write the report to this file")
    args = p.parse_args(argv)
    text = report(load(args.before), load(args.after))
    print(text, end="")
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
