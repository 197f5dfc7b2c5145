"""Autograd on the ops themselves, torch.export (static and dynamic shapes, backward through
the exported program), AOTInductor and torch.compile(dynamic=True)."""

import copy

import pytest
import torch
import torch.nn as nn

import poolext

ops = torch.ops.poolext


def _gradcheck(f, *xs):
    assert torch.autograd.gradcheck(f, xs)
    assert torch.autograd.gradgradcheck(f, xs)


def _x(*shape, cl=False):
    x = torch.rand(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) + 0.1
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)
    return x.requires_grad_()


@pytest.mark.parametrize("with_argmax", [True, False])
def test_direct_op_calls_differentiate(with_argmax):
    """A direct torch.ops.poolext call differentiates, to second order, with or without the
    state the Python Functions ask the forward to keep."""
    x = _x(2, 3, 7, 6)
    _gradcheck(lambda t: ops.max_pool(t, [3, 2], [2, 1], [1, 0], [1, 2], True, False, with_argmax,
                                      False)[0], x)
    _gradcheck(lambda t: ops.adaptive_max_pool(t, [4, 4], False, with_argmax, False)[0], x)
    _gradcheck(lambda t: ops.lp_pool(t, 2.5, [2, 3], [2, 1], True, False, with_argmax)[0], x)
    s = torch.rand(2, 3, 2, dtype=torch.float64)
    _gradcheck(lambda t: ops.fractional_max_pool(t, [2, 2], [4, 3], s, False, with_argmax,
                                                 False)[0], x)


def test_direct_op_calls_of_linear_ops_differentiate():
    x = _x(2, 3, 7, 6)
    _gradcheck(lambda t: ops.avg_pool(t, [3, 3], [2, 2], [1, 1], True, False, None, False), x)
    _gradcheck(lambda t: ops.adaptive_avg_pool(t, [3, 4], False), x)
    y, idx = torch.nn.functional.max_pool2d(x.detach(), 2, return_indices=True)
    _gradcheck(lambda t: ops.max_unpool(t, idx, [7, 6], False), y.clone().requires_grad_())
    xc = _x(2, 3, 7, 6, cl=True)
    _gradcheck(lambda t: ops.avg_pool(t, [2, 2], [2, 2], [0, 0], False, True, None, True), xc)


def test_lp_backward_op_says_it_is_not_differentiable():
    x = _x(1, 2, 6, 6)
    out, coef = ops.lp_pool(x.detach(), 2.0, [2, 2], [2, 2], False, False, True)
    g = torch.ones_like(out, requires_grad=True)
    gi = ops.lp_pool_backward(g, x, coef, 2.0, [2, 2], [2, 2], False, False)
    with pytest.raises(NotImplementedError, match="differentiate lp_pool"):
        gi.sum().backward()


class Net(nn.Module):
    """A CNN with the pooling layers poolext swaps in; fixed samples for the fractional one."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.max = nn.MaxPool2d(3, 2, 1)
        self.avg = nn.AvgPool2d(2, ceil_mode=True)
        self.lp = nn.LPPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(8, 8, 1)
        self.frac = nn.FractionalMaxPool2d(2, output_size=(3, 3),
                                           _random_samples=torch.rand(2, 8, 2))
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.amax = nn.AdaptiveMaxPool2d((2, 3))
        self.fc = nn.Linear(8 + 48, 4)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        x = self.max(x)
        x = self.avg(x) + self.lp(x + 1)
        x = self.conv2(x)
        f = self.frac(x)
        return self.fc(torch.cat([self.gap(x).flatten(1), self.amax(f).flatten(1)], 1))


class DynNet(nn.Module):
    """The layers whose shapes export with dynamic batch, H and W."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.max = nn.MaxPool2d(3, 2, 1)
        self.avg = nn.AvgPool2d(2, ceil_mode=True)
        self.lp = nn.LPPool2d(2, 2, ceil_mode=True)
        self.max2 = nn.MaxPool2d(2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        x = self.max(x)
        x = self.max2(self.avg(x) + self.lp(x + 1))
        return self.fc(self.gap(x).flatten(1))


def _params_grads(model, x):
    model.zero_grad()
    y = model(x)
    y.square().sum().backward()
    return y.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def _check_exported(model, exported, x):
    y_e, g_e = _params_grads(model, x)
    y_x, g_x = _params_grads(exported, x)
    torch.testing.assert_close(y_x, y_e)
    assert g_x.keys() == g_e.keys()
    for name in g_e:
        torch.testing.assert_close(g_x[name], g_e[name], msg=name)


def test_export_static_runs_and_differentiates():
    model = poolext.convert(Net())
    x = torch.randn(2, 3, 20, 18)
    ep = torch.export.export(model, (x,))
    targets = {str(n.target) for n in ep.graph.nodes if "poolext" in str(n.target)}
    assert {"poolext.max_pool.default", "poolext.avg_pool.default", "poolext.lp_pool.default",
            "poolext.fractional_max_pool.default"} <= targets
    _check_exported(model, ep.module(), x)


def test_export_dynamic_batch_and_spatial_sizes():
    model = poolext.convert(DynNet())
    x = torch.randn(2, 3, 32, 32)
    dims = ({0: torch.export.Dim("B", min=1, max=64), 2: torch.export.Dim("H", min=16, max=512),
             3: torch.export.Dim("W", min=16, max=512)},)
    ep = torch.export.export(model, (x,), dynamic_shapes=dims)
    mod = ep.module()
    for shape in ((2, 3, 32, 32), (3, 3, 41, 36), (1, 3, 16, 100)):
        _check_exported(model, mod, torch.randn(shape))


def test_aot_inductor_cpu():
    model = poolext.convert(DynNet()).eval()
    x = torch.randn(2, 3, 24, 20)
    ep = torch.export.export(model, (x,))
    path = torch._inductor.aoti_compile_and_package(ep)
    runner = torch._inductor.aoti_load_package(path)
    with torch.no_grad():
        torch.testing.assert_close(runner(x), model(x))


def test_compile_dynamic_does_not_recompile_per_resolution():
    model = poolext.convert(DynNet())
    ref = copy.deepcopy(model)
    counts = {"frames": 0}

    def backend(gm, inputs):
        counts["frames"] += 1
        return gm.forward

    compiled = torch.compile(model, backend=backend, dynamic=True, fullgraph=True)
    # (the first not square: torch.compile would otherwise guard H == W, for any model)
    for shape in ((2, 3, 32, 30), (3, 3, 41, 36), (2, 3, 64, 48), (4, 3, 17, 23)):
        x = torch.randn(shape)
        torch.testing.assert_close(compiled(x), ref(x))
    assert counts["frames"] == 1


def test_jit_trace_records_the_ops_and_differentiates():
    """torch.jit.trace (batch 1: size-1 dims) passes its own check, records poolext's ops
    (no opaque PythonOp), and the traced module's gradients are eager's."""
    model = poolext.convert(Net())
    x = torch.randn(2, 3, 20, 18)
    traced = torch.jit.trace(model, (x,))
    graph = str(traced.inlined_graph)
    assert "poolext::max_pool" in graph and "poolext::lp_pool" in graph
    assert "PythonOp" not in graph
    _check_exported(model, traced, x)
    single = poolext.convert(DynNet())
    x1 = torch.randn(1, 3, 24, 20)
    t1 = torch.jit.trace(single, (x1,))
    _check_exported(single, t1, x1)


def test_jit_script_scripts_the_torch_twins():
    """TorchScript cannot compile poolext's Python layer: torch.jit.script of a model scripts
    each poolext layer's torch.nn twin, with the same settings."""
    model = poolext.convert(DynNet()).eval()
    scripted = torch.jit.script(model)
    x = torch.randn(2, 3, 24, 20)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), model(x))
    assert "aten::max_pool2d" in str(scripted.max.graph) or "max_pool2d" in scripted.max.code


def test_fx_symbolic_trace_keeps_poolext_calls_as_leaves():
    model = poolext.convert(Net())
    gm = torch.fx.symbolic_trace(model)
    called = {getattr(n.target, "__name__", "") for n in gm.graph.nodes
              if n.op == "call_function"}
    assert {"max_pool2d", "avg_pool2d", "lp_pool2d", "fractional_max_pool2d",
            "adaptive_avg_pool2d", "adaptive_max_pool2d"} <= called
    x = torch.randn(2, 3, 20, 18)
    _check_exported(model, gm, x)


# -- every op, one transform at a time -------------------------------------------------------

from test_transforms import IDS, OPS, _fns, _input  # noqa: E402


class _Wrap(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def _fx_friendly(case, x):
    """The case's call with its sizes fixed from x beforehand: symbolic_trace runs the
    Python around poolext's calls on Proxies, which have no sizes."""
    name, rank, kw = case
    ours, _ = _fns(case)
    if name.startswith("max_unpool"):
        pool = getattr(poolext.functional, f"max_pool{rank}d")
        unpool = getattr(poolext.functional, name)
        size = tuple(x.shape[-rank:])
        def run(t):
            y = pool(t, 2, 2, return_indices=True)
            return unpool(y[0], y[1], 2, 2, output_size=size)
        return run
    if name.startswith("fractional"):
        from test_transforms import SAMPLES
        samples = SAMPLES[rank][:x.shape[0], :x.shape[1]]
        fn = getattr(poolext.functional, name)
        return lambda t: fn(t, _random_samples=samples, **kw)
    return ours


def _grads(f, x):
    x = x.detach().clone().requires_grad_()
    y = f(x)
    (g,) = torch.autograd.grad(y.square().sum(), x)
    return y.detach(), g


def _same_as_eager(f, transformed, x):
    (y1, g1), (y2, g2) = _grads(f, x), _grads(transformed, x)
    torch.testing.assert_close(y2, y1)
    torch.testing.assert_close(g2, g1)


@pytest.mark.parametrize("case", OPS, ids=IDS)
def test_every_op_under_trace_fx_and_export(case):
    """Each op (the unpooling ones after their max pooling) under torch.jit.trace,
    torch.fx.symbolic_trace and torch.export, forward and backward, against eager; with
    dynamic batch and spatial sizes for the ops whose shapes allow it."""
    ours, _ = _fns(case)
    x = _input(case[1]).detach()
    m = _Wrap(ours)
    _same_as_eager(ours, torch.jit.trace(m, (x,)), x)
    _same_as_eager(ours, torch.fx.symbolic_trace(_Wrap(_fx_friendly(case, x))), x)
    _same_as_eager(ours, torch.export.export(m, (x,)).module(), x)
    name, rank = case[0], case[1]
    dims = {0: torch.export.Dim("N", min=1, max=8)}
    dims.update({x.dim() - rank + a: torch.export.Dim(f"L{a}", min=4, max=64)
                 for a in range(rank)})
    if name.startswith(("adaptive_max", "fractional", "max_unpool")):
        # the argmax width, the samples or the output size pin sizes of the example:
        # torch.export says which, rather than export a program that is wrong elsewhere
        with pytest.raises(torch._dynamo.exc.UserError, match="Constraints violated"):
            torch.export.export(m, (x,), dynamic_shapes=(dims,))
        return
    ep = torch.export.export(m, (x,), dynamic_shapes=(dims,))
    bigger = _input(rank, batch=3)
    bigger = torch.nn.functional.pad(bigger, (0, 3) * rank).detach() + 0.5
    _same_as_eager(ours, ep.module(), bigger)


def test_jit_script_of_every_layer_type():
    """Every poolext layer scripts (as its torch.nn twin) and computes what the layer does."""
    import test_convert

    for name in test_convert.POOLING_NAMES:
        args, kwargs, shape = test_convert.LAYERS[name]
        layer = getattr(poolext, name)(*args, **kwargs).eval()
        try:
            torch.jit.script(getattr(nn, name)(*args, **kwargs))
        except Exception as e:  # torch's own layer does not script with these settings
            with pytest.raises(type(e)):
                torch.jit.script(layer)
            continue
        scripted = torch.jit.script(layer)
        x = torch.randn(shape, generator=torch.Generator().manual_seed(3))
        with torch.no_grad():
            if name.startswith("MaxUnpool"):
                rank = int(name[-2])
                y, idx = getattr(torch.nn.functional, f"max_pool{rank}d")(x, 2, 2,
                                                                       return_indices=True)
                want, got = layer(y, idx), scripted(y, idx)
            else:
                want, got = layer(x), scripted(x)
        for a, b in zip(got if isinstance(got, tuple) else (got,),
                        want if isinstance(want, tuple) else (want,)):
            torch.testing.assert_close(a, b, msg=name)
