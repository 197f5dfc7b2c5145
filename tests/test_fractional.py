"""Fractional max pooling against torch: values, indices, layouts, samples, gradients, refusals."""

import copy
import pickle

import pytest
import torch
import torch.nn.functional as TF

import poolext
import poolext.functional as PF
from cases import (FLOAT_TYPES, assert_bit_equal, assert_raises_like_torch, grad_tolerance,
                   random_values, rng_for, same_memory_format)

ops = torch.ops.poolext


def _fns(rank):
    name = f"fractional_max_pool{rank}d"
    return getattr(PF, name), getattr(TF, name)


def _outcome(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs), None
    except Exception as e:  # noqa: BLE001 (the comparison is the test)
        return None, e


def _torch_words(e):
    """The part of torch's message poolext repeats: an internal assert's condition (its
    message goes on with torch's file and line), else the whole message."""
    msg = str(e)
    if "INTERNAL ASSERT FAILED" in msg:
        return msg.split(" INTERNAL ASSERT FAILED")[0]
    return msg


def assert_same_refusal(ours, theirs):
    assert ours is not None, f"torch raised {type(theirs).__name__}: {theirs}; poolext did not"
    assert_raises_like_torch(ours, theirs)
    assert _torch_words(theirs) in str(ours), (str(ours), str(theirs))


def random_problem(rng, rank, dtype, layout):
    """(input, kernel_size, output_size) within torch's rule: 2d S + k - 1 <= L, 3d < L."""
    spatial = [rng.randint(2, 14 if rank == 2 else 8) for _ in range(rank)]
    k = [rng.randint(1, min(4, L - (rank == 3))) for L in spatial]
    out = []
    for L, kk in zip(spatial, k):
        hi = L - kk + 1 - (rank == 3)
        out.append(rng.choice([1, hi, rng.randint(1, hi)]))
    n, c = rng.randint(1, 3), rng.randint(1, 4)
    shape = (n, c, *spatial)
    if layout == "unbatched":
        shape = shape[1:]
    if layout == "noncontig":
        shape = shape[:-1] + (2 * shape[-1],)
    x = random_values(rng, shape, dtype)
    if layout == "noncontig":
        x = x[..., ::2]
    elif layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last if rank == 2 else
                         torch.channels_last_3d)
    kernel = k[0] if len(set(k)) == 1 and rng.random() < 0.3 else tuple(k)
    return x, kernel, tuple(out)


def _samples(x, rank, rng):
    n = 1 if x.dim() == rank + 1 else x.shape[0]
    g = torch.Generator().manual_seed(rng.randint(0, 2**31))
    return torch.rand(n, x.shape[-rank - 1], rank, generator=g).to(x.dtype)


LAYOUTS = ["contiguous", "channels_last", "noncontig", "unbatched"]


@pytest.mark.parametrize("rank", [2, 3])
@pytest.mark.parametrize("dtype", FLOAT_TYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("seed", range(6))
def test_forward_matches_torch(rank, dtype, layout, seed):
    rng = rng_for("fractional-fwd", rank, dtype, layout, seed)
    x, k, out = random_problem(rng, rank, dtype, layout)
    samples = _samples(x, rank, rng)
    ours_fn, torch_fn = _fns(rank)
    theirs, err = _outcome(torch_fn, x, k, out, return_indices=True, _random_samples=samples)
    ours, our_err = _outcome(ours_fn, x, k, out, return_indices=True, _random_samples=samples)
    if err is not None:  # bfloat16 windows can leave the input in torch's arithmetic
        assert dtype == torch.bfloat16, err
        assert_same_refusal(our_err, err)
        return
    assert our_err is None, our_err
    (y, idx), (ry, ridx) = ours, theirs
    assert_bit_equal(y, ry)
    assert torch.equal(idx, ridx)
    assert same_memory_format(y, ry) and same_memory_format(idx, ridx)
    assert_bit_equal(ours_fn(x, k, out, _random_samples=samples), ry)  # without indices
    # samples drawn by the function itself: the same draws under the same seed
    torch.manual_seed(seed)
    ry2, err2 = _outcome(torch_fn, x, k, out)
    torch.manual_seed(seed)
    y2, our_err2 = _outcome(ours_fn, x, k, out)
    if err2 is not None:
        assert_same_refusal(our_err2, err2)
    else:
        assert_bit_equal(y2, ry2)


@pytest.mark.parametrize("rank", [2, 3])
@pytest.mark.parametrize("dtype", FLOAT_TYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("seed", range(4))
def test_backward_matches_torch(rank, dtype, layout, seed):
    rng = rng_for("fractional-bwd", rank, dtype, layout, seed)
    x, k, out = random_problem(rng, rank, dtype, layout)
    samples = _samples(x, rank, rng)
    ours_fn, torch_fn = _fns(rank)
    xa, xb = x.detach().clone().requires_grad_(), x.detach().clone().requires_grad_()
    yb, err = _outcome(torch_fn, xb, k, out, _random_samples=samples)
    if err is not None:
        assert dtype == torch.bfloat16, err
        return
    ya = ours_fn(xa, k, out, _random_samples=samples)
    g = torch.randn(ya.shape, generator=torch.Generator().manual_seed(seed)).to(dtype)
    ya.backward(g)
    yb.backward(g)
    assert xa.grad.dtype == dtype and xa.grad.stride() == xb.grad.stride()
    if dtype in (torch.float32, torch.float64):
        # torch adds each input's gradients in increasing output order; so does poolext
        assert_bit_equal(xa.grad, xb.grad)
    else:  # torch accumulates in the half type, poolext in float
        torch.testing.assert_close(xa.grad, xb.grad, **grad_tolerance(dtype))
    # torch.autograd.grad gives torch's own (contiguous) layout, not the input's
    (ga,) = torch.autograd.grad(ours_fn(xa, k, out, _random_samples=samples), xa, g)
    (gb,) = torch.autograd.grad(torch_fn(xb, k, out, _random_samples=samples), xb, g)
    assert ga.stride() == gb.stride()


def test_half_types_against_float_rule():
    # Where torch's half-type windows agree with float32's, the values are the float32
    # computation's, cast: the max picks an input element, whatever the type.
    x = torch.randn(2, 3, 13, 11)
    s = torch.tensor([0.25, 0.5]).expand(2, 3, 2)
    for dt in (torch.float16, torch.bfloat16):
        y, idx = PF.fractional_max_pool2d(x.to(dt), 2, (6, 5), return_indices=True, _random_samples=s.to(dt))
        ry, ridx = TF.fractional_max_pool2d(x, 2, (6, 5), return_indices=True,
                                            _random_samples=s)
        assert torch.equal(idx, ridx)
        assert_bit_equal(y, x.to(dt).flatten(2).gather(2, ridx.flatten(2)).view_as(y))
        assert_bit_equal(y, ry.to(dt))


@pytest.mark.parametrize("rank", [2, 3])
def test_special_values(rank):
    # Ties keep the first maximum, NaN wins (the last NaN's index), +-inf windows.
    shape = (2, 3) + (9,) * rank
    g = torch.Generator().manual_seed(5)
    x = torch.randint(-1, 2, shape, generator=g).float()
    flat = x.view(-1)
    for v, n in ((float("nan"), 30), (float("inf"), 20), (float("-inf"), 60)):
        flat[torch.randint(0, flat.numel(), (n,), generator=g)] = v
    x[0, 0] = float("-inf")  # a plane of -inf windows reports each window's first element
    x[0, 1] = float("nan")
    ours_fn, torch_fn = _fns(rank)
    s = torch.rand(2, 3, rank, generator=g)
    out = (4,) * rank
    y, idx = ours_fn(x, 3, out, return_indices=True, _random_samples=s)
    ry, ridx = torch_fn(x, 3, out, return_indices=True, _random_samples=s)
    assert_bit_equal(y, ry)
    assert torch.equal(idx, ridx)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours_fn(xa, 3, out, _random_samples=s).sum().backward()
    torch_fn(xb, 3, out, _random_samples=s).sum().backward()
    assert_bit_equal(xa.grad, xb.grad)


@pytest.mark.parametrize("value", [0.0, 0.999, 1.0, 3.0, 100.0, 1e7, 1e8, 3e9, -0.5, -3.0,
                                   -1e8, float("inf"), float("-inf"), float("nan")])
@pytest.mark.parametrize("rank", [2, 3])
def test_samples_outside_unit_interval(value, rank):
    # torch takes any sample; where its windows leave the input its CPU kernel asserts.
    shape = (1, 2) + ((40, 39) if rank == 2 else (12, 11, 10))
    out = (25, 24) if rank == 2 else (7, 6, 5)
    x = torch.randn(shape)
    s = torch.full((1, 2, rank), value)
    ours_fn, torch_fn = _fns(rank)
    theirs, err = _outcome(torch_fn, x, 2, out, return_indices=True, _random_samples=s)
    ours, our_err = _outcome(ours_fn, x, 2, out, return_indices=True, _random_samples=s)
    if err is not None:
        assert_same_refusal(our_err, err)
        return
    assert our_err is None, our_err
    assert_bit_equal(ours[0], theirs[0])
    assert torch.equal(ours[1], theirs[1])


def test_bfloat16_windows_torch_refuses():
    # bfloat16 rounds alpha and (o + u) * alpha: some samples in [0, 1) put the last windows
    # past the input, and torch's CPU kernel asserts.  poolext refuses them too, with torch's
    # condition first.
    rng = rng_for("bf16-refusals")
    refused = 0
    for _ in range(60):
        W = rng.randint(40, 250)
        kw = rng.randint(1, 3)
        ow = rng.randint(2, W - kw + 1)
        x = torch.randn(1, 1, 1, W).bfloat16()
        s = torch.tensor([[[rng.random(), 0.5]]]).bfloat16()
        theirs, err = _outcome(TF.fractional_max_pool2d, x, (1, kw), (1, ow),
                               return_indices=True, _random_samples=s)
        ours, our_err = _outcome(PF.fractional_max_pool2d, x, (1, kw), (1, ow),
                                 return_indices=True, _random_samples=s)
        if err is not None:
            refused += 1
            assert_same_refusal(our_err, err)
        else:
            assert our_err is None, our_err
            assert torch.equal(ours[1], theirs[1])
    assert refused > 0


def _distinct(shape, channels_last=False):
    x = torch.randperm(torch.Size(shape).numel(), dtype=torch.float64).view(shape) / 7
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


GRAD_CASES = [
    (2, (2, 2, 9, 8), 2, (5, 4), False),
    (2, (2, 3, 9, 8), (3, 2), (4, 6), True),
    (2, (3, 11, 7), 3, (7, 3), False),
    (3, (1, 2, 7, 6, 8), 2, (4, 3, 5), False),
    (3, (2, 6, 7, 5), (2, 3, 1), (3, 3, 4), False),
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=[str(c) for c in range(len(GRAD_CASES))])
def test_gradcheck(case):
    rank, shape, k, out, cl = case
    fn = _fns(rank)[0]
    x = _distinct(shape, cl).requires_grad_()
    n = 1 if len(shape) == rank + 1 else shape[0]
    s = torch.rand(n, shape[-rank - 1], rank, dtype=torch.float64)
    f = lambda t: fn(t, k, out, _random_samples=s)  # noqa: E731
    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))


@pytest.mark.parametrize("rank", [2, 3])
def test_saves_only_argmax_and_samples(rank):
    shape = (2, 3) + (9,) * rank
    x = torch.randn(shape, requires_grad=True)
    s = torch.rand(2, 3, rank)
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = _fns(rank)[0](x, 3, (5,) * rank, _random_samples=s)
    assert len(saved) == 2
    assert saved[0].dtype == torch.uint8 and saved[0].shape == y.shape
    assert torch.equal(saved[1], s)


def test_large_windows_use_wider_argmax():
    x = torch.randn(1, 2, 40, 41, dtype=torch.float64, requires_grad=True)
    s = torch.rand(1, 2, 2, dtype=torch.float64)
    y, idx = PF.fractional_max_pool2d(x, 17, (9, 12), return_indices=True, _random_samples=s)
    out, am, _ = ops.fractional_max_pool(x.detach(), [17, 17], [9, 12], s, False, True, False)
    assert am.dtype == torch.int16  # 289 taps
    xb = x.detach().clone().requires_grad_()
    ry, ridx = TF.fractional_max_pool2d(xb, 17, (9, 12), return_indices=True,
                                        _random_samples=s)
    assert_bit_equal(y, ry) and torch.equal(idx, ridx)
    g = torch.randn_like(y)
    y.backward(g)
    ry.backward(g)
    assert_bit_equal(x.grad, xb.grad)


@pytest.mark.parametrize("rank", [2, 3])
def test_empty_outputs_and_batches(rank):
    ours_fn, torch_fn = _fns(rank)
    cases = [((0, 3) + (8,) * rank, (3,) * rank), ((2, 3) + (8,) * rank, (0,) + (3,) * (rank - 1)),
             ((0,) + (8,) * rank, (3,) * rank)]
    for shape, out in cases:
        x = torch.randn(shape, requires_grad=True)
        y, idx = ours_fn(x, 2, out, return_indices=True)
        ry, ridx = torch_fn(x, 2, out, return_indices=True)
        assert y.shape == ry.shape and idx.shape == ridx.shape and idx.dtype == ridx.dtype
        y.sum().backward()
        assert x.grad.shape == x.shape and not x.grad.any()
    # an empty output is returned before torch refuses a dtype
    xi = torch.zeros((2, 3) + (8,) * rank, dtype=torch.int64)
    si = torch.zeros(2, 3, rank, dtype=torch.int64)
    out = (0,) + (3,) * (rank - 1)
    y = ours_fn(xi, 2, out, _random_samples=si)
    ry = torch_fn(xi, 2, out, _random_samples=si)
    assert y.shape == ry.shape and y.dtype == ry.dtype


def _refusal_cases(rank):
    x = torch.randn((2, 3) + ((10, 9) if rank == 2 else (8, 7, 9)))
    s = torch.rand(2, 3, rank)
    big = (30,) * rank
    ok = (3,) * rank
    return [
        ((x, 2), {}),  # neither output_size nor output_ratio
        ((x, 2), dict(output_ratio=(0.5,) * (rank + 1))),
        ((x, 2), dict(output_ratio=0.5)),  # 2d: len() of a float
        ((x, 2), dict(output_ratio=(0.5,))),
        ((x, 2), dict(output_ratio=(1.5,) * rank)),
        ((x, 2), dict(output_ratio=(-0.5,) * rank)),
        ((x, 2.5), dict(output_size=ok)),
        ((x, 2), dict(output_size=3.0)),
        ((x, 2), dict(output_size=(3.0,) * rank)),
        ((x, 2), dict(output_size=True)),
        ((x, None), dict(output_size=ok)),
        ((x, (2,) * (rank + 1)), dict(output_size=ok)),
        ((x, [2]), dict(output_size=ok)),
        ((x, 2), dict(output_size=(3,) * (rank + 1))),
        ((x, 0), dict(output_size=ok)),
        ((x, (1, 0, 2)[:rank]), dict(output_size=big)),
        ((x, -1), dict(output_size=ok)),
        ((torch.randn((1, 2, 3) + x.shape[2:]), 2), dict(output_size=ok)),
        ((torch.randn(x.shape[2:]), 2), dict(output_size=ok)),
        ((torch.randn(5), 2), dict(output_size=ok)),
        ((torch.randn((2, 0) + x.shape[2:]), 2), dict(output_size=ok)),
        ((torch.randn((2, 3, 0) + x.shape[3:]), 2), dict(output_size=ok)),
        ((x[0, :, :0], 2), dict(output_size=ok)),
        ((x, 2), dict(output_size=big)),
        ((x, 2), dict(output_size=(3,) * (rank - 1) + (30,))),
        ((x, 2), dict(output_size=(3, 30, 3)[:rank])),
        ((x, 2), dict(output_size=tuple(x.shape[2:]))),
        ((x, tuple(x.shape[2:])), dict(output_size=1)),
        ((x, 2), dict(output_size=(-1,) + ok[1:])),
        ((x, 2), dict(output_size=ok, _random_samples=s.double())),
        ((x, 2), dict(output_size=ok, _random_samples=s[0])),
        ((x, 2), dict(output_size=ok, _random_samples=s[:1])),
        ((x, 2), dict(output_size=ok, _random_samples=s[:, :2])),
        ((x, 2), dict(output_size=ok, _random_samples=torch.rand(2, 3, rank + 1))),
        ((x, 2), dict(output_size=big, _random_samples=torch.rand(2, 3, rank + 1))),
        ((x, 2), dict(output_size=ok, _random_samples=s.clone().requires_grad_())),
        ((x, 2), dict(output_size=big, _random_samples=s.clone().requires_grad_())),
        ((x.long(), 2), dict(output_size=ok)),
        ((x > 0, 2), dict(output_size=ok)),
        ((x.long(), 2), dict(output_size=ok, _random_samples=s.long())),
        ((x.to(torch.complex64), 2), dict(output_size=ok)),
        ((x, 2), dict(output_size=ok, _random_samples=torch.full((2, 3, rank), -1e8))),
    ]


@pytest.mark.parametrize("rank", [2, 3])
def test_refuses_where_torch_refuses(rank):
    ours_fn, torch_fn = _fns(rank)
    refused = 0
    for i, (args, kwargs) in enumerate(_refusal_cases(rank)):
        theirs, err = _outcome(torch_fn, *args, **kwargs)
        ours, our_err = _outcome(ours_fn, *args, **kwargs)
        if err is None:
            assert our_err is None, (i, our_err)
            a = ours[0] if isinstance(ours, tuple) else ours
            b = theirs[0] if isinstance(theirs, tuple) else theirs
            assert a.shape == b.shape and a.dtype == b.dtype, i
        else:
            refused += 1
            assert_same_refusal(our_err, err)
    assert refused >= 30


def test_module_refusals_are_torchs():
    # The constructors are torch's own: same checks, same words.
    for args, kwargs in [((2,), {}), ((2,), dict(output_size=3, output_ratio=0.5)),
                         ((2,), dict(output_ratio=1.0))]:
        for name in ("FractionalMaxPool2d", "FractionalMaxPool3d"):
            _, err = _outcome(getattr(torch.nn, name), *args, **kwargs)
            _, our_err = _outcome(getattr(poolext, name), *args, **kwargs)
            assert_same_refusal(our_err, err)


def test_direct_op_calls_refuse_bad_arguments():
    x = torch.randn(2, 3, 9, 8)
    s = torch.rand(2, 3, 2)
    out, am, _ = ops.fractional_max_pool(x, [2, 2], [4, 4], s, False, True, False)
    bad = [
        lambda: ops.fractional_max_pool(x, [2, 2], [4, 4], s[:1], False, True, False),
        lambda: ops.fractional_max_pool(x, [2, 2], [4, 4], s[..., :1], False, True, False),
        lambda: ops.fractional_max_pool(x, [2, 2], [4, 4], s.double(), False, True, False),
        lambda: ops.fractional_max_pool(x, [2, 2], [9, 4], s, False, True, False),
        lambda: ops.fractional_max_pool(x, [2, 0], [4, 4], s, False, True, False),
        lambda: ops.fractional_max_pool(x, [2], [4, 4], s, False, True, False),
        lambda: ops.fractional_max_pool(x, [2, 2, 2, 2], [4] * 4, s, False, True, False),
        lambda: ops.fractional_max_pool(x.long(), [2, 2], [4, 4], s.long(), False, True, False),
        # windows past the input (from samples far outside [0, 1))
        lambda: ops.fractional_max_pool(torch.randn(1, 1, 40, 39), [2, 2], [25, 24],
                                        torch.full((1, 1, 2), -1e8), False, True, False),
        lambda: ops.fractional_max_pool_backward(out, am.int(), s, list(x.shape), [2, 2], False),
        lambda: ops.fractional_max_pool_backward(out, am, s[:1], list(x.shape), [2, 2], False),
        lambda: ops.fractional_max_pool_backward(out[:, :2], am, s, list(x.shape), [2, 2], False),
        lambda: ops.fractional_max_pool_backward(out, am, s, [2, 3, 9], [2, 2], False),
        lambda: ops.fractional_max_pool_gather(x, am[:, :, :3], s, [2, 2], [4, 4], False),
        lambda: ops.fractional_max_pool_gather(x, am, s, [2, 2], [8, 4], False),
    ]
    for i, f in enumerate(bad):
        with pytest.raises(RuntimeError):
            f()
    # A foreign argmax naming taps past the window gathers nothing.
    junk = torch.full_like(am, 255)
    assert not ops.fractional_max_pool_gather(x, junk, s, [2, 2], [4, 4], False).any()
    # ... and sends no gradient anywhere, in either layout of grad_input
    g = torch.ones(junk.shape)
    for cl in (False, True):
        assert not ops.fractional_max_pool_backward(g, junk, s, list(x.shape), [2, 2], cl).any()


def _op_samples():
    x = torch.randn(2, 3, 9, 7)
    xc = x.contiguous(memory_format=torch.channels_last)
    s = torch.rand(2, 3, 2)
    x3 = torch.randn(1, 2, 6, 7, 5)
    s3 = torch.rand(1, 2, 3)
    out, am, _ = ops.fractional_max_pool(x, [2, 3], [4, 5], s, False, True, False)
    out3, am3, _ = ops.fractional_max_pool(x3, [2, 2, 2], [3, 4, 2], s3, False, True, False)
    g = torch.randn_like(out)
    return [
        (ops.fractional_max_pool.default, (x, [2, 3], [4, 5], s, False, True, True)),
        (ops.fractional_max_pool.default, (xc, [2, 3], [4, 5], s, True, False, True)),
        (ops.fractional_max_pool.default, (x[0], [2, 3], [4, 5], s[:1], False, True, False)),
        (ops.fractional_max_pool.default, (x3, [2, 2, 2], [3, 4, 2], s3, False, True, True)),
        (ops.fractional_max_pool_backward.default, (g, am, s, list(x.shape), [2, 3], False)),
        (ops.fractional_max_pool_backward.default, (g, am, s, list(x.shape), [2, 3], True)),
        (ops.fractional_max_pool_backward.default,
         (torch.randn_like(out3), am3, s3, list(x3.shape), [2, 2, 2], False)),
        (ops.fractional_max_pool_gather.default, (torch.randn_like(x), am, s, [2, 3], [4, 5],
                                                  False)),
        (ops.fractional_max_pool_gather.default, (torch.randn_like(xc), am, s, [2, 3], [4, 5],
                                                  True)),
    ]


@pytest.mark.parametrize("i", range(9))
def test_opcheck(i):
    op, args = _op_samples()[i]
    torch.library.opcheck(op, args)


def test_every_fractional_op_is_opchecked():
    covered = {op._overloadpacket._qualified_op_name for op, _ in _op_samples()}
    assert covered == {f"poolext::fractional_{n}" for n in (
        "max_pool", "max_pool_backward", "max_pool_gather")}


def test_backward_layouts_agree():
    # channels_last grad_input (a direct op option) holds the same numbers.
    x = torch.randn(2, 3, 9, 7)
    s = torch.rand(2, 3, 2)
    out, am, _ = ops.fractional_max_pool(x, [2, 3], [4, 5], s, False, True, False)
    g = torch.randn_like(out)
    a = ops.fractional_max_pool_backward(g, am, s, list(x.shape), [2, 3], False)
    b = ops.fractional_max_pool_backward(g, am, s, list(x.shape), [2, 3], True)
    assert b.is_contiguous(memory_format=torch.channels_last)
    assert_bit_equal(a, b.contiguous())
    # the gather is the backward's adjoint: <backward(g), v> == <g, gather(v)>
    v = torch.randn_like(x, dtype=torch.float64)
    am64, g64, s64 = am, g.double(), s.double()
    lhs = (ops.fractional_max_pool_backward(g64, am64, s64, list(x.shape), [2, 3], False) *
           v).sum()
    rhs = (g64 * ops.fractional_max_pool_gather(v, am64, s64, [2, 3], [4, 5], False)).sum()
    torch.testing.assert_close(lhs, rhs)


MODULES = [
    ("FractionalMaxPool2d", (2,), dict(output_size=(5, 4)), (2, 3, 11, 9)),
    ("FractionalMaxPool2d", ((3, 2),), dict(output_ratio=(0.5, 0.6)), (3, 11, 9)),
    ("FractionalMaxPool2d", (2,), dict(output_ratio=0.5, return_indices=True), (2, 3, 11, 9)),
    ("FractionalMaxPool3d", (2,), dict(output_size=(3, 4, 2)), (1, 2, 6, 7, 5)),
    ("FractionalMaxPool3d", ((2, 1, 2),), dict(output_ratio=0.5, return_indices=True),
     (2, 6, 7, 5)),
]


@pytest.mark.parametrize("name,args,kwargs,shape", MODULES,
                         ids=[f"{m[0]}-{i}" for i, m in enumerate(MODULES)])
def test_modules(name, args, kwargs, shape):
    ours, theirs = getattr(poolext, name)(*args, **kwargs), getattr(torch.nn, name)(*args,
                                                                                  **kwargs)
    assert isinstance(ours, type(theirs))
    assert repr(ours) == repr(theirs)
    x = torch.randn(shape)
    torch.manual_seed(3)
    a = ours(x)
    torch.manual_seed(3)
    b = theirs(x)
    a, b = (a, b) if isinstance(a, tuple) else ((a,), (b,))
    for u, v in zip(a, b):
        assert_bit_equal(u, v)
    # fixed samples, as a buffer: deterministic, and kept by state_dict, deepcopy and pickle
    rank = int(name[-2])
    n = 1 if len(shape) == rank + 1 else shape[0]
    s = torch.rand(n, shape[-rank - 1], rank)
    ours = getattr(poolext, name)(*args, **kwargs, _random_samples=s)
    theirs = getattr(torch.nn, name)(*args, **kwargs, _random_samples=s)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for clone in (ours, copy.deepcopy(ours), pickle.loads(pickle.dumps(ours))):
        assert type(clone) is type(ours) and repr(clone) == repr(ours)
        u, v = clone(x), theirs(x)
        u, v = (u, v) if isinstance(u, tuple) else ((u,), (v,))
        for p, q in zip(u, v):
            assert_bit_equal(p, q)


def test_indices_feed_max_unpool():
    x = torch.randn(2, 3, 11, 10)
    s = torch.rand(2, 3, 2)
    y, idx = PF.fractional_max_pool2d(x, 2, (6, 5), return_indices=True, _random_samples=s)
    ry, ridx = TF.fractional_max_pool2d(x, 2, (6, 5), return_indices=True, _random_samples=s)
    assert torch.equal(TF.max_unpool2d(y, idx, 2, output_size=x.shape[-2:]),
                       TF.max_unpool2d(ry, ridx, 2, output_size=x.shape[-2:]))


@pytest.mark.parametrize("rank", [2, 3])
def test_autocast_like_torch(rank):
    # torch's CPU autocast lists fractional_max_pool{2,3}d as float32 ops: a bfloat16 input
    # (and its bfloat16 samples, drawn before the cast) pool in float32.
    ours_fn, torch_fn = _fns(rank)
    x = torch.randn((2, 3) + (9,) * rank).bfloat16().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.manual_seed(4)
        y = ours_fn(x, 2, (4,) * rank)
        torch.manual_seed(4)
        ry = torch_fn(x, 2, (4,) * rank)
    assert y.dtype == ry.dtype == torch.float32
    assert_bit_equal(y, ry)
    y.sum().backward()
    assert x.grad.dtype == torch.bfloat16


@pytest.mark.slow
def test_torch_compile_fullgraph():
    def f(mod, x, s2, s3):
        y = torch.relu(x)
        a = mod.fractional_max_pool2d(y, 2, (5, 4), _random_samples=s2)
        b, i = mod.fractional_max_pool3d(y.unsqueeze(1), (1, 2, 2), (1, 4, 3),
                                         return_indices=True, _random_samples=s3)
        return a.sum((-1, -2)) + b.flatten(2).sum(-1).squeeze(1).sum(-1, keepdim=True), i

    x = torch.randn(2, 3, 11, 9)
    s2, s3 = torch.rand(2, 3, 2), torch.rand(2, 1, 3)
    compiled = torch.compile(lambda *a: f(PF, *a), fullgraph=True)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    (ya, ia), (yb, ib) = compiled(xa, s2, s3), f(TF, xb, s2, s3)
    torch.testing.assert_close(ya, yb)  # inductor fuses the sums in its own order
    assert torch.equal(ia, ib)
    ya.sum().backward()
    yb.sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("rank", [2, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_matches_cpu(rank, dtype):
    """Same samples, same windows (float and double compute them alike on both devices):
    values, indices and gradients equal to the CPU's bit for bit, in both layouts."""
    assert poolext.cuda_kernels_built()
    fn = getattr(PF, f"fractional_max_pool{rank}d")
    g = torch.Generator().manual_seed(rank)
    for trial in range(6):
        shape = (2, 3) + tuple(int(v) for v in torch.randint(5, 12, (rank,), generator=g))
        x = torch.randint(-3, 4, shape, generator=g).to(dtype)  # ties
        x.view(-1)[::7] = float("nan") if trial % 2 else float("inf")
        if trial % 3 == 2:
            x = x.contiguous(memory_format=torch.channels_last if rank == 2
                             else torch.channels_last_3d)
        s = torch.rand(2, 3, rank, dtype=dtype, generator=g)
        k = (2,) * rank
        out = tuple(max(1, L // 2) for L in shape[-rank:])
        xc, xg = x.clone().requires_grad_(), x.cuda().requires_grad_()
        yc, ic = fn(xc, k, output_size=out, return_indices=True, _random_samples=s)
        yg, ig = fn(xg, k, output_size=out, return_indices=True, _random_samples=s.cuda())
        assert torch.equal(ic, ig.cpu())
        torch.testing.assert_close(yg.cpu(), yc, rtol=0, atol=0, equal_nan=True)
        go = torch.randn(yc.shape, dtype=dtype, generator=g)
        yc.backward(go)
        yg.backward(go.cuda())
        torch.testing.assert_close(xg.grad.cpu(), xc.grad, rtol=0, atol=0)
