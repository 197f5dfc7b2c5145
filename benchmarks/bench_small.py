"""Small and in-cache problems: the per-call cost of every public function at a tiny size,
and batch-1 inference of well-known CNNs' pooling layers in both layouts, poolext against
torch in the same process (interleaved, median of repeats).

    python benchmarks/bench_small.py [--repeats N] [--out DIR]
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import poolext  # noqa: E402
import poolext.functional as PF  # noqa: E402
import _common as C  # noqa: E402

# (function, rank, kwargs) at a tiny size: the cost of a call, not of its work
TINY = [
    ("max_pool1d", 1, dict(kernel_size=2)), ("max_pool2d", 2, dict(kernel_size=2)),
    ("max_pool3d", 3, dict(kernel_size=2)), ("avg_pool1d", 1, dict(kernel_size=2)),
    ("avg_pool2d", 2, dict(kernel_size=2)), ("avg_pool3d", 3, dict(kernel_size=2)),
    ("adaptive_max_pool1d", 1, dict(output_size=2)),
    ("adaptive_max_pool2d", 2, dict(output_size=2)),
    ("adaptive_max_pool3d", 3, dict(output_size=2)),
    ("adaptive_avg_pool1d", 1, dict(output_size=2)),
    ("adaptive_avg_pool2d", 2, dict(output_size=2)),
    ("adaptive_avg_pool3d", 3, dict(output_size=2)),
    ("lp_pool1d", 1, dict(norm_type=2, kernel_size=2)),
    ("lp_pool2d", 2, dict(norm_type=2, kernel_size=2)),
    ("lp_pool3d", 3, dict(norm_type=2, kernel_size=2)),
    ("fractional_max_pool2d", 2, dict(kernel_size=2, output_size=2)),
    ("fractional_max_pool3d", 3, dict(kernel_size=2, output_size=2)),
]

# batch-1 inference of CNN pooling layers: (name, function, input shape, kwargs)
LAYERS = [
    ("resnet stem max 3x3/s2/p1", "max_pool2d", (1, 64, 112, 112),
     dict(kernel_size=3, stride=2, padding=1)),
    ("alexnet max 3x3/s2", "max_pool2d", (1, 256, 13, 13), dict(kernel_size=3, stride=2)),
    ("vgg max 2x2/s2", "max_pool2d", (1, 512, 14, 14), dict(kernel_size=2, stride=2)),
    ("resnet global avg", "adaptive_avg_pool2d", (1, 2048, 7, 7), dict(output_size=1)),
    ("densenet transition avg 2x2", "avg_pool2d", (1, 256, 56, 56), dict(kernel_size=2)),
    ("inception avg 3x3/s1/p1", "avg_pool2d", (1, 192, 35, 35),
     dict(kernel_size=3, stride=1, padding=1, count_include_pad=False)),
]


def call_us(fn, calls):
    """Microseconds per call of fn, over `calls` calls in a row."""
    t = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t) / calls * 1e6


def pair(ours, theirs, calls, repeats):
    """Medians of `repeats` interleaved samples of each."""
    ours(), theirs()  # warm up
    o, t = [], []
    for _ in range(repeats):
        o.append(call_us(ours, calls))
        t.append(call_us(theirs, calls))
    return statistics.median(o), statistics.median(t)


def tiny_call(lib, name, kw, x, rank):
    fn = getattr(lib, name)
    if name.startswith("fractional"):
        s = torch.rand(1, 1, rank)
        return lambda: fn(x, _random_samples=s, **kw)
    return lambda: fn(x, **kw)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--out", help=f"results folder (default {C.RESULTS_DIR})")
    args = ap.parse_args(argv)
    rows = []
    for name, rank, kw in TINY:
        for mode in ("forward", "training step"):
            grad = mode != "forward"
            x = torch.randn((1, 1) + (4,) * rank, requires_grad=grad)
            o, t = tiny_call(PF, name, kw, x, rank), tiny_call(F, name, kw, x, rank)
            if grad:
                def step(f):
                    def run():
                        y = f()
                        y.sum().backward()
                        x.grad = None
                    return run
                o, t = step(o), step(t)
            us_o, us_t = pair(o, t, 200, args.repeats)
            rows.append(dict(kind="per call", case=name, mode=mode, shape="x".join(
                map(str, x.shape)), layout="contiguous", poolext_us=us_o, torch_us=us_t,
                ratio=us_o / us_t))
            C.log(f"{name} {mode}: poolext {us_o:.1f} us, torch {us_t:.1f} us")
    for label, name, shape, kw in LAYERS:
        for cl in (False, True):
            x = torch.randn(shape)
            if cl:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.no_grad():
                o = lambda: getattr(PF, name)(x, **kw)  # noqa: E731
                t = lambda: getattr(F, name)(x, **kw)  # noqa: E731
                us_o, us_t = pair(o, t, 20, args.repeats)
            rows.append(dict(kind="batch-1 inference", case=label, mode="forward",
                             shape="x".join(map(str, shape)),
                             layout="channels_last" if cl else "contiguous",
                             poolext_us=us_o, torch_us=us_t, ratio=us_o / us_t))
            C.log(f"{label} {'NHWC' if cl else 'NCHW'}: poolext {us_o:.1f} us, torch {us_t:.1f} us")
    env = C.environment(command=C.command_line(), repeats=args.repeats)
    out = Path(args.out) if args.out else C.RESULTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    stem = f"small-cpu-{C.slug(env['cpu'])}-{env['date']}"
    (out / f"{stem}.json").write_text(json.dumps({"environment": env, "rows": rows}, indent=1))
    table = C.markdown_table(
        ["kind", "case", "mode", "shape", "layout", "poolext us", "torch us", "poolext / torch"],
        [[r["kind"], r["case"], r["mode"], r["shape"], r["layout"], f"{r['poolext_us']:.1f}",
          f"{r['torch_us']:.1f}", f"{r['ratio']:.2f}"] for r in rows], left=5)
    head = "\n".join(f"- {k}: {v}" for k, v in env.items())
    (out / f"{stem}.md").write_text(
        f"# poolext benchmark: small problems\n\n{head}\n\n{table}\n\n"
        "poolext / torch: time per call, below 1 is faster than torch.\n")
    print(table)
    C.log(f"wrote {out / stem}.json, .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
