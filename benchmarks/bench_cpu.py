"""CPU benchmark suite: poolext vs torch.nn.functional, forward and forward+backward.

    python benchmarks/bench_cpu.py [--quick] [--repeats N] [--filter SUBSTR] [--out DIR] [--threads N]
"""

import argparse
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import poolext  # noqa: E402
import _common as C  # noqa: E402

DIRECTIONS = ("fwd", "fwd+bwd")
DTYPES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16",
          torch.float64: "fp64"}


@dataclass
class Case:
    name: str
    op: str                      # torch.nn.functional / poolext.functional name
    shape: tuple
    kwargs: dict = field(default_factory=dict)
    dtype: torch.dtype = torch.float32
    channels_last: bool = False

    @property
    def rank(self):
        return int(self.op[-2])

    @property
    def layout(self):
        if self.channels_last:
            return {2: "NHWC", 3: "NDHWC"}[self.rank]
        return {1: "NCL", 2: "NCHW", 3: "NCDHW"}[self.rank]

    @property
    def kernel_size(self):
        k = self.kwargs["kernel_size"]
        return (k,) * self.rank if isinstance(k, int) else tuple(k)

    def label(self, direction):
        return f"{self.name} {self.layout} {DTYPES[self.dtype]} {direction}"


def cases():
    stem = dict(kernel_size=3, stride=2, padding=1)
    vgg = dict(kernel_size=2, stride=2)
    s_stem, s_vgg = (16, 64, 112, 112), (16, 128, 112, 112)
    s_3d, s_1d = (4, 32, 16, 56, 56), (16, 64, 16000)
    return [
        Case("stem max 3x3/s2/p1", "max_pool2d", s_stem, stem),
        Case("stem max 3x3/s2/p1", "max_pool2d", s_stem, stem, channels_last=True),
        Case("stem max 3x3/s2/p1", "max_pool2d", s_stem, stem, torch.bfloat16),
        Case("stem max 3x3/s2/p1", "max_pool2d", s_stem, stem, torch.bfloat16, True),
        Case("vgg max 2x2/s2", "max_pool2d", s_vgg, vgg),
        Case("vgg max 2x2/s2", "max_pool2d", s_vgg, vgg, channels_last=True),
        Case("inception avg 3x3/s1/p1 excl-pad", "avg_pool2d", (16, 256, 35, 35),
             dict(kernel_size=3, stride=1, padding=1, count_include_pad=False)),
        Case("avg 2x2/s2", "avg_pool2d", s_vgg, vgg),
        Case("global avg 7x7", "avg_pool2d", (64, 512, 7, 7), dict(kernel_size=7)),
        Case("3d max 2x2x2/s2", "max_pool3d", s_3d, dict(kernel_size=2, stride=2)),
        Case("3d max 3x3x3/s2/p1", "max_pool3d", s_3d, dict(kernel_size=3, stride=2, padding=1)),
        Case("1d audio max k4/s4", "max_pool1d", s_1d, dict(kernel_size=4, stride=4)),
        Case("1d audio avg k4/s4", "avg_pool1d", s_1d, dict(kernel_size=4, stride=4)),
        Case("lp p=2 3x3/s2", "lp_pool2d", s_stem, dict(norm_type=2, kernel_size=3, stride=2)),
        Case("lp p=2 2x2/s2", "lp_pool2d", s_stem, dict(norm_type=2, kernel_size=2),
             channels_last=True),
        Case("lp p=3 2x2/s2", "lp_pool2d", s_stem, dict(norm_type=3, kernel_size=2)),
        # fractional: fixed samples (run_case), so both libraries pool the same windows
        Case("fractional max 2x2 -> 79x79", "fractional_max_pool2d", (8, 64, 112, 112),
             dict(kernel_size=2, output_size=(79, 79))),
        Case("fractional max 3x3 -> 79x79", "fractional_max_pool2d", (8, 64, 112, 112),
             dict(kernel_size=3, output_size=(79, 79))),
    ]


def make_input(case, quick, requires_grad):
    shape = (max(1, case.shape[0] // 8),) + case.shape[1:] if quick else case.shape
    x = torch.randn(shape, dtype=case.dtype)
    if case.channels_last:
        x = x.contiguous(memory_format=torch.channels_last if case.rank == 2
                         else torch.channels_last_3d)
    return x.requires_grad_(requires_grad)


def make_step(fn, x, kwargs, grad_out):
    """One timed call: forward, or (grad_out given) forward + backward into x.grad.

    Returns (output, input gradient or None). The step takes x.grad back out, so each library's
    tensors are freed inside its own timed calls (as zero_grad frees them in training); with
    x.grad left in place, the next step of the other library would pay for freeing it."""
    if grad_out is None:
        return lambda: (fn(x, **kwargs), None)

    def step():
        y = fn(x, **kwargs)
        y.backward(grad_out)
        gx, x.grad = x.grad, None
        return y, gx
    return step


def verify(case, direction, ours, ref, x, grad_out):
    """Run both steps once; poolext must match torch in values, strides and input gradients.

    Max outputs must be bit-identical. Gradients are sums over the windows covering each
    input element, so they are compared within the rounding bound of such a sum.
    """
    label = case.label(direction)
    y, gx = ours()
    y_ref, gx_ref = ref()
    checks = [("output", y, y_ref)]
    if gx is not None and case.op.startswith("lp"):
        # x^(p-1) times a power of the window's sum: compared relative to its size
        checks.append(("grad_input", gx, gx_ref))
    elif gx is not None:
        stride = case.kwargs.get("stride") or case.kwargs["kernel_size"]
        stride = (stride,) * case.rank if isinstance(stride, int) else stride
        overlap = math.prod(-(-k // s) for k, s in zip(case.kernel_size, stride))
        atol = 2 * overlap * torch.finfo(x.dtype).eps * grad_out.abs().max().item()
        checks.append(("grad_input", gx, gx_ref, atol))
    for what, a, b, *atol in checks:
        if a.shape != b.shape or a.stride() != b.stride() or a.dtype != b.dtype:
            raise AssertionError(
                f"{label}: {what} differs in shape/stride/dtype: poolext {tuple(a.shape)} "
                f"{a.stride()} {a.dtype}, torch {tuple(b.shape)} {b.stride()} {b.dtype}")
        if case.op.startswith(("max", "fractional_max")) and not atol:
            if not torch.equal(a, b):
                raise AssertionError(f"{label}: {what} is not bit-identical to torch")
        else:
            torch.testing.assert_close(a, b, atol=atol[0] if atol else None,
                                       rtol=0 if atol else None, equal_nan=True,
                                       msg=lambda m: f"{label}: {what}: {m}")
    return y_ref.detach()


def run_case(case, direction, args):
    kwargs = case.kwargs
    x = make_input(case, args.quick, requires_grad=direction != "fwd")
    if case.op.startswith("fractional"):  # the same windows for both libraries
        kwargs = dict(kwargs, _random_samples=torch.rand(x.shape[0], x.shape[1], case.rank,
                                                         dtype=x.dtype))
    ours, theirs = getattr(poolext.functional, case.op), getattr(F, case.op)
    g = None
    if direction != "fwd":
        with torch.no_grad():
            g = torch.randn_like(theirs(x, **kwargs))
    steps = {"poolext": make_step(ours, x, kwargs, g), "torch": make_step(theirs, x, kwargs, g)}
    y = verify(case, direction, steps["poolext"], steps["torch"], x, g)
    nbytes = C.pool_bytes(case.op.removeprefix("fractional_")[:3], direction, x.numel(), y.numel(), x.element_size(),
                          case.kernel_size)
    steps["copy"] = C.copy_fn(nbytes)
    t = C.interleaved(steps, args.repeats, args.min_time)
    (tp, sp), (tt, st), (tc, sc) = t["poolext"], t["torch"], t["copy"]
    return {
        "case": case.name, "direction": direction, "op": case.op,
        "kwargs": dict(case.kwargs),
        "shape": "x".join(map(str, x.shape)), "dtype": DTYPES[case.dtype], "layout": case.layout,
        "bytes": nbytes, "poolext_ms": tp * 1e3, "torch_ms": tt * 1e3, "copy_ms": tc * 1e3,
        "speedup": tt / tp, "poolext_gbps": C.gbps(nbytes, tp), "torch_gbps": C.gbps(nbytes, tt),
        "copy_gbps": C.gbps(nbytes, tc), "poolext_frac_of_copy": tc / tp,
        "samples_ms": {k: [s * 1e3 for s in v] for k, v in
                       (("poolext", sp), ("torch", st), ("copy", sc))},
    }


HEADERS = ["case", "direction", "shape", "dtype", "layout", "poolext ms", "torch ms", "speedup",
           "poolext GB/s", "torch GB/s", "copy GB/s", "poolext % of copy"]


def table(rows):
    return C.markdown_table(HEADERS, [
        [r["case"], r["direction"], r["shape"], r["dtype"], r["layout"],
         f"{r['poolext_ms']:.3f}", f"{r['torch_ms']:.3f}", f"{r['speedup']:.2f}x",
         f"{r['poolext_gbps']:.1f}", f"{r['torch_gbps']:.1f}", f"{r['copy_gbps']:.1f}",
         f"{100 * r['poolext_frac_of_copy']:.0f}%"] for r in rows], left=5)


def summary(rows):
    lines = ["Geometric mean speedup (torch ms / poolext ms):", ""]
    for name, sel in [("all", rows)] + [(d, [r for r in rows if r["direction"] == d])
                                        for d in DIRECTIONS]:
        if sel:
            lines.append(f"- {name}: {C.geomean(r['speedup'] for r in sel):.2f}x "
                         f"(n={len(sel)})")
    lines += ["", "GB/s use poolext's bytes model for both libraries (input + output; training "
              "max pooling adds a 1-byte argmax per output, where torch moves 8-byte indices). "
              "Copy: dst.copy_(src) moving the same number of bytes (read + write)."]
    return "\n".join(lines)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller shapes, fewer repeats")
    p.add_argument("--repeats", type=int, help="samples per measurement (default 7, quick 3)")
    p.add_argument("--filter", default="", help="run only cases whose label contains SUBSTR")
    p.add_argument("--out", help=f"results folder (default {C.RESULTS_DIR})")
    p.add_argument("--threads", type=int, help="torch.set_num_threads(N)")
    p.add_argument("--min-time", type=float, default=0.02, help="seconds per sample (0.02)")
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 7
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    todo = [(c, d) for c in cases() for d in DIRECTIONS
            if args.filter.lower() in c.label(d).lower()]
    if not todo:
        C.log(f"no case matches --filter {args.filter!r}")
        return 1
    rows = []
    for i, (case, direction) in enumerate(todo, 1):
        C.log(f"[{i}/{len(todo)}] {case.label(direction)} ...", end="")
        rows.append(run_case(case, direction, args))
        r = rows[-1]
        C.log(f" {r['speedup']:.2f}x ({r['poolext_ms']:.3f} vs {r['torch_ms']:.3f} ms, "
              f"{100 * r['poolext_frac_of_copy']:.0f}% of copy)")
    env = C.environment(suite="cpu", quick=args.quick, repeats=args.repeats,
                        filter=args.filter, command=C.command_line())
    tbl, summ = table(rows), summary(rows)
    print(tbl + "\n\n" + summ, flush=True)
    tag = "-".join(t for t in ("quick" if args.quick else "", "partial" if args.filter else "")
                   if t)
    paths = C.write_results(f"cpu-{C.slug(env['cpu'])}", env, rows, summ, tbl, args.out, tag)
    C.log("wrote " + ", ".join(map(str, paths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
