"""PyTorch's transforms over poolext against the same transforms over torch.nn.functional:
torch.func's grad, vmap, vmap(grad), jvp, jacrev, jacfwd, hessian, torch.autograd.forward_ad,
grad of grad and jvp of vjp, for every op, in float64, contiguous and channels_last."""

import pytest
import torch
import torch.autograd.forward_ad as fwad
import torch.nn.functional as TF
from torch.func import grad, hessian, jacfwd, jacrev, jvp, vjp, vmap

import poolext.functional as PF


def _unpool_call(fns, rank, **kw):
    """max_unpool of a max_pool of x: both from the same library."""
    def f(lib):
        pool, unpool = getattr(lib, f"max_pool{rank}d"), getattr(lib, f"max_unpool{rank}d")

        def run(x):
            y, idx = pool(x, 2, 2, return_indices=True)
            return unpool(y, idx, 2, 2, output_size=x.shape[-rank:])
        return run
    return f


# (name, rank, kwargs for the op, or a factory of the call from a library)
OPS = [
    ("max_pool1d", 1, dict(kernel_size=3, stride=2, padding=1)),
    ("max_pool2d", 2, dict(kernel_size=3, stride=2, padding=1)),
    ("max_pool2d", 2, dict(kernel_size=2, dilation=2, ceil_mode=True)),
    ("max_pool3d", 3, dict(kernel_size=2, stride=(1, 2, 2))),
    ("avg_pool1d", 1, dict(kernel_size=3, stride=2, padding=1)),
    ("avg_pool2d", 2, dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    ("avg_pool2d", 2, dict(kernel_size=2, ceil_mode=True, divisor_override=3)),
    ("avg_pool3d", 3, dict(kernel_size=2, stride=1)),
    ("adaptive_max_pool1d", 1, dict(output_size=4)),
    ("adaptive_max_pool2d", 2, dict(output_size=(4, 3))),
    ("adaptive_max_pool3d", 3, dict(output_size=2)),
    ("adaptive_avg_pool1d", 1, dict(output_size=4)),
    ("adaptive_avg_pool2d", 2, dict(output_size=(4, 3))),
    ("adaptive_avg_pool2d", 2, dict(output_size=1)),
    ("adaptive_avg_pool3d", 3, dict(output_size=(2, 3, 2))),
    ("lp_pool1d", 1, dict(norm_type=2, kernel_size=2)),
    ("lp_pool2d", 2, dict(norm_type=3, kernel_size=3, stride=2, ceil_mode=True)),
    ("lp_pool3d", 3, dict(norm_type=1.5, kernel_size=2)),
    ("fractional_max_pool2d", 2, dict(kernel_size=2, output_size=(4, 3))),
    ("fractional_max_pool3d", 3, dict(kernel_size=(2, 1, 2), output_size=(3, 4, 2))),
    ("max_unpool1d", 1, _unpool_call),
    ("max_unpool2d", 2, _unpool_call),
    ("max_unpool3d", 3, _unpool_call),
]
IDS = [f"{n}-{i}" for i, (n, _, _) in enumerate(OPS)]


# fixed samples for fractional max pooling, sliced to each input's N and C
SAMPLES = {r: torch.rand(4, 3, r, dtype=torch.float64, generator=torch.Generator().manual_seed(r))
           for r in (2, 3)}


def _fns(case):
    name, rank, kw = case
    if callable(kw):
        make = kw(None, rank)
        return make(PF), make(TF)
    if name.startswith("fractional"):
        def call(lib):
            def run(x):
                n = x.shape[0] if x.dim() == rank + 2 else 1
                samples = SAMPLES[rank][:n, :x.shape[-rank - 1]]
                return getattr(lib, name)(x, _random_samples=samples, **kw)
            return run
        return call(PF), call(TF)
    return (lambda x: getattr(PF, name)(x, **kw)), (lambda x: getattr(TF, name)(x, **kw))


def _input(rank, channels_last=False, batch=2):
    g = torch.Generator().manual_seed(rank)
    x = torch.rand((batch, 3) + (7, 6, 5)[:rank], dtype=torch.float64, generator=g) + 0.1
    if channels_last and rank > 1:
        x = x.contiguous(memory_format=torch.channels_last if rank == 2 else
                         torch.channels_last_3d)
    return x


def _same(a, b):
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


LAYOUTS = [False, True]


@pytest.mark.parametrize("channels_last", LAYOUTS)
@pytest.mark.parametrize("case", OPS, ids=IDS)
def test_grad_vmap_and_vmap_of_grad(case, channels_last):
    ours, theirs = _fns(case)
    x = _input(case[1], channels_last)
    _same(grad(lambda t: ours(t).sin().sum())(x), grad(lambda t: theirs(t).sin().sum())(x))
    _same(vmap(ours)(x), vmap(theirs)(x))
    _same(vmap(vmap(ours))(x.unsqueeze(0)), vmap(vmap(theirs))(x.unsqueeze(0)))
    _same(vmap(grad(lambda t: ours(t).sin().sum()))(x),
          vmap(grad(lambda t: theirs(t).sin().sum()))(x))
    # vmap over a dim other than the first, and over a batched input with its own N
    _same(vmap(ours, in_dims=1, out_dims=1)(x.unsqueeze(1).expand(-1, 2, *x.shape[1:])),
          vmap(theirs, in_dims=1, out_dims=1)(x.unsqueeze(1).expand(-1, 2, *x.shape[1:])))


@pytest.mark.parametrize("channels_last", LAYOUTS)
@pytest.mark.parametrize("case", OPS, ids=IDS)
def test_forward_mode(case, channels_last):
    ours, theirs = _fns(case)
    x = _input(case[1], channels_last)
    t = torch.randn(x.shape, dtype=x.dtype, generator=torch.Generator().manual_seed(3))
    (yo, to), (yt, tt) = jvp(ours, (x,), (t,)), jvp(theirs, (x,), (t,))
    _same(yo, yt)
    _same(to, tt)
    with fwad.dual_level():
        a = fwad.unpack_dual(ours(fwad.make_dual(x, t))).tangent
        b = fwad.unpack_dual(theirs(fwad.make_dual(x, t))).tangent
    assert a is not None
    _same(a, b)


@pytest.mark.parametrize("case", OPS, ids=IDS)
def test_jacobians_and_hessian(case):
    ours, theirs = _fns(case)
    x = _input(case[1], batch=1)[:, :1]
    _same(jacrev(ours)(x), jacrev(theirs)(x))
    _same(jacfwd(ours)(x), jacfwd(theirs)(x))
    _same(hessian(lambda t: ours(t).pow(3).sum())(x),
          hessian(lambda t: theirs(t).pow(3).sum())(x))


@pytest.mark.parametrize("case", OPS, ids=IDS)
def test_grad_of_grad_and_jvp_of_vjp(case):
    ours, theirs = _fns(case)
    x = _input(case[1])
    v = torch.randn(x.shape, dtype=x.dtype, generator=torch.Generator().manual_seed(5))

    def gg(f):
        return grad(lambda t: (grad(lambda s: f(s).pow(2).sum())(t) * v).sum())(x)

    _same(gg(ours), gg(theirs))

    def jv(f):
        y, pull = vjp(f, x)
        cot = torch.ones_like(y)
        return jvp(lambda t: vjp(f, t)[1](cot)[0], (x,), (v,))[1]

    _same(jv(ours), jv(theirs))


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_return_indices_under_vmap_and_jvp(rank):
    x = _input(rank)
    for kind, kw in (("max_pool", dict(kernel_size=2)), ("adaptive_max_pool", dict(output_size=3))):
        o, t = getattr(PF, f"{kind}{rank}d"), getattr(TF, f"{kind}{rank}d")
        (yo, io), (yt, it) = vmap(lambda s: o(s, return_indices=True, **kw))(x), \
            vmap(lambda s: t(s, return_indices=True, **kw))(x)
        _same(yo, yt)
        assert torch.equal(io, it)
        tan = torch.ones_like(x)
        (po, to), (pt, tt) = jvp(lambda s: o(s, return_indices=True, **kw)[0], (x,), (tan,)), \
            jvp(lambda s: t(s, return_indices=True, **kw)[0], (x,), (tan,))
        _same(to, tt)


def test_compile_still_traces_the_plain_functions():
    """The Functions torch.compile sees have no jvp (dynamo refuses those): fullgraph works."""
    x = torch.rand(2, 3, 8, 8, requires_grad=True)

    def f(t):
        return (PF.max_pool2d(t, 2).sum() + PF.avg_pool2d(t, 3).sum() +
                PF.lp_pool2d(t, 2, 2).sum() + PF.adaptive_max_pool2d(t, 3).sum())

    y = torch.compile(f, fullgraph=True, backend="aot_eager")(x)
    (g1,) = torch.autograd.grad(y, x)
    (g2,) = torch.autograd.grad(f(x), x)
    torch.testing.assert_close(g1, g2)


def test_forward_mode_of_unbatched_channels_last_max_pool3d():
    """The CPU path that pools an unbatched 4-D channels-last input as its batch of one (and
    hands back a contiguous input gradient) carries tangents too."""
    x = torch.rand(1, 3, 6, 5, 4, dtype=torch.float64).contiguous(
        memory_format=torch.channels_last_3d)[0]
    assert not x.is_contiguous()
    t = torch.randn(x.shape, dtype=x.dtype, generator=torch.Generator().manual_seed(2))
    _same(jvp(lambda s: PF.max_pool3d(s, 2), (x,), (t,))[1],
          jvp(lambda s: TF.max_pool3d(s, 2), (x,), (t,))[1])
    with fwad.dual_level():
        a = fwad.unpack_dual(PF.max_pool3d(fwad.make_dual(x, t), 2)).tangent
        b = fwad.unpack_dual(TF.max_pool3d(fwad.make_dual(x, t), 2)).tangent
    _same(a, b)
    assert torch.autograd.gradcheck(lambda s: PF.max_pool3d(s, 2),
                                    (x.clone().requires_grad_(),), check_forward_ad=True)
