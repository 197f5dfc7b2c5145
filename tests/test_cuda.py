"""poolext on CUDA against torch.nn.functional on CUDA and against poolext on the CPU.

Skipped without a CUDA device.  POOLEXT_TEST_DEVICE=cpu runs the same suite on
the CPU kernels (the CUDA-only tests skip), which checks the suite itself.
Deselect the > 2^31-element test with -m "not huge".

The CUDA kernels follow the CPU kernels' order of operations, so CUDA and CPU
results are compared bit for bit, avg pooling and gradients included.
"""

import os

import pytest
import torch
import torch.nn.functional as TF

import poolext
import poolext.functional as PF
from cases import (FLOAT_TYPES, INT_TYPES, assert_bit_equal, avg_tolerance, empty_windows,
                   grad_tolerance, op_pair, random_args, random_input, rng_for,
                   same_memory_format)

DEVICE = os.environ.get("POOLEXT_TEST_DEVICE", "cuda")

pytestmark = pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(),
                                reason="no CUDA device")
cuda_only = pytest.mark.skipif(DEVICE != "cuda", reason="CUDA-specific")

ops = torch.ops.poolext
OPS = ["max_pool", "max_pool_backward", "max_pool_gather", "avg_pool", "avg_pool_backward"]
SEEDS = range(20)


def on_device(x):
    """x on DEVICE with the same strides (views stay views, channels_last stays)."""
    y = torch.empty_strided(x.size(), x.stride(), dtype=x.dtype, device=DEVICE)
    return y.copy_(x)


def cl_format(rank):
    return torch.channels_last if rank == 2 else torch.channels_last_3d


def keeps_torch_layout(kind, rank, x):
    # torch's avg_pool3d drops channels_last_3d; poolext keeps it, as every other op does.
    return not (kind == "avg" and rank == 3 and x.dim() == 5
                and x.is_contiguous(memory_format=torch.channels_last_3d)
                and not x.is_contiguous())


def skip_without_torch_reference(kind, rank, dtype):
    if DEVICE == "cpu" and kind == "avg" and rank == 3 and dtype in (torch.float16, torch.bfloat16):
        pytest.skip("torch has no CPU avg_pool3d for half types to compare with")


def valid_problem(rng, kind, rank, dtype):
    """(x on DEVICE, kwargs, torch's output) for a problem torch accepts."""
    theirs = op_pair(kind, rank)[1]
    for _ in range(50):
        kw = random_args(rng, kind, rank)
        x = on_device(random_input(rng, kind, rank, dtype)[0])
        try:
            return x, kw, theirs(x, **kw)
        except (RuntimeError, ValueError, TypeError, NotImplementedError):
            continue
    raise AssertionError("no valid problem drawn")


def not_empty(x, rank, kw, like):
    """Outputs whose max window has an in-bounds element."""
    return ~empty_windows(x.shape, rank, kw).to(like.device).expand_as(like)


# ---- forward -------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("dtype", FLOAT_TYPES, ids=str)
def test_max_forward(rank, dtype, seed):
    rng = rng_for("cuda-max", rank, str(dtype), seed)
    x, kw, _ = valid_problem(rng, "max", rank, dtype)
    ours, theirs = op_pair("max", rank)
    out, idx = ours(x, return_indices=True, **kw)
    ref, ref_idx = theirs(x, return_indices=True, **kw)
    assert_bit_equal(out, ref)
    assert same_memory_format(out, ref) and same_memory_format(idx, ref_idx)
    # Indices mean the same in every layout; torch's channels_last kernels
    # misreport windows whose maximum is the lowest value, so the reference is
    # its contiguous kernel, away from windows without in-bounds elements
    # (whose index torch's kernels do not agree on; the CPU comparison checks them).
    ref_idx = theirs(x.contiguous(), return_indices=True, **kw)[1]
    keep = not_empty(x, rank, kw, idx)
    assert torch.equal(idx[keep], ref_idx[keep])
    assert_bit_equal(ours(x, **kw), ref)
    # Against the CPU kernels: everything, bit for bit.
    out_cpu, idx_cpu = ours(x.cpu(), return_indices=True, **kw)
    assert_bit_equal(out.cpu(), out_cpu)
    assert torch.equal(idx.cpu(), idx_cpu)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("dtype", FLOAT_TYPES, ids=str)
def test_avg_forward(rank, dtype, seed):
    skip_without_torch_reference("avg", rank, dtype)
    rng = rng_for("cuda-avg", rank, str(dtype), seed)
    x, kw, ref = valid_problem(rng, "avg", rank, dtype)
    ours = op_pair("avg", rank)[0]
    out = ours(x, **kw)
    assert out.dtype == ref.dtype and out.shape == ref.shape
    torch.testing.assert_close(out, ref, equal_nan=True, **avg_tolerance(dtype))
    if keeps_torch_layout("avg", rank, x):
        assert same_memory_format(out, ref), (out.stride(), ref.stride())
    assert_bit_equal(out.cpu(), ours(x.cpu(), **kw))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("rank", [2, 3])
@pytest.mark.parametrize("dtype", INT_TYPES, ids=str)
def test_max_forward_integer(rank, dtype, seed):
    rng = rng_for("cuda-max-int", rank, str(dtype), seed)
    ours, theirs = op_pair("max", rank)
    while True:
        kw = random_args(rng, "max", rank)
        x_cpu = random_input(rng, "max", rank, dtype)[0]
        try:
            out_cpu, idx_cpu = ours(x_cpu, return_indices=True, **kw)
            break
        except RuntimeError:
            continue
    x = on_device(x_cpu)
    out, idx = ours(x, return_indices=True, **kw)
    assert torch.equal(out.cpu(), out_cpu) and torch.equal(idx.cpu(), idx_cpu)
    assert same_memory_format(out.cpu(), out_cpu)
    try:
        ref = theirs(x, **kw)
    except (RuntimeError, NotImplementedError):
        return  # torch has no integer max pooling on this device
    assert torch.equal(out, ref)


def test_modules():
    g = torch.Generator().manual_seed(1)
    x1 = torch.randn(2, 4, 50, generator=g).to(DEVICE)
    x2 = torch.randn(2, 8, 17, 19, generator=g).to(DEVICE)
    x3 = torch.randn(2, 4, 9, 10, 11, generator=g).to(DEVICE)
    x2cl = x2.contiguous(memory_format=torch.channels_last)
    pairs = [
        (poolext.MaxPool1d(5, 3, 2), torch.nn.MaxPool1d(5, 3, 2), x1),
        (poolext.MaxPool2d(3, 2, 1), torch.nn.MaxPool2d(3, 2, 1), x2cl),
        (poolext.MaxPool2d(2, return_indices=True, ceil_mode=True),
         torch.nn.MaxPool2d(2, return_indices=True, ceil_mode=True), x2),
        (poolext.MaxPool3d(3, 2, dilation=2), torch.nn.MaxPool3d(3, 2, dilation=2), x3),
    ]
    for ours, ref, x in pairs:
        a, b = ours(x), ref(x)
        for u, v in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
            assert_bit_equal(u, v)
            assert same_memory_format(u, v)
    avg = [
        (poolext.AvgPool1d(4, 2, 2), torch.nn.AvgPool1d(4, 2, 2), x1),
        (poolext.AvgPool2d(3, 1, 1, count_include_pad=False),
         torch.nn.AvgPool2d(3, 1, 1, count_include_pad=False), x2cl),
        (poolext.AvgPool3d(2, ceil_mode=True, divisor_override=3),
         torch.nn.AvgPool3d(2, ceil_mode=True, divisor_override=3), x3),
    ]
    for ours, ref, x in avg:
        torch.testing.assert_close(ours(x), ref(x))


# ---- backward ------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("dtype", FLOAT_TYPES, ids=str)
def test_backward(kind, rank, dtype, seed):
    skip_without_torch_reference(kind, rank, dtype)
    rng = rng_for("cuda-bwd", kind, rank, str(dtype), seed)
    ours, theirs = op_pair(kind, rank)
    x, kw, ref = valid_problem(rng, kind, rank, dtype)
    x1 = x.detach().requires_grad_()
    x4 = x.detach().cpu().requires_grad_()
    out, out_cpu = ours(x1, **kw), ours(x4, **kw)
    g = torch.randn(ref.shape, generator=torch.Generator().manual_seed(seed)).to(dtype)
    out.backward(g.to(DEVICE))
    out_cpu.backward(g)
    assert_bit_equal(x1.grad.cpu(), x4.grad)
    if kind == "max" and empty_windows(x.shape, rank, kw).any():
        # A window without in-bounds elements sends its gradient nowhere; torch
        # sends it to whatever its index names, possibly past the plane.
        return
    x2 = x.detach().clone().requires_grad_()
    ref = theirs(x2, **kw)
    ref.backward(g.to(DEVICE))
    if keeps_torch_layout(kind, rank, x):
        assert same_memory_format(x1.grad, x2.grad), (x1.grad.stride(), x2.grad.stride())
    # The reference values come from torch's contiguous CPU kernel: its channels_last 3d max
    # backward misroutes the gradient of -inf windows, and on an H100 (torch 2.11) its CUDA
    # avg_pool1d backward gave a gradient to an input no window covers (length 2, kernel 2,
    # stride 3, padding 1), where its CPU kernel gives 0.
    # torch has no CPU avg_pool3d for half types: those use its CUDA contiguous kernel.
    half_avg3d = kind == "avg" and rank == 3 and dtype in (torch.float16, torch.bfloat16)
    x3 = x.detach().contiguous().to("cpu" if not half_avg3d else x.device).requires_grad_()
    theirs(x3, **kw).backward(g.to(x3.device))
    torch.testing.assert_close(x1.grad.cpu(), x3.grad.cpu(), equal_nan=True,
                               **grad_tolerance(dtype))


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_backward_is_deterministic(kind, rank, layout):
    """Overlapping windows, many contributions per element: runs are bit-identical,
    also under torch.use_deterministic_algorithms(True), where torch's 3d pooling
    backwards refuse to run on CUDA."""
    if layout == "channels_last" and rank == 1:
        pytest.skip("no channels_last for 1d")
    g = torch.Generator().manual_seed(2)
    shape = (4, 16) + {1: (4000,), 2: (60, 70), 3: (16, 20, 24)}[rank]
    x = torch.randint(-2, 3, shape, generator=g).float().to(DEVICE)  # ties everywhere
    if layout == "channels_last":
        x = x.contiguous(memory_format=cl_format(rank))
    fn = op_pair(kind, rank)[0]
    gy = None
    grads = []
    for deterministic in (False, False, True):
        before = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(deterministic)
        try:
            xi = x.clone().requires_grad_()
            y = fn(xi, 3, 2, 1)
            gy = torch.randn(y.shape, generator=g).to(DEVICE) if gy is None else gy
            y.backward(gy)
            grads.append(xi.grad)
        finally:
            torch.use_deterministic_algorithms(before)
    assert torch.equal(grads[0], grads[1]) and torch.equal(grads[0], grads[2])


# (kind, rank, shape, kwargs): overlapping, strided, padded, dilated, ceil_mode windows.
GRAD_CASES = [
    ("max", 1, (2, 3, 11), dict(kernel_size=3, stride=2, padding=1)),
    ("max", 2, (1, 2, 7, 7), dict(kernel_size=(2, 3), stride=1, dilation=(2, 1), ceil_mode=True)),
    ("max", 2, (2, 2, 9, 7), dict(kernel_size=2, stride=(3, 1), padding=1, dilation=3)),
    ("max", 3, (1, 2, 5, 6, 5), dict(kernel_size=3, stride=2, padding=1)),
    ("avg", 1, (2, 3, 11), dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    ("avg", 2, (1, 2, 6, 6), dict(kernel_size=(3, 2), stride=1, divisor_override=5)),
    ("avg", 3, (1, 2, 5, 6, 5), dict(kernel_size=3, stride=2, padding=1, count_include_pad=False,
                                     ceil_mode=True)),
]


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("kind,rank,shape,kw", GRAD_CASES, ids=str)
def test_gradcheck_and_gradgradcheck(kind, rank, shape, kw, channels_last):
    if channels_last and (rank == 1 or len(shape) != rank + 2):
        pytest.skip("channels_last needs a batched 2d/3d input")
    n = torch.Size(shape).numel()
    # Distinct values: max pooling is differentiable at the point.
    x = (torch.randperm(n, dtype=torch.float64) / n).view(shape).to(DEVICE)
    if channels_last:
        x = x.contiguous(memory_format=cl_format(rank))
    x.requires_grad_()
    f = op_pair(kind, rank)[0]
    assert torch.autograd.gradcheck(lambda t: f(t, **kw), (x,))
    assert torch.autograd.gradgradcheck(lambda t: f(t, **kw), (x,))


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_windows_without_in_bounds_elements(layout):
    # Dilation 3 over 2 elements with padding 1: taps at -1 and 2 miss the input.  Such a
    # window gives -inf, its gradient goes nowhere and the gather at its argmax gives 0.
    g = torch.Generator().manual_seed(6)
    for rank, shape, kw in ((2, (2, 3, 9, 2), dict(kernel_size=2, stride=(3, 1), padding=1,
                                                   dilation=3)),
                            (3, (1, 2, 2, 3, 4), dict(kernel_size=2, stride=(1, 1, 2), padding=1,
                                                      dilation=(3, 3, 2), ceil_mode=True))):
        fn = op_pair("max", rank)[0]
        x_cpu = torch.randn(shape, generator=g, dtype=torch.float64)
        if layout == "channels_last":
            x_cpu = x_cpu.contiguous(memory_format=cl_format(rank))
        results = []
        for x in (on_device(x_cpu), x_cpu):
            x = x.requires_grad_()
            y, idx = fn(x, return_indices=True, **kw)
            gy = torch.linspace(-1, 1, y.numel(), dtype=x.dtype).view(y.shape).to(x.device)
            gy.requires_grad_()
            (gx,) = torch.autograd.grad(y, x, gy, create_graph=True)
            (ggy,) = torch.autograd.grad(gx, gy, torch.ones_like(gx))
            results.append([t.detach().cpu() for t in (y, idx, gx, ggy)])
        assert torch.isneginf(results[0][0]).any()
        for a, b in zip(*results):
            assert_bit_equal(a, b)


def _op_samples(name):
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 3, 9, 8, generator=g).to(DEVICE)
    x3 = torch.randn(1, 2, 5, 6, 7, generator=g).to(DEVICE)
    samples = []
    for t, rank in ((x, 2), (x.contiguous(memory_format=torch.channels_last), 2),
                    (x3.contiguous(memory_format=torch.channels_last_3d), 3), (x[0, :, 0], 1)):
        cl = t.dim() == rank + 2 and not t.is_contiguous()
        geo = ([3] * rank, [2] * rank, [1] * rank, [2] * rank, True)
        y, am, _ = ops.max_pool(t, *geo, cl, True, False)
        avg = ([3] * rank, [2] * rank, [1] * rank, True, False, None, cl)
        ya = ops.avg_pool(t, *avg)
        samples += {
            "max_pool": [(t, *geo, cl, True, True), (t, *geo, cl, False, False)],
            "max_pool_backward": [(torch.randn_like(y), am, list(t.shape), *geo, cl)],
            "max_pool_gather": [(torch.randn_like(t), am, *geo, cl)],
            "avg_pool": [(t, *avg)],
            "avg_pool_backward": [(torch.randn_like(ya), list(t.shape), *avg[:5], 2, cl)],
        }[name]
    return samples


@pytest.mark.parametrize("name", OPS)
def test_opcheck(name):
    for args in _op_samples(name):
        torch.library.opcheck(getattr(ops, name).default, args)


# ---- safety and CUDA specifics -------------------------------------------------------------

def test_foreign_argmax_is_never_an_address():
    x = torch.randn(1, 2, 5, 5, device=DEVICE)
    geo = ([3, 3], [2, 2], [1, 1], [1, 1], False, False)
    _, argmax, _ = ops.max_pool(x, *geo, True, False)
    bad = argmax.clone()
    bad[0, 0, 0, 0] = 0    # in the padding
    bad[0, 1, 1, 1] = 255  # past the 3x3 window
    got = ops.max_pool_gather(x, bad, *geo)
    assert got[0, 0, 0, 0].item() == 0 and got[0, 1, 1, 1].item() == 0
    assert_bit_equal(got.cpu(), ops.max_pool_gather(x.cpu(), bad.cpu(), *geo))
    gy = torch.ones(argmax.shape, device=DEVICE)
    gi = ops.max_pool_backward(gy, bad, list(x.shape), *geo)
    assert gi.sum().item() == gy.numel() - 2  # their gradients go nowhere
    assert_bit_equal(gi.cpu(), ops.max_pool_backward(gy.cpu(), bad.cpu(), list(x.shape), *geo))


def test_wide_windows():
    # uint16 and int32 argmax: windows over 256 and 65536 elements.
    for shape, k in (((2, 3, 40, 41), (17, 16)), ((1, 1, 262, 262), (257, 256))):
        x = torch.randn(shape, device=DEVICE, requires_grad=True)
        out, idx = PF.max_pool2d(x, k, 1, (k[0] // 2, 0), return_indices=True)
        ref, ref_idx = TF.max_pool2d(x, k, 1, (k[0] // 2, 0), return_indices=True)
        assert_bit_equal(out, ref)
        assert torch.equal(idx, ref_idx)
        g = torch.randn_like(out)
        (gx,) = torch.autograd.grad(out, x, g)
        (gr,) = torch.autograd.grad(ref, x, g)
        torch.testing.assert_close(gx, gr)


@cuda_only
def test_tensors_on_different_devices_are_refused():
    x = torch.randn(1, 2, 6, 6, device="cuda")
    geo = ([2, 2], [2, 2], [0, 0], [1, 1], False, False)
    y, argmax, _ = ops.max_pool(x, *geo, True, False)
    with pytest.raises(RuntimeError, match="argmax is on cpu"):
        ops.max_pool_backward(y, argmax.cpu(), list(x.shape), *geo)
    with pytest.raises(RuntimeError, match="must be a CUDA tensor"):
        ops.max_pool_gather(x.cpu(), argmax, *geo)


@cuda_only
def test_repeated_steps_keep_cuda_memory_flat():
    """The allocator's count of live bytes is the same after 100 more training steps."""
    x = torch.randn(8, 16, 64, 64, device="cuda").contiguous(memory_format=torch.channels_last)

    def steps(n):
        for _ in range(n):
            for fn, kw in ((PF.max_pool2d, dict(kernel_size=3, stride=2, padding=1)),
                           (PF.avg_pool2d, dict(kernel_size=3, stride=1, padding=1)),
                           (PF.max_pool3d, dict(kernel_size=2))):
                xr = (x if fn is not PF.max_pool3d else x.view(8, 16, 4, 16, 64)).detach()
                xr.requires_grad_()
                y = fn(xr, **kw)
                y.backward(torch.ones_like(y))
        torch.cuda.synchronize()

    steps(5)
    before = torch.cuda.memory_allocated()
    steps(100)
    assert torch.cuda.memory_allocated() == before


@cuda_only
def test_side_stream_and_graph_capture():
    x = torch.randn(8, 32, 64, 64, device="cuda")
    want = PF.max_pool2d(x, 3, 2, 1)
    want_avg = PF.avg_pool2d(x, 3, 2, 1)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        got = PF.max_pool2d(x, 3, 2, 1)
        got_avg = PF.avg_pool2d(x, 3, 2, 1)
    torch.cuda.current_stream().wait_stream(s)
    assert torch.equal(got, want) and torch.equal(got_avg, want_avg)
    # Nothing in the ops synchronises, so they can be captured in a CUDA graph.
    static_x = x.clone().requires_grad_()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.stream(s):  # warm-up
        PF.max_pool2d(static_x, 3, 2, 1).sum().backward()
    torch.cuda.current_stream().wait_stream(s)
    static_x.grad = None
    with torch.cuda.graph(graph):
        y = PF.max_pool2d(static_x, 3, 2, 1)
        (gx,) = torch.autograd.grad(y, static_x, torch.ones_like(y))
    with torch.no_grad():
        static_x.copy_(x * 2)
    graph.replay()
    torch.cuda.synchronize()
    assert torch.equal(y, PF.max_pool2d(x * 2, 3, 2, 1))
    xr = (x * 2).requires_grad_()
    yr = PF.max_pool2d(xr, 3, 2, 1)
    assert torch.equal(gx, torch.autograd.grad(yr, xr, torch.ones_like(yr))[0])


@cuda_only
@pytest.mark.huge
def test_over_2_pow_31_elements():
    free, _ = torch.cuda.mem_get_info()
    if free < 24e9:
        pytest.skip("needs about 24 GB of free GPU memory")
    shape = (1, 2, 32768, 32769)  # 2 147 549 184 elements > 2^31
    x = torch.empty(shape, dtype=torch.float16, device="cuda").uniform_(-1, 1)
    x.requires_grad_(True)
    y, idx = PF.max_pool2d(x, 2, 2, return_indices=True)
    assert y.shape == (1, 2, 16384, 16384)
    # Values: the max of each 2x2 block; indices: point at an element holding it.
    ref = x.detach()[..., :32768, :32768].unflatten(3, (16384, 2)).unflatten(2, (16384, 2))
    assert torch.equal(y, ref.amax(dim=(3, 5)))
    del ref
    flat = x.detach().view(1, 2, -1)
    assert torch.equal(flat.gather(2, idx.view(1, 2, -1)).view_as(y), y)
    assert torch.equal(y, TF.max_pool2d(x.detach(), 2, 2))
    # Backward: exactly the argmax positions get gradient 1.
    (gx,) = torch.autograd.grad(y, x, torch.ones_like(y))
    assert gx.count_nonzero().item() == y.numel()
    picked = gx.view(1, 2, -1).gather(2, idx.view(1, 2, -1))
    assert torch.equal(picked, torch.ones_like(picked))


# ---- adaptive pooling: the CPU op runs the same element functors, so the
# device result is compared with poolext on the CPU bit for bit.


def _adaptive_problem(rng, kind, rank, dtype):
    x, _ = random_input(rng, kind, rank, dtype)
    if x.dim() == rank + 2 and x.shape[1] == 0:
        x = x[:, :1]
    spatial = x.shape[x.dim() - rank:]
    out = tuple(rng.choice([1, L, L + 2, max(1, L // 2), rng.randint(1, L + 3)])
                for L in spatial)
    return x, out


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("dtype", FLOAT_TYPES, ids=str)
def test_adaptive_matches_cpu(kind, rank, dtype, seed):
    rng = rng_for("cuda-adaptive", kind, rank, dtype, seed)
    x, out = _adaptive_problem(rng, kind, rank, dtype)
    fn = getattr(PF, f"adaptive_{kind}_pool{rank}d")
    xd = on_device(x).requires_grad_()
    xc = x.detach().clone().requires_grad_()
    if kind == "max":
        (yd, idd), (yc, idc) = fn(xd, out, True), fn(xc, out, True)
        assert torch.equal(idd.cpu(), idc)
        assert same_memory_format(idd, idc)
    else:
        yd, yc = fn(xd, out), fn(xc, out)
    assert yd.device.type == DEVICE
    assert_bit_equal(yd.detach().cpu(), yc.detach())
    assert same_memory_format(yd, yc)
    g = torch.randn(yc.shape, generator=torch.Generator().manual_seed(seed)).to(dtype)
    yd.backward(on_device(g))
    yc.backward(g)
    assert_bit_equal(xd.grad.cpu(), xc.grad)
    assert same_memory_format(xd.grad, xc.grad)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_adaptive_gradcheck(kind, channels_last):
    x = (torch.randperm(2 * 3 * 7 * 9, dtype=torch.float64) / 400).view(2, 3, 7, 9)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x = on_device(x).requires_grad_()
    fn = getattr(PF, f"adaptive_{kind}_pool2d")
    assert torch.autograd.gradcheck(lambda t: fn(t, (4, 5)), (x,))
    assert torch.autograd.gradgradcheck(lambda t: fn(t, (4, 5)), (x,))


def test_adaptive_opcheck():
    x = on_device(torch.randn(2, 3, 9, 7))
    out, am, _ = ops.adaptive_max_pool(x, [4, 5], False, True, False)
    g = torch.randn_like(out)
    for op, args in [
        (ops.adaptive_max_pool.default, (x, [4, 5], False, True, True)),
        (ops.adaptive_max_pool_backward.default, (g, am, list(x.shape), [4, 5], False)),
        (ops.adaptive_max_pool_gather.default, (torch.randn_like(x), am, [4, 5], False)),
        (ops.adaptive_avg_pool.default, (x, [4, 5], False)),
        (ops.adaptive_avg_pool_backward.default, (g, list(x.shape), [4, 5], False)),
    ]:
        torch.library.opcheck(op, args)
