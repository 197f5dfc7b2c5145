"""poolext under torch.autocast behaves as torch's pooling does.

Most pooling ops are in none of autocast's cast lists: torch pools in the input's
dtype (a bfloat16 conv output is pooled in bfloat16, a float32 tensor stays
float32), and poolext's ops, which have no Autocast kernels, do the same.  On the
CPU torch puts max_pool3d, avg_pool3d, adaptive_{max,avg}_pool3d and
max_unpool{2,3}d on its float32 list; poolext casts where torch does
(poolext/_autocast.py).  These tests check that the functions, the modules and
conv -> pool -> linear models give torch's dtypes, values and gradients under
autocast on the CPU (bfloat16 and float16) and, where a GPU and poolext's CUDA
kernels are present, on CUDA.

Forward values of max pooling are bit-identical.  In float16/bfloat16, gradients
where windows overlap may differ from torch's in the last bit: torch adds the
contributions one by one in the low dtype, poolext sums them in float and rounds
once; they are compared within that rounding.
"""

import copy

import pytest
import torch
import torch.nn.functional as TF
from torch import nn

import poolext
import poolext.functional as PF
import poolext.modules as PM
from poolext._autocast import FLOAT32_OPS


def _devices():
    out = [pytest.param("cpu", torch.bfloat16, id="cpu-bf16"),
           pytest.param("cpu", torch.float16, id="cpu-fp16")]
    gpu = torch.cuda.is_available() and poolext.cuda_kernels_built()
    why = "needs a GPU and poolext's CUDA kernels"
    for dt, name in ((torch.float16, "fp16"), (torch.bfloat16, "bf16")):
        out.append(pytest.param("cuda", dt, id=f"cuda-{name}",
                                marks=pytest.mark.skipif(not gpu, reason=why)))
    return out


DEVICES = _devices()

SHAPES = {1: (2, 4, 13), 2: (2, 4, 9, 10), 3: (2, 3, 5, 6, 7)}
UNPOOL_SHAPES = {1: (2, 4, 12), 2: (2, 4, 8, 10), 3: (2, 3, 4, 6, 6)}


def _func_cases():
    """(function name, input shape, args, kwargs); overlapping windows on purpose."""
    out = []
    for r in (1, 2, 3):
        out += [
            (f"max_pool{r}d", SHAPES[r], (3, 2, 1), {}),
            (f"max_pool{r}d", SHAPES[r], (3, 2, 1), dict(return_indices=True)),
            (f"avg_pool{r}d", SHAPES[r], (3, 2, 1), {}),
            (f"adaptive_max_pool{r}d", SHAPES[r], (4 if r < 3 else 2,), {}),
            (f"adaptive_max_pool{r}d", SHAPES[r], (4 if r < 3 else 2,), dict(return_indices=True)),
            (f"adaptive_avg_pool{r}d", SHAPES[r], (4 if r < 3 else 2,), {}),
            (f"max_unpool{r}d", UNPOOL_SHAPES[r], (2,), {}),
        ]
    return [pytest.param(*c, id=c[0] + ("-indices" if c[3] else "")) for c in out]


def need(module, name):
    """poolext has ``name`` (every torch.nn.functional pooling function has a twin)."""
    assert hasattr(module, name), f"{module.__name__} has no {name}"


def assert_same(name, ours, theirs, exact):
    """Same dtype and shape; values bit for bit when ``exact``, else within rounding."""
    assert ours.dtype == theirs.dtype, f"{name}: poolext {ours.dtype}, torch {theirs.dtype}"
    assert ours.shape == theirs.shape
    if exact:
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0, msg=name)
    elif ours.dtype in (torch.float16, torch.bfloat16):
        # a few roundings of the low dtype, relative to the tensor's scale
        eps = torch.finfo(ours.dtype).eps
        scale = theirs.float().abs().max().item()
        torch.testing.assert_close(ours.float(), theirs.float(), rtol=2 * eps,
                                   atol=2 * eps * scale, msg=name)
    else:
        torch.testing.assert_close(ours, theirs, msg=name)


def call(fn, name, x, args, kwargs):
    """fn(x, *args, **kwargs); for unpooling: max-pool x with indices, then unpool.
    Returns (first output, the tensor the gradient is taken for)."""
    if name.startswith("max_unpool"):
        rank = int(name[-2])
        with torch.no_grad():
            vals, idx = getattr(TF, f"max_pool{rank}d")(x.float(), 2, 2, return_indices=True)
        vals = vals.to(x.dtype).requires_grad_()
        y = fn(vals, idx, *args, output_size=x.shape[-rank:], **kwargs)
        return y, vals
    x = x.detach().requires_grad_()
    y = fn(x, *args, **kwargs)
    return (y[0] if isinstance(y, tuple) else y), x


@pytest.mark.parametrize("device,low", DEVICES)
@pytest.mark.parametrize("in_dtype", ["float32", "low"], ids=["in-fp32", "in-low"])
@pytest.mark.parametrize("name,shape,args,kwargs", _func_cases())
def test_functional_under_autocast(name, shape, args, kwargs, in_dtype, device, low):
    need(PF, name)
    dtype = torch.float32 if in_dtype == "float32" else low
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(device, dtype)
    res = []
    for fn in (getattr(PF, name), getattr(TF, name)):
        with torch.autocast(device, dtype=low):
            y, leaf = call(fn, name, x, args, kwargs)
        g = torch.randn(y.shape, generator=torch.Generator().manual_seed(1))
        y.backward(g.to(device=device, dtype=y.dtype))
        res.append((y.detach(), leaf.grad))
    (y_o, g_o), (y_t, g_t) = res
    # torch pools in the input's dtype, or in float32 where the op is on autocast's list
    assert y_t.dtype in (dtype, torch.float32)
    assert g_t.dtype == dtype, "the gradient comes back in the input's dtype"
    is_max = "max" in name
    assert_same(name, y_o, y_t, exact=is_max)
    # torch's CUDA 3d max backward adds the gradients of overlapping windows
    # with atomics, in no fixed order, so its float sums may round otherwise.
    atomic = device == "cuda" and name.endswith("max_pool3d")
    assert_same(name + " grad", g_o, g_t,
                exact=is_max and y_t.dtype == torch.float32 and not atomic)


def test_float32_list_as_expected():
    """The ops read from the dispatcher as autocast-float32 on the CPU, as this torch has them
    (a new torch may move ops on or off the list; poolext follows it without change)."""
    cpu = {op for op, dev in FLOAT32_OPS if dev == "cpu"}
    if torch.__version__.startswith("2.14"):
        assert cpu == {"max_pool3d", "avg_pool3d", "adaptive_max_pool3d", "adaptive_avg_pool3d",
                       "max_unpool2d", "max_unpool3d", "fractional_max_pool2d",
                       "fractional_max_pool3d"}
    assert not {op for op in cpu if op.endswith(("1d", "2d")) and "unpool" not in op
                and "fractional" not in op}, \
        "1d/2d pooling is expected to run in the input's dtype"


def _module_cases():
    out = []
    for r in (1, 2, 3):
        for kind, ctor in (("MaxPool", (3, 2, 1)), ("AvgPool", (3, 2, 1)),
                           ("AdaptiveMaxPool", (3,)), ("AdaptiveAvgPool", (3,)),
                           ("MaxUnpool", (2, 2))):
            out.append(pytest.param(f"{kind}{r}d", r, ctor, id=f"{kind}{r}d"))
    return out


@pytest.mark.parametrize("device,low", DEVICES)
@pytest.mark.parametrize("cls,rank,ctor", _module_cases())
def test_modules_under_autocast(cls, rank, ctor, device, low):
    """conv (1x1) -> pooling module under autocast: output dtype and values, conv weight grad."""
    need(PM, cls)
    ours, theirs = getattr(PM, cls)(*ctor), getattr(nn, cls)(*ctor)
    torch.manual_seed(0)
    conv = getattr(nn, f"Conv{rank}d")(SHAPES[rank][1], SHAPES[rank][1], 1).to(device)
    x = torch.randn(SHAPES[rank]).to(device)
    res = []
    for pool in (ours, theirs):
        conv.zero_grad()
        with torch.autocast(device, dtype=low):
            h = conv(x)
            assert h.dtype == low
            if cls.startswith("MaxUnpool"):
                vals, idx = getattr(TF, f"max_pool{rank}d")(h, 2, 2, return_indices=True)
                y = pool(vals, idx, output_size=h.shape[2:])
            else:
                y = pool(h)
        y = y[0] if isinstance(y, tuple) else y
        y.float().square().sum().backward()
        res.append((y.detach(), conv.weight.grad.clone()))
    (y_o, w_o), (y_t, w_t) = res
    is_max = "Max" in cls
    assert_same(cls, y_o, y_t, exact=is_max)
    # the weight gradient is float32 but went through the low-precision conv backward
    assert w_o.dtype == w_t.dtype == torch.float32
    eps = torch.finfo(low).eps
    torch.testing.assert_close(w_o, w_t, rtol=4 * eps, atol=4 * eps * w_t.abs().max().item())


class ConvPoolLinear(nn.Module):
    """conv -> pool -> conv -> pool -> linear, in 2d or 3d."""

    def __init__(self, kind):
        super().__init__()
        rank = 3 if kind == "3d" else 2
        conv = getattr(nn, f"Conv{rank}d")
        maxp, avgp = getattr(nn, f"MaxPool{rank}d"), getattr(nn, f"AvgPool{rank}d")
        second = {"max-disjoint": maxp(2), "max-overlap": maxp(3, 2, 1), "max-avg": avgp(2),
                  "3d": avgp(2)}[kind]
        self.features = nn.Sequential(conv(3, 8, 3, padding=1), nn.ReLU(), maxp(2),
                                      conv(8, 8, 3, padding=1), nn.ReLU(), second)
        self.fc = nn.Linear(8 * 4 ** rank, 10)
        self.input_shape = (8, 3) + (16,) * rank

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))


@pytest.mark.parametrize("device,low", DEVICES)
@pytest.mark.parametrize("kind", ["max-disjoint", "max-overlap", "max-avg", "3d"])
def test_model_under_autocast(kind, device, low):
    """The same model with torch's pooling and after poolext.convert: same pooled dtypes,
    logits, loss and parameter gradients under autocast."""
    torch.manual_seed(0)
    ref = ConvPoolLinear(kind).to(device)
    model = poolext.convert(copy.deepcopy(ref))
    assert type(model.features[2]).__module__ == "poolext.modules"
    x = torch.randn(ref.input_shape).to(device)
    target = torch.randint(0, 10, (x.shape[0],)).to(device)
    outs = []
    for m in (ref, model):
        dtypes = []
        hooks = [m.features[i].register_forward_hook(lambda mod, i, o: dtypes.append(o.dtype))
                 for i in (2, 5)]
        m.zero_grad()
        with torch.autocast(device, dtype=low):
            logits = m(x)
        assert logits.dtype == low
        loss = TF.cross_entropy(logits.float(), target)
        loss.backward()
        for h in hooks:
            h.remove()
        outs.append((dtypes, logits.detach(), loss.detach(),
                     {n: p.grad for n, p in m.named_parameters()}))
    (d_t, l_t, loss_t, g_t), (d_o, l_o, loss_o, g_o) = outs
    assert d_o == d_t, f"pooled dtypes: poolext {d_o}, torch {d_t}"
    if kind == "3d" and device == "cpu":
        assert d_t == [torch.float32] * 2  # on autocast's CPU float32 list
    else:
        assert d_t == [low] * 2
    exact_fwd = kind.startswith("max")
    exact_bwd = kind == "max-disjoint"  # each input gets at most one gradient: no rounding
    tol = dict(rtol=0, atol=0)
    torch.testing.assert_close(l_o, l_t, **(tol if exact_fwd else {}))
    torch.testing.assert_close(loss_o, loss_t, **(tol if exact_fwd else {}))
    eps = torch.finfo(low).eps
    for k in g_t:
        assert g_o[k].dtype == g_t[k].dtype == torch.float32
        loose = dict(rtol=4 * eps, atol=4 * eps * g_t[k].abs().max().item())
        torch.testing.assert_close(g_o[k], g_t[k], **(tol if exact_bwd else loose),
                                   msg=f"gradient of {k}")


@pytest.mark.parametrize("device,low", DEVICES[:1])
def test_compiled_under_autocast(device, low):
    """torch.compile(fullgraph=True) of a converted 2d/3d model under autocast: torch's dtypes."""
    torch.manual_seed(0)

    class Net(nn.Module):
        def forward(self, x2, x3):
            return (poolext.MaxPool2d(2)(x2), PF.avg_pool3d(x3, 2),
                    PF.max_pool3d(x3, 2, return_indices=True)[0])

    x2 = torch.randn(2, 3, 8, 8, device=device, dtype=low)
    x3 = torch.randn(2, 3, 4, 4, 4, device=device, dtype=low)
    with torch.autocast(device, dtype=low):
        got = torch.compile(Net(), fullgraph=True)(x2, x3)
        want = (TF.max_pool2d(x2, 2), TF.avg_pool3d(x3, 2),
                TF.max_pool3d(x3, 2, return_indices=True)[0])
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        torch.testing.assert_close(g, w)
