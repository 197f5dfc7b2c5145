"""Shared helpers for the poolext benchmarks: timing, copy baseline, bytes model, reporting."""

import datetime
import json
import math
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

import torch

RESULTS_DIR = Path(__file__).resolve().parent / "results"


# ---------------------------------------------------------------- timing

def _run(fn, n):
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - t0


def calibrate(fn, min_time, warmup=2):
    """Inner iterations so that one sample of fn lasts at least min_time seconds."""
    for _ in range(warmup):
        fn()
    n = 1
    while True:
        t = _run(fn, n)
        if t >= min_time:
            return n
        n = max(2 * n, math.ceil(1.2 * n * min_time / max(t, 1e-9)))


def interleaved(fns, repeats, min_time=0.02, warmup=2):
    """Median seconds per call of each function in the dict fns.

    Warm-up and calibration first; then for each repeat one sample of every function,
    in the given order on even repeats and in reverse order on odd ones, so that drift
    and noise fall on all of them alike. Returns {name: (median, [samples])}.
    """
    names = list(fns)
    inner = {k: calibrate(fns[k], min_time, warmup) for k in names}
    samples = {k: [] for k in names}
    for r in range(repeats):
        for k in (names if r % 2 == 0 else names[::-1]):
            samples[k].append(_run(fns[k], inner[k]) / inner[k])
    return {k: (statistics.median(v), v) for k, v in samples.items()}


def copy_fn(nbytes, device="cpu"):
    """A callable copying nbytes/2 bytes: it reads and writes nbytes in all, like the op."""
    half = max(1, nbytes // 2)
    src = torch.ones(half, dtype=torch.uint8, device=device)
    dst = torch.zeros_like(src)
    return lambda: dst.copy_(src)


# ---------------------------------------------------------------- bytes model

def argmax_itemsize(kernel_size):
    """Bytes per output element of poolext's saved argmax (offset inside the window)."""
    vol = math.prod(kernel_size)
    return 1 if vol <= 256 else 2 if vol <= 65536 else 4


def pool_bytes(kind, direction, in_numel, out_numel, itemsize, kernel_size):
    """Bytes a pooling op must move, in poolext's model.

    fwd (inference): input + output. Training forward and backward of max pooling each add
    the compact argmax (1 B per output for windows up to 256 elements; torch keeps 8 B int64
    indices, which this model does not count). backward: grad_output + grad_input.
    LP pooling's training forward adds its coefficients, and its backward reads them and the
    input.
    fwd+bwd: training forward + backward.
    """
    io = (in_numel + out_numel) * itemsize
    if direction == "fwd":
        return io
    if kind == "lp_":  # LP pooling: training saves a float coefficient per output (double
        coef = out_numel * (8 if itemsize == 8 else 4)  # for double); backward re-reads x
        bwd = io + in_numel * itemsize + coef
        return {"bwd": bwd, "fwd+bwd": io + coef + bwd}[direction]
    arg = out_numel * argmax_itemsize(kernel_size) if kind == "max" else 0
    return {"bwd": io + arg, "fwd+bwd": 2 * (io + arg)}[direction]


def gbps(nbytes, seconds):
    return nbytes / seconds / 1e9


def geomean(xs):
    xs = list(xs)
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else float("nan")


# ---------------------------------------------------------------- environment

def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def slug(text):
    text = re.sub(r"\((r|tm|c)\)|\bcpu\b|@.*$|\bprocessor\b", " ", text.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-") or "unknown"


def environment(**extra):
    import poolext

    return {
        "date": datetime.date.today().isoformat(),
        "torch": torch.__version__,
        "poolext": getattr(poolext, "__version__", "unknown"),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "threads": torch.get_num_threads(),
        **extra,
    }


# ---------------------------------------------------------------- reporting

def markdown_table(headers, rows, left=1):
    """A padded markdown table; the first `left` columns are left-aligned, the rest right."""
    cells = [list(map(str, headers))] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r):
        return "| " + " | ".join(
            c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))
        ) + " |"

    rule = "|" + "|".join(
        "-" * (w + 2) if i < left else "-" * (w + 1) + ":" for i, w in enumerate(widths)
    ) + "|"
    return "\n".join([line(cells[0]), rule] + [line(r) for r in cells[1:]])


def write_results(kind, env, rows, summary_md, table_md, out_dir=None, tag=""):
    """Write <kind>-YYYY-MM-DD[-tag].{json,md} under out_dir; return the two paths."""
    out = Path(out_dir) if out_dir else RESULTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{kind}-{env['date']}" + (f"-{tag}" if tag else "")
    js, md = out / f"{stem}.json", out / f"{stem}.md"
    js.write_text(json.dumps({"environment": env, "rows": rows}, indent=1) + "\n")
    head = "\n".join(f"- {k}: {v}" for k, v in env.items())
    md.write_text(f"# poolext benchmark: {kind}\n\n{head}\n\n{table_md}\n\n{summary_md}\n")
    try:  # the charts (benchmarks/plot.py) need matplotlib, an optional extra
        import plot
    except ImportError as e:
        log(f"no chart drawn ({e}); pip install matplotlib, then python benchmarks/plot.py {js}")
    else:
        log("chart:", plot.plot(str(js)))
    return js, md


def log(*args, **kwargs):
    print(*args, file=sys.stderr, flush=True, **kwargs)


def command_line():
    return " ".join([os.path.basename(sys.executable)] + sys.argv)
