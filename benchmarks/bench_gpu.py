"""GPU benchmark suite: poolext vs torch vs cuDNN, forward, backward and forward+backward.

    python benchmarks/bench_gpu.py [--quick] [--repeats N] [--filter SUBSTR] [--out DIR]
                                   [--no-cudnn] [--dry-run]

Every figure is the median of repeated samples timed with CUDA events after a warm-up, the
libraries interleaved; inputs are larger than the L2 cache (50 MB on an H100).  Each case
first checks that poolext and cuDNN agree with torch.  GB/s use poolext's bytes model (see
_common.pool_bytes) for all three libraries, next to a device-to-device copy moving the same
bytes.  --dry-run runs every code path on tiny CPU tensors with wall-clock timing, no GPU.
"""

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import poolext  # noqa: E402
import _common as C  # noqa: E402
import cudnn  # noqa: E402
from bench_cpu import DTYPES, Case  # noqa: E402

DIRECTIONS = ("fwd", "bwd", "fwd+bwd")
LIBS = ("poolext", "torch", "cudnn")


def cases():
    stem = dict(kernel_size=3, stride=2, padding=1)
    vgg = dict(kernel_size=2, stride=2)
    inception = dict(kernel_size=3, stride=1, padding=1, count_include_pad=False)
    s3d = (8, 32, 32, 112, 112)
    out = []
    for dtype in (torch.float32, torch.bfloat16):
        for cl in (False, True):
            out += [
                Case("stem max 3x3/s2/p1", "max_pool2d", (16, 64, 112, 112), stem, dtype, cl),
                Case("stem max 3x3/s2/p1", "max_pool2d", (128, 64, 112, 112), stem, dtype, cl),
                Case("vgg max 2x2/s2", "max_pool2d", (64, 128, 112, 112), vgg, dtype, cl),
                Case("inception avg 3x3/s1/p1 excl-pad", "avg_pool2d", (256, 288, 35, 35),
                     inception, dtype, cl),
                Case("3d max 2x2x2/s2", "max_pool3d", s3d, dict(kernel_size=2, stride=2), dtype, cl),
                Case("3d max 3x3x3/s2/p1", "max_pool3d", s3d,
                     dict(kernel_size=3, stride=2, padding=1), dtype, cl),
                Case("lp p=2 2x2/s2", "lp_pool2d", (64, 128, 112, 112),
                     dict(norm_type=2, kernel_size=2), dtype, cl),
            ]
        out.append(Case("1d audio max k4/s4", "max_pool1d", (64, 64, 48000),
                        dict(kernel_size=4, stride=4), dtype))
    return out


def label(case, direction):
    return f"{case.name} {'x'.join(map(str, case.shape))} {case.layout} {DTYPES[case.dtype]} {direction}"


# ---------------------------------------------------------------- timing

class Timer:
    """Median seconds per call of callables, interleaved: CUDA events on a GPU, else wall clock."""

    def __init__(self, device, repeats, warmup=3, min_sample=2e-3):
        self.cuda = device.type == "cuda"
        self.repeats, self.warmup, self.min_sample = repeats, warmup, min_sample

    def _sample(self, fn, inner):
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(inner):
                fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3 / inner
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        return (time.perf_counter() - t0) / inner

    def run(self, fns):
        """{name: (median seconds, [samples])}; samples alternate the order of the callables."""
        inner = {}
        for name, fn in fns.items():
            for _ in range(self.warmup):
                fn()
            inner[name] = max(1, math.ceil(self.min_sample / max(self._sample(fn, 1), 1e-9)))
        names = list(fns)
        samples = {k: [] for k in names}
        for r in range(self.repeats):
            for k in (names if r % 2 == 0 else names[::-1]):
                samples[k].append(self._sample(fns[k], inner[k]))
        return {k: (statistics.median(v), v) for k, v in samples.items()}


# ---------------------------------------------------------------- one case

def make_input(case, device, dry_run):
    shape = case.shape
    if dry_run:  # tiny: exercise the code, not the machine
        shape = (1, min(shape[1], 4)) + tuple(max(1, s // 16) for s in shape[2:])
    x = torch.randn(shape, dtype=case.dtype, device=device)
    if case.channels_last:
        x = x.contiguous(memory_format=torch.channels_last if case.rank == 2
                         else torch.channels_last_3d)
    return x


def tolerance(dtype):
    return dict(rtol=1e-2, atol=1e-2) if dtype in (torch.float16, torch.bfloat16) else {}


def _no_grad(fn):
    def step():
        with torch.no_grad():
            return fn()
    return step


def steps(case, direction, x, g, pool):
    """The timed callables of each library for one direction (cuDNN only when pool)."""
    kw = case.kwargs
    ours, theirs = getattr(poolext.functional, case.op), getattr(F, case.op)
    out = {}
    for name, fn in (("poolext", ours), ("torch", theirs)):
        if direction == "fwd":
            out[name] = _no_grad(lambda fn=fn: fn(x, **kw))
        elif direction == "bwd":
            xr = x.detach().requires_grad_()
            y = fn(xr, **kw)
            out[name] = lambda y=y, xr=xr: torch.autograd.grad(y, xr, g, retain_graph=True)
        else:
            def fwd_bwd(fn=fn, xr=x.detach().requires_grad_()):
                return torch.autograd.grad(fn(xr, **kw), xr, g)
            out[name] = fwd_bwd
    if pool is not None:
        if direction == "fwd":
            out["cudnn"] = lambda: pool.forward(x)
        elif direction == "bwd":
            y = pool.forward(x)
            out["cudnn"] = lambda: pool.backward(x, y, g)
        else:
            out["cudnn"] = lambda: pool.backward(x, pool.forward(x), g)
    return out


def verify(case, direction, x, g):
    """poolext against torch before timing; raises AssertionError on a mismatch.  Returns
    torch's result (output, or input gradient) for checking cuDNN."""
    kw, what = case.kwargs, label(case, direction)
    ours, theirs = getattr(poolext.functional, case.op), getattr(F, case.op)
    if direction == "fwd":
        with torch.no_grad():
            ref, y = theirs(x, **kw), ours(x, **kw)
        if case.op.startswith("max"):
            assert torch.equal(y, ref), f"{what}: poolext output is not bit-identical to torch"
        torch.testing.assert_close(y, ref, **tolerance(case.dtype))
        assert y.stride() == ref.stride(), f"{what}: poolext output strides {y.stride()} vs {ref.stride()}"
        return ref
    xr = x.detach().requires_grad_()
    (got,) = torch.autograd.grad(ours(xr, **kw), xr, g)
    # The reference gradient comes from torch's contiguous kernel: its CUDA channels_last
    # avg_pool2d backward gives wrong gradients when padding > 0 (pytorch/pytorch#188344,
    # seen here with torch 2.11).  For half types it is computed in float32: torch adds
    # overlapping windows' half-type gradients with a rounding per addition, poolext adds in
    # float and rounds once.
    half = case.dtype in (torch.float16, torch.bfloat16)
    xr = x.detach().contiguous().to(torch.float32 if half else case.dtype).requires_grad_()
    (want,) = torch.autograd.grad(theirs(xr, **kw), xr, g.to(xr.dtype))
    want = want.to(case.dtype)
    torch.testing.assert_close(got, want, **tolerance(case.dtype),
                               msg=lambda m: f"{what}: poolext gradient: {m}")
    return want


def cudnn_problem(case, direction, x, g, ref, disabled):
    """(CudnnPool, "") when cuDNN runs this case and agrees with torch, else (None, reason)."""
    if disabled:
        return None, disabled
    kind = case.op[:3]
    ok, reason = cudnn.supports(kind, case.rank, case.kwargs, tuple(x.shape), x.dtype)
    if not ok:
        return None, reason
    try:
        pool = cudnn.for_problem(kind, case.rank, case.kwargs)
        if direction == "fwd":
            torch.testing.assert_close(pool.forward(x), ref, **tolerance(case.dtype))
        elif case.dtype == torch.float32:
            # cuDNN may break ties between equal maxima differently: checked on fp32 only.
            torch.testing.assert_close(pool.backward(x, pool.forward(x), g), ref)
        else:
            pool.backward(x, pool.forward(x), g)
    except (cudnn.CudnnError, AssertionError) as e:
        return None, f"cuDNN: {str(e).splitlines()[0][:80]}"
    return pool, ""


def run_case(case, direction, args, device, timer):
    x = make_input(case, device, args.dry_run)
    kind = case.op[:3]
    with torch.no_grad():
        y = getattr(F, case.op)(x, **case.kwargs)
    g = torch.randn_like(y)
    ref = verify(case, direction, x, g)
    pool, na = cudnn_problem(case, direction, x, g, ref, args.cudnn_disabled)
    del ref
    nbytes = C.pool_bytes(kind, direction, x.numel(), y.numel(), x.element_size(),
                          case.kernel_size)
    fns = steps(case, direction, x, g, pool)
    fns["copy"] = C.copy_fn(nbytes, device)
    t = timer.run(fns)
    row = {
        "case": case.name, "direction": direction, "op": case.op, "kwargs": dict(case.kwargs),
        "shape": "x".join(map(str, x.shape)), "dtype": DTYPES[case.dtype], "layout": case.layout,
        "bytes": nbytes, "cudnn_na": None if pool is not None else na,
        "copy_us": t["copy"][0] * 1e6, "copy_gbps": C.gbps(nbytes, t["copy"][0]),
        "samples_us": {k: [s * 1e6 for s in v[1]] for k, v in t.items()},
    }
    for lib in LIBS:
        sec = t[lib][0] if lib in t else None
        row[f"{lib}_us"] = sec * 1e6 if sec else None
        row[f"{lib}_gbps"] = C.gbps(nbytes, sec) if sec else None
    row["speedup_vs_torch"] = row["torch_us"] / row["poolext_us"]
    row["speedup_vs_cudnn"] = row["cudnn_us"] / row["poolext_us"] if row["cudnn_us"] else None
    row["poolext_frac_of_copy"] = row["copy_us"] / row["poolext_us"]
    return row


# ---------------------------------------------------------------- report

HEADERS = ["case", "dir", "shape", "dtype", "layout", "poolext us", "torch us", "cuDNN us",
           "vs torch", "vs cuDNN", "poolext GB/s", "torch GB/s", "cuDNN GB/s", "copy GB/s",
           "poolext % of copy"]


def _f(v, fmt):
    return "-" if v is None else format(v, fmt)


def table(rows):
    body = []
    for r in rows:
        if r.get("error"):
            body.append([r["case"], r["direction"], r["shape"], r["dtype"], r["layout"],
                         f"error: {r['error']}"] + [""] * (len(HEADERS) - 6))
            continue
        na = f"n/a ({r['cudnn_na']})" if r["cudnn_na"] else None
        body.append([
            r["case"], r["direction"], r["shape"], r["dtype"], r["layout"],
            _f(r["poolext_us"], ".1f"), _f(r["torch_us"], ".1f"), na or _f(r["cudnn_us"], ".1f"),
            _f(r["speedup_vs_torch"], ".2f") + "x",
            na or _f(r["speedup_vs_cudnn"], ".2f") + "x",
            _f(r["poolext_gbps"], ".0f"), _f(r["torch_gbps"], ".0f"), na or _f(r["cudnn_gbps"], ".0f"),
            _f(r["copy_gbps"], ".0f"), f"{100 * r['poolext_frac_of_copy']:.0f}%",
        ])
    return C.markdown_table(HEADERS, body, left=5)


def summary(rows):
    ok = [r for r in rows if not r.get("error")]
    lines = ["Geometric mean speedup of poolext (other library's time / poolext's time):", ""]
    for name, sel in [("all", ok)] + [(d, [r for r in ok if r["direction"] == d])
                                      for d in DIRECTIONS]:
        if not sel:
            continue
        vs_cudnn = [r["speedup_vs_cudnn"] for r in sel if r["speedup_vs_cudnn"]]
        lines.append(f"- {name}: {C.geomean(r['speedup_vs_torch'] for r in sel):.2f}x vs torch "
                     f"(n={len(sel)}), " + (f"{C.geomean(vs_cudnn):.2f}x vs cuDNN "
                                            f"(n={len(vs_cudnn)})" if vs_cudnn else "cuDNN n/a"))
    bad = [r for r in rows if r.get("error")]
    if bad:
        lines += ["", f"{len(bad)} case(s) failed: see the error column."]
    lines += ["", "fwd: inference forward. bwd: backward alone, from a saved forward. fwd+bwd: "
              "training forward and backward.  Bytes model (all libraries alike): forward = "
              "input + output; backward = grad_output + grad_input + poolext's 1-byte argmax per "
              "output for max pooling; fwd+bwd = both, with the argmax also written by the "
              "forward.  Copy: dst.copy_(src) moving the same bytes (read + write).  cuDNN: "
              "CUDNN_POOLING_MAX_DETERMINISTIC / AVERAGE_COUNT_*_PADDING with NaN propagation; "
              "its backward reads x and y as well."]
    return "\n".join(lines)


# ---------------------------------------------------------------- main

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats")
    p.add_argument("--repeats", type=int, help="samples per measurement (default 15, quick 5)")
    p.add_argument("--filter", default="", help="run only cases whose label contains SUBSTR")
    p.add_argument("--out", help=f"results folder (default {C.RESULTS_DIR})")
    p.add_argument("--no-cudnn", action="store_true", help="leave cuDNN out")
    p.add_argument("--dry-run", action="store_true",
                   help="tiny CPU tensors and wall-clock timing: checks the code paths, no GPU")
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.dry_run else 5 if args.quick else 15
    args.cudnn_disabled = "disabled" if args.no_cudnn else "no GPU" if args.dry_run else ""
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.dry_run:
        device = torch.device("cpu")
        device_name = "host (dry run)"
    else:
        if not torch.cuda.is_available():
            C.log("no CUDA device: use --dry-run to exercise the code paths on the CPU")
            return 1
        if not poolext.cuda_kernels_built():
            C.log("this poolext build has no CUDA kernels")
            return 1
        device = torch.device("cuda", torch.cuda.current_device())
        device_name = torch.cuda.get_device_name(device)
        if not args.no_cudnn:
            try:
                cudnn.check_against_torch()
                C.log(f"cuDNN {cudnn.version()} agrees with torch on the check problems")
            except AssertionError as e:
                # Each case is checked again before it is timed, and left out alone when
                # cuDNN differs from torch there.
                C.log(f"cuDNN {cudnn.version()} differs from torch on a check problem: "
                      f"{str(e).splitlines()[0][:100]}")
            except (cudnn.CudnnError, OSError) as e:
                args.cudnn_disabled = f"unavailable: {str(e).splitlines()[0][:60]}"
                C.log(f"cuDNN left out: {args.cudnn_disabled}")
    torch.manual_seed(0)
    timer = Timer(device, args.repeats, warmup=1 if args.dry_run else 3,
                  min_sample=1e-4 if args.dry_run else 2e-3)
    todo = [(c, d) for c in cases() for d in DIRECTIONS
            if args.filter.lower() in label(c, d).lower()]
    if not todo:
        C.log(f"no case matches --filter {args.filter!r}")
        return 1
    rows = []
    for i, (case, direction) in enumerate(todo, 1):
        C.log(f"[{i}/{len(todo)}] {label(case, direction)} ...", end="")
        try:
            r = run_case(case, direction, args, device, timer)
        except (AssertionError, RuntimeError) as e:  # a mismatch, cuDNN, out of memory
            msg = str(e).splitlines()[0][:200]
            r = {"case": case.name, "direction": direction, "op": case.op,
                 "shape": "x".join(map(str, case.shape)), "dtype": DTYPES[case.dtype],
                 "layout": case.layout, "error": msg}
            C.log(f" FAILED: {msg}")
        else:
            vs_cudnn = (f"{r['speedup_vs_cudnn']:.2f}x vs cuDNN" if r["speedup_vs_cudnn"]
                        else f"cuDNN n/a ({r['cudnn_na']})")
            C.log(f" {r['poolext_us']:.1f} us, {r['speedup_vs_torch']:.2f}x vs torch, {vs_cudnn}, "
                  f"{100 * r['poolext_frac_of_copy']:.0f}% of copy")
        rows.append(r)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    env = C.environment(
        suite="gpu", device=device_name, cuda=torch.version.cuda,
        cudnn=cudnn.version() if device.type == "cuda" else None,
        dry_run=args.dry_run, quick=args.quick, repeats=args.repeats, filter=args.filter,
        command=C.command_line())
    tbl, summ = table(rows), summary(rows)
    print(tbl + "\n\n" + summ, flush=True)
    tag = "-".join(t for t in ("quick" if args.quick else "", "partial" if args.filter else "") if t)
    paths = C.write_results(f"gpu-{C.slug(device_name)}", env, rows, summ, tbl, args.out, tag)
    C.log("wrote " + ", ".join(map(str, paths)))
    return 1 if any(r.get("error") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
