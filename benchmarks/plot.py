"""Charts of a benchmark result file: speedup over torch (and cuDNN) and
achieved bandwidth as a fraction of a same-size copy, one bar per case.

    python benchmarks/plot.py benchmarks/results/RESULT.json [...]

writes RESULT.png next to each result file (matplotlib, no display needed).
"""

import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _label(r):
    return f"{r['case']} · {r['dtype']} {r['layout']} · {r['direction']}"


def _series(rows):
    """(labels, {name: values}) for the speedup and the copy-fraction panels."""
    gpu = "speedup_vs_torch" in rows[0]
    labels = [_label(r) for r in rows]
    speed = {"vs torch": [r["speedup_vs_torch"] if gpu else r["speedup"] for r in rows]}
    if gpu:
        speed["vs cuDNN"] = [r.get("speedup_vs_cudnn") for r in rows]
    frac = {
        "poolext": [r["poolext_frac_of_copy"] for r in rows],
        "torch": [r["torch_gbps"] / r["copy_gbps"] if r.get("torch_gbps") else None for r in rows],
    }
    if gpu:
        frac["cuDNN"] = [r["cudnn_gbps"] / r["copy_gbps"] if r.get("cudnn_gbps") else None
                         for r in rows]
    return labels, speed, frac


def _bars(ax, labels, series, colors):
    n = len(series)
    height = 0.8 / n
    ys = range(len(labels))
    for i, (name, values) in enumerate(series.items()):
        pos = [y - 0.4 + height * (i + 0.5) for y in ys]
        vals = [v if v is not None else 0.0 for v in values]
        ax.barh(pos, vals, height=height, label=name, color=colors[i])
    ax.set_yticks(list(ys))
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")


def plot(path):
    with open(path) as f:
        data = json.load(f)
    rows = [r for r in data["rows"] if r.get("poolext_frac_of_copy") is not None]
    env = data["environment"]
    labels, speed, frac = _series(rows)
    fig, (a, b) = plt.subplots(1, 2, figsize=(14, 0.22 * len(rows) + 1.6), sharey=True)
    _bars(a, labels, speed, ["#1f77b4", "#9467bd"])
    a.axvline(1.0, color="black", lw=0.8)
    a.set_xscale("log", base=2)
    a.set_xlabel("speedup of poolext (x, log scale; right of the line is faster)")
    _bars(b, labels, frac, ["#2ca02c", "#ff7f0e", "#8c564b"])
    b.axvline(1.0, color="black", lw=0.8)
    b.set_xlabel("achieved bandwidth / same-size copy (bytes model: input + output + argmax)")
    where = env.get("device") or f"{env.get('cpu')}, {env.get('threads')} threads"
    fig.suptitle(f"poolext {env.get('poolext')} vs torch {env.get('torch')} — {where} — "
                 f"{env.get('date')}", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    out = os.path.splitext(path)[0] + ".png"
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", help="result .json files written by bench.py")
    for path in ap.parse_args().results:
        print("wrote", plot(path))


if __name__ == "__main__":
    main()
