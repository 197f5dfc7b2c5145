"""poolext.convert: torch.nn pooling layers of a model replaced by poolext's twins.

The converted model must be the same model: same structure, repr, state_dict
keys, attributes, training flags and hooks; the same outputs and parameter
gradients (max pooling bit for bit, average pooling within rounding); and it
must survive deepcopy and pickling.
"""

import copy
import io
import pickle

import pytest
import torch
import torch.nn.functional as TF
from torch import nn

import poolext
import poolext.modules as PM
from poolext._convert import POOLING_NAMES


def need(*names):
    """poolext.modules defines every one of ``names`` (every torch.nn pooling layer has a twin)."""
    missing = [n for n in names if not hasattr(PM, n)]
    assert not missing, f"poolext.modules has no {', '.join(missing)}"


def test_every_pooling_layer_has_a_twin():
    from poolext._convert import twins
    assert len(twins()) == len(POOLING_NAMES) == 20


# One layer of each kind: (constructor args, kwargs, input shape).
LAYERS = {
    "MaxPool1d": ((3, 2, 1), dict(ceil_mode=True), (2, 3, 11)),
    "MaxPool2d": ((3, 2, 1), dict(dilation=1, return_indices=True), (2, 3, 9, 8)),
    "MaxPool3d": ((2,), dict(stride=(1, 2, 2), padding=1), (2, 2, 5, 6, 7)),
    "AvgPool1d": ((3, 2, 1), dict(count_include_pad=False), (2, 3, 11)),
    "AvgPool2d": ((3, 2, 1), dict(ceil_mode=True, divisor_override=5), (2, 3, 9, 8)),
    "AvgPool3d": ((2,), dict(padding=1, count_include_pad=False), (2, 2, 5, 6, 7)),
    "AdaptiveMaxPool1d": ((4,), dict(return_indices=True), (2, 3, 11)),
    "AdaptiveMaxPool2d": (((3, None),), {}, (2, 3, 9, 8)),
    "AdaptiveMaxPool3d": ((2,), {}, (2, 2, 5, 6, 7)),
    "AdaptiveAvgPool1d": ((5,), {}, (2, 3, 11)),
    "AdaptiveAvgPool2d": (((3, 4),), {}, (2, 3, 9, 8)),
    "AdaptiveAvgPool3d": (((2, 3, None),), {}, (2, 2, 5, 6, 7)),
    "MaxUnpool1d": ((2,), {}, (2, 3, 10)),
    "MaxUnpool2d": ((2,), dict(stride=2), (2, 3, 8, 8)),
    "MaxUnpool3d": ((2,), dict(stride=2, padding=0), (2, 2, 4, 6, 6)),
    "LPPool1d": ((2, 3, 2), {}, (2, 3, 11)),
    "LPPool2d": ((2, 3), dict(stride=2, ceil_mode=True), (2, 3, 9, 8)),
    "LPPool3d": ((1, 2), {}, (2, 2, 5, 6, 7)),
    # fixed samples (a buffer), so that both layers pool the same windows
    "FractionalMaxPool2d": ((2,), dict(output_size=(5, 4), _random_samples=torch.rand(2, 3, 2)),
                            (2, 3, 9, 8)),
    "FractionalMaxPool3d": (((2, 1, 2),), dict(output_ratio=0.5, return_indices=True,
                                               _random_samples=torch.rand(2, 2, 3)),
                            (2, 2, 5, 6, 7)),
}
assert set(LAYERS) == set(POOLING_NAMES)


def run_layer(layer, name, x):
    """Forward (and backward, when floating) through one layer; returns outputs and input grad."""
    x = x.clone().requires_grad_()
    if name.startswith("MaxUnpool"):
        rank = int(name[-2])
        pool = getattr(TF, f"max_pool{rank}d")
        with torch.no_grad():
            vals, idx = pool(x, 2, 2, return_indices=True)
        vals = vals.clone().requires_grad_()
        y = layer(vals, idx, output_size=x.shape[-rank:])
        leaf = vals
    else:
        y = layer(x)
        leaf = x
    outs = y if isinstance(y, tuple) else (y,)
    outs[0].backward(torch.randn(outs[0].shape, generator=torch.Generator().manual_seed(1)))
    return [o.detach() for o in outs], leaf.grad


def exact(name):
    return name.startswith(("Max", "AdaptiveMax", "FractionalMax"))


@pytest.mark.parametrize("name", POOLING_NAMES)
def test_layer_converted_alone(name):
    need(name)
    args, kwargs, shape = LAYERS[name]
    theirs = getattr(nn, name)(*args, **kwargs)
    theirs.eval()  # a non-default training flag must survive
    before = copy.deepcopy(theirs)
    ours = poolext.convert(theirs)
    assert type(ours) is getattr(PM, name)
    assert isinstance(ours, getattr(nn, name))
    assert ours is not theirs
    assert type(theirs) is getattr(nn, name), "the original layer must not be modified"
    assert repr(ours) == repr(theirs)
    assert ours.training is False
    assert {k: v for k, v in vars(ours).items() if not k.startswith("_")} == \
        {k: v for k, v in vars(before).items() if not k.startswith("_")}

    x = torch.randn(shape)
    (o_out, o_grad), (t_out, t_grad) = run_layer(ours, name, x), run_layer(before, name, x)
    assert len(o_out) == len(t_out)
    tol = dict(rtol=0, atol=0) if exact(name) else {}
    for a, b in zip(o_out, t_out):
        assert a.dtype == b.dtype and a.shape == b.shape
        torch.testing.assert_close(a, b, **tol)
    torch.testing.assert_close(o_grad, t_grad, **tol)


# -- models ----------------------------------------------------------------------------------


class Block(nn.Module):
    """A custom module holding pooling layers as attributes, in a ModuleList and a ModuleDict."""

    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.pool = nn.MaxPool2d(2, ceil_mode=True)
        self.branches = nn.ModuleList([nn.MaxPool2d(3, 1, 1), nn.AvgPool2d(3, 1, 1,
                                                                           count_include_pad=False)])
        self.heads = nn.ModuleDict({"max": nn.MaxPool1d(2), "avg": nn.AvgPool1d(2)})

    def forward(self, x):
        x = torch.relu(self.conv(x))
        x = sum(b(x) for b in self.branches)
        x = self.pool(x)
        flat = x.flatten(2)  # (N, C, H*W)
        return torch.cat([self.heads["max"](flat), self.heads["avg"](flat)], dim=-1)


class Net(nn.Module):
    def __init__(self, avg=True):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1),
            nn.Sequential(nn.Conv2d(8, 8, 1), nn.MaxPool2d(2, dilation=1)),
        )
        self.block = Block(8)
        if not avg:  # every pooling layer a max pooling: the whole model must be bit-identical
            self.block.branches[1] = nn.MaxPool2d(3, 1, 1)
            self.block.heads["avg"] = nn.MaxPool1d(2, padding=1, ceil_mode=True)
        self.head = nn.Linear(8 * 4, 5)

    def forward(self, x):  # x: (N, 3, 16, 16)
        return self.head(self.block(self.stem(x))[..., :4].flatten(1))


def pooling_layers(model):
    return [(n, m) for n, m in model.named_modules(remove_duplicate=False)
            if type(m).__name__ in POOLING_NAMES]


def grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters()}


def train_step(model, x, target):
    model.zero_grad()
    out = model(x)
    loss = TF.cross_entropy(out, target)
    loss.backward()
    return out.detach(), loss.detach(), grads(model)


def assert_same(model_a, model_b, x, target, exact_values):
    tol = dict(rtol=0, atol=0) if exact_values else {}
    out_a, loss_a, g_a = train_step(model_a, x, target)
    out_b, loss_b, g_b = train_step(model_b, x, target)
    torch.testing.assert_close(out_a, out_b, **tol)
    torch.testing.assert_close(loss_a, loss_b, **tol)
    assert g_a.keys() == g_b.keys()
    for k in g_a:
        torch.testing.assert_close(g_a[k], g_b[k], **tol, msg=f"gradient of {k}")


@pytest.mark.parametrize("avg", [False, True], ids=["max-only", "max-and-avg"])
def test_cnn_converted(avg):
    torch.manual_seed(0)
    model = Net(avg=avg)
    model.block.heads["max"].eval()  # one layer in eval mode, the rest training
    ref = copy.deepcopy(model)
    keys = list(model.state_dict().keys())
    layers_before = pooling_layers(model)
    assert len(layers_before) == 7

    out = poolext.convert(model)
    assert out is model, "containers are converted in place and returned"

    layers_after = pooling_layers(model)
    assert [n for n, _ in layers_after] == [n for n, _ in layers_before]
    for (name, old), (_, new) in zip(layers_before, layers_after):
        assert type(new) is getattr(PM, type(old).__name__), name
        assert repr(new) == repr(old)
        assert new.training == old.training
        assert {k: v for k, v in vars(new).items() if k != "_modules"} == \
            {k: v for k, v in vars(old).items() if k != "_modules"}
    assert not model.block.heads["max"].training and model.block.heads["avg"].training
    assert repr(model) == repr(ref)
    assert list(model.state_dict().keys()) == keys
    for k, v in ref.state_dict().items():
        assert torch.equal(model.state_dict()[k], v)
    for (_, a), (_, b) in zip(model.named_modules(), ref.named_modules()):
        assert a.training == b.training

    x = torch.randn(4, 3, 16, 16)
    target = torch.randint(0, 5, (4,))
    assert_same(model, ref, x, target, exact_values=not avg)

    # deepcopy and pickle keep the poolext types and the numbers
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert [type(m) for _, m in pooling_layers(clone)] == \
            [type(m) for _, m in pooling_layers(model)]
        assert_same(clone, ref, x, target, exact_values=not avg)
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    assert type(loaded.stem[2]) is poolext.MaxPool2d
    assert_same(loaded, ref, x, target, exact_values=not avg)

    # a state_dict saved from the torch model loads into the converted one and back
    model.load_state_dict(ref.state_dict())
    ref.load_state_dict(model.state_dict())


def test_training_steps_match():
    """A few SGD steps of the converted model follow the torch model exactly (max pooling only)."""
    torch.manual_seed(0)
    model = Net(avg=False)
    ref = copy.deepcopy(model)
    poolext.convert(model)
    opts = [torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9) for m in (model, ref)]
    g = torch.Generator().manual_seed(3)
    for _ in range(3):
        x = torch.randn(4, 3, 16, 16, generator=g)
        t = torch.randint(0, 5, (4,), generator=g)
        for m, opt in zip((model, ref), opts):
            opt.zero_grad()
            TF.cross_entropy(m(x), t).backward()
            opt.step()
    for (k, a), (_, b) in zip(model.named_parameters(), ref.named_parameters()):
        assert torch.equal(a, b), k


def test_subclasses_and_converted_layers_left_alone():
    class MyPool(nn.MaxPool2d):
        pass

    mine = MyPool(2)
    already = poolext.MaxPool2d(2)
    plain = nn.MaxPool2d(2)
    seq = nn.Sequential(mine, already, plain)
    assert poolext.convert(seq) is seq
    assert seq[0] is mine and type(seq[0]) is MyPool
    assert seq[1] is already
    assert type(seq[2]) is poolext.MaxPool2d
    assert poolext.convert(mine) is mine
    assert poolext.convert(already) is already
    again = poolext.convert(seq)
    assert again is seq and seq[2] is not plain and type(seq[2]) is poolext.MaxPool2d


class UserLpPool(nn.LPPool2d):
    """A user's own pooling layer: a subclass, which convert leaves alone."""


def test_layers_without_twin_are_kept():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), UserLpPool(2, 2), nn.Upsample(scale_factor=2),
                          nn.Identity())
    kids = list(model)
    poolext.convert(model)
    assert list(model) == kids


def test_shared_layer_stays_shared():
    pool = nn.MaxPool2d(2)
    inner = nn.Sequential(pool)
    model = nn.Sequential(pool, inner, pool)
    poolext.convert(model)
    assert type(model[0]) is poolext.MaxPool2d
    assert model[0] is model[2] is inner[0]
    assert list(dict(model.named_modules(remove_duplicate=False)).keys()) == \
        ["", "0", "1", "1.0", "2"]


def test_hooks_kept_and_removable():
    calls = []
    pool = nn.MaxPool2d(2)
    h_fwd = pool.register_forward_hook(lambda m, i, o: calls.append(("fwd", type(m))))
    h_pre = pool.register_forward_pre_hook(lambda m, i: calls.append(("pre", type(m))))
    h_bwd = pool.register_full_backward_hook(lambda m, gi, go: calls.append(("bwd", type(m))))
    model = nn.Sequential(nn.Conv2d(1, 1, 1), pool)
    poolext.convert(model)
    x = torch.randn(1, 1, 4, 4, requires_grad=True)
    model(x).sum().backward()
    assert calls == [("pre", poolext.MaxPool2d), ("fwd", poolext.MaxPool2d),
                     ("bwd", poolext.MaxPool2d)]
    for h in (h_fwd, h_pre, h_bwd):
        h.remove()
    calls.clear()
    model(x).sum().backward()
    assert calls == []


def test_nothing_to_convert():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    assert poolext.convert(model) is model
    lin = nn.Linear(2, 2)
    assert poolext.convert(lin) is lin


def test_every_twin_subclasses_its_torch_class():
    """poolext.modules' pooling classes (present and future) are convertible twins."""
    table = poolext._convert.twins()
    for name in POOLING_NAMES:
        ours = getattr(PM, name, None)
        if ours is not None:
            assert table[getattr(nn, name)] is ours
            assert issubclass(ours, getattr(nn, name))
            assert ours.__init__ is getattr(nn, name).__init__, \
                f"{name} must keep torch's constructor for convert to copy its state"


# Models with adaptive pooling and unpooling.

ADAPTIVE = ["AdaptiveMaxPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "AdaptiveAvgPool1d",
            "AdaptiveMaxPool3d", "AdaptiveAvgPool3d"]
UNPOOL = ["MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d"]


class AdaptiveNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(),
                                      nn.MaxPool2d(2), nn.AdaptiveMaxPool2d((5, 5)))
        self.heads = nn.ModuleDict({
            "gap": nn.AdaptiveAvgPool2d(1),
            "seq": nn.Sequential(nn.Flatten(2), nn.AdaptiveMaxPool1d(3), nn.AdaptiveAvgPool1d(2)),
        })
        self.vol = nn.ModuleList([nn.AdaptiveMaxPool3d((1, 2, 2)), nn.AdaptiveAvgPool3d(1)])
        self.fc = nn.Linear(6 + 6 * 2 + 6 * 4 + 6, 4)

    def forward(self, x):
        f = self.features(x)  # (N, 6, 5, 5)
        v = f.unsqueeze(2)  # (N, 6, 1, 5, 5) as a volume
        parts = [self.heads["gap"](f), self.heads["seq"](f), self.vol[0](v), self.vol[1](v)]
        return self.fc(torch.cat([p.flatten(1) for p in parts], 1))


class UnpoolNet(nn.Module):
    """An encoder/decoder that unpools with the encoder's indices, in 1d, 2d and 3d."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Conv2d(2, 4, 3, padding=1)
        self.pools = nn.ModuleList([nn.MaxPool1d(2, return_indices=True),
                                    nn.MaxPool2d(2, return_indices=True),
                                    nn.MaxPool3d(2, return_indices=True)])
        self.unpools = nn.ModuleDict({"1": nn.MaxUnpool1d(2), "2": nn.MaxUnpool2d(2),
                                      "3": nn.MaxUnpool3d(2)})
        self.dec = nn.Conv2d(4, 2, 3, padding=1)

    def forward(self, x):
        h = torch.relu(self.enc(x))  # (N, 4, 8, 8)
        y1, i1 = self.pools[0](h.flatten(2))
        y2, i2 = self.pools[1](h)
        y3, i3 = self.pools[2](h.unsqueeze(1))
        u = (self.unpools["1"](y1, i1).view_as(h) + self.unpools["2"](y2, i2)
             + self.unpools["3"](y3, i3).squeeze(1))
        return self.dec(u).mean(dim=(2, 3))


class FractionalNet(nn.Module):
    """Fractional max pooling in 2d and 3d; samples as buffers, so that the torch model and
    the converted one (and their copies) pool the same windows."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.frac2 = nn.FractionalMaxPool2d(2, output_size=(6, 5),
                                            _random_samples=torch.rand(3, 4, 2))
        self.frac3 = nn.FractionalMaxPool3d((1, 2, 2), output_ratio=(0.5, 0.5, 0.5),
                                            _random_samples=torch.rand(3, 1, 3))
        self.fc = nn.Linear(4 * 6 * 5 + 2 * 3 * 2, 4)

    def forward(self, x):  # x: (3, 3, 12, 11)
        h = torch.relu(self.conv(x))
        a = self.frac2(h)
        b = self.frac3(h[:, :1].unsqueeze(1).expand(-1, -1, 4, -1, -1)[:, :, :, :6, :5])
        return self.fc(torch.cat([a.flatten(1), b.flatten(1)], 1))


FRACTIONAL = ["FractionalMaxPool2d", "FractionalMaxPool3d"]


@pytest.mark.parametrize("net,names,shape", [
    (AdaptiveNet, ADAPTIVE, (3, 3, 12, 11)),
    (UnpoolNet, UNPOOL, (3, 2, 8, 8)),
    (FractionalNet, FRACTIONAL, (3, 3, 12, 11)),
], ids=["adaptive", "unpool", "fractional"])
def test_models_with_adaptive_and_unpool(net, names, shape):
    need(*names)
    torch.manual_seed(0)
    model = net()
    ref = copy.deepcopy(model)
    x = torch.randn(shape)
    target = torch.randint(0, model(x).shape[1], (shape[0],))
    poolext.convert(model)
    for name, m in pooling_layers(model):
        assert type(m).__module__ == PM.__name__, f"{name} is {type(m)}"
    assert repr(model) == repr(ref)
    assert list(model.state_dict()) == list(ref.state_dict())
    assert_same(model, ref, x, target, exact_values=False)
    clone = pickle.loads(pickle.dumps(copy.deepcopy(model)))
    assert_same(clone, ref, x, target, exact_values=False)


def test_model_with_every_layer_type():
    """One model holding a layer of every type poolext has a twin of: convert swaps each
    one, and each converted layer computes what torch's does."""
    model = nn.ModuleDict({name: getattr(nn, name)(*LAYERS[name][0], **LAYERS[name][1])
                           for name in POOLING_NAMES})
    before = copy.deepcopy(model)
    assert poolext.convert(model) is model
    assert [type(m) for m in model.values()] == [getattr(PM, n) for n in POOLING_NAMES]
    for name in POOLING_NAMES:
        x = torch.randn(LAYERS[name][2], generator=torch.Generator().manual_seed(7))
        (o_out, o_grad) = run_layer(model[name], name, x)
        (t_out, t_grad) = run_layer(before[name], name, x)
        tol = dict(rtol=0, atol=0) if exact(name) else {}
        for a, b in zip(o_out, t_out):
            torch.testing.assert_close(a, b, **tol)
        torch.testing.assert_close(o_grad, t_grad, **tol)
