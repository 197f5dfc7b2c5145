"""poolext's nn.Module drop-ins and functional signatures against torch.nn's.

Each module behaves as its torch.nn twin (constructor, attributes, repr,
state_dict, deepcopy, pickling, isinstance) and computes the same forward and
backward; the functions take torch.nn.functional's arguments, with the same
names and defaults, positionally and by keyword.
"""

import copy
import inspect
import io
import pickle

import pytest
import torch
import torch.nn.functional as TF
from torch import nn

import poolext
import poolext.functional as PF

PAIRS = {
    "MaxPool1d": (poolext.MaxPool1d, nn.MaxPool1d),
    "MaxPool2d": (poolext.MaxPool2d, nn.MaxPool2d),
    "MaxPool3d": (poolext.MaxPool3d, nn.MaxPool3d),
    "AvgPool1d": (poolext.AvgPool1d, nn.AvgPool1d),
    "AvgPool2d": (poolext.AvgPool2d, nn.AvgPool2d),
    "AvgPool3d": (poolext.AvgPool3d, nn.AvgPool3d),
}

# Constructor arguments: (args, kwargs).  Positional orders are torch.nn's:
#   MaxPoolNd(kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
#             ceil_mode=False)
#   AvgPool1d(kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True)
#   AvgPool2d/3d(..., count_include_pad=True, divisor_override=None)
MAX_CONFIGS = {
    1: [
        ((3,), {}),
        ((3, 2), {}),
        ((3, 2, 1, 1, True, True), {}),
        ((), dict(kernel_size=2, stride=None, dilation=2, ceil_mode=True)),
        ((), dict(kernel_size=(3,), stride=(1,), padding=(1,), return_indices=True)),
        ((4,), dict(stride=3, padding=2, ceil_mode=True, return_indices=True)),
    ],
    2: [
        ((3,), {}),
        ((3, 2, 1), {}),
        (((3, 2), (2, 1), (1, 0), (1, 2), True, True), {}),
        ((), dict(kernel_size=2, stride=None, padding=1, dilation=2, ceil_mode=True)),
        ((), dict(kernel_size=[3, 3], stride=[2, 1], padding=[1, 1], return_indices=True)),
        ((4,), dict(stride=3, padding=2, ceil_mode=True, return_indices=True)),
    ],
    3: [
        ((2,), {}),
        ((3, 2, 1), {}),
        (((3, 2, 2), (2, 1, 2), (1, 0, 1), (1, 2, 1), True, True), {}),
        ((), dict(kernel_size=2, stride=None, padding=1, dilation=2, ceil_mode=True)),
        ((), dict(kernel_size=(3, 3, 3), stride=2, padding=(1, 1, 1), return_indices=True)),
    ],
}
AVG_CONFIGS = {
    1: [
        ((3,), {}),
        ((3, 2, 1), {}),
        ((3, 2, 1, True, False), {}),
        ((), dict(kernel_size=4, stride=None, padding=2, ceil_mode=True)),
        ((), dict(kernel_size=(3,), stride=(2,), padding=(1,), count_include_pad=False)),
    ],
    2: [
        ((3,), {}),
        ((3, 2, 1), {}),
        (((3, 2), (2, 1), (1, 0), True, False, None), {}),
        (((3, 2), (2, 1), (1, 1), True, True, 5), {}),
        ((), dict(kernel_size=2, stride=None, padding=1, ceil_mode=True, count_include_pad=True)),
        ((), dict(kernel_size=[3, 3], stride=[2, 1], padding=[1, 1], divisor_override=-2)),
        ((4,), dict(stride=3, padding=2, ceil_mode=True, count_include_pad=False)),
    ],
    3: [
        ((2,), {}),
        ((3, 2, 1), {}),
        (((3, 2, 2), (2, 1, 2), (1, 0, 1), True, False, None), {}),
        ((), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, divisor_override=7)),
        ((), dict(kernel_size=(2, 3, 3), stride=None, padding=(1, 1, 0),
                  count_include_pad=False)),
    ],
}

INPUT_SHAPES = {1: (2, 3, 11), 2: (2, 3, 9, 8), 3: (2, 2, 7, 6, 8)}


def _cases():
    out = []
    for name in PAIRS:
        rank = int(name[-2])
        configs = (MAX_CONFIGS if name.startswith("Max") else AVG_CONFIGS)[rank]
        for i, (args, kwargs) in enumerate(configs):
            out.append(pytest.param(name, args, kwargs, id=f"{name}-{i}"))
    return out


CASES = _cases()


def attributes(m):
    """The module's state, as nn.Module keeps it (hooks and buffers aside)."""
    d = {k: v for k, v in vars(m).items() if not k.startswith("_")}
    assert d, "no public attributes"
    return d


def make_input(shape, seed=0, ties=False):
    g = torch.Generator().manual_seed(seed)
    if ties:  # many equal values: first-maximum tie breaking shows
        return torch.randint(-2, 3, shape, generator=g).float()
    return torch.randn(shape, generator=g)


def compare_forward_backward(ours, theirs, x, is_max):
    xo = x.clone().requires_grad_()
    xt = x.clone().requires_grad_()
    yo, yt = ours(xo), theirs(xt)
    if is_max and theirs.return_indices:
        (yo, i_o), (yt, i_t) = yo, yt
        assert i_o.dtype == i_t.dtype == torch.int64
        assert torch.equal(i_o, i_t)
    assert yo.shape == yt.shape and yo.dtype == yt.dtype
    if is_max:
        torch.testing.assert_close(yo, yt, rtol=0, atol=0, equal_nan=True)
    else:
        torch.testing.assert_close(yo, yt)
    g = torch.randn(yt.shape, generator=torch.Generator().manual_seed(1))
    yo.backward(g)
    yt.backward(g)
    if is_max:
        torch.testing.assert_close(xo.grad, xt.grad, rtol=0, atol=0)
    else:
        torch.testing.assert_close(xo.grad, xt.grad)


@pytest.mark.parametrize("name, args, kwargs", CASES)
def test_module_matches_torch(name, args, kwargs):
    cls, tcls = PAIRS[name]
    ours, theirs = cls(*args, **kwargs), tcls(*args, **kwargs)

    assert isinstance(ours, tcls) and isinstance(ours, nn.Module)
    assert type(ours).__name__ == tcls.__name__
    assert repr(ours) == repr(theirs)
    assert str(ours) == str(theirs)
    assert ours.extra_repr() == theirs.extra_repr()
    assert attributes(ours) == attributes(theirs)
    assert ours.state_dict() == theirs.state_dict() == {}
    assert list(ours.parameters()) == [] and list(ours.buffers()) == []

    rank = int(name[-2])
    is_max = name.startswith("Max")
    x = make_input(INPUT_SHAPES[rank], ties=is_max)
    compare_forward_backward(ours, theirs, x, is_max)
    # unbatched
    compare_forward_backward(ours, theirs, make_input(INPUT_SHAPES[rank][1:], seed=2), is_max)

    # deepcopy and pickling keep the class, the attributes and the behaviour
    for clone in (copy.deepcopy(ours), pickle.loads(pickle.dumps(ours))):
        assert type(clone) is cls
        assert attributes(clone) == attributes(ours)
        assert repr(clone) == repr(theirs)
        compare_forward_backward(clone, theirs, x, is_max)

    # a state_dict round trip (empty) and torch.save of the whole module
    fresh = cls(*args, **kwargs)
    fresh.load_state_dict(theirs.state_dict())
    buf = io.BytesIO()
    torch.save(ours, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    assert type(loaded) is cls and attributes(loaded) == attributes(ours)

    # train/eval changes nothing
    ours.eval()
    theirs.eval()
    with torch.no_grad():
        yo, yt = ours(x), theirs(x)
    if is_max and theirs.return_indices:
        (yo, i_o), (yt, i_t) = yo, yt
        assert torch.equal(i_o, i_t)
    torch.testing.assert_close(yo, yt, **({"rtol": 0, "atol": 0} if is_max else {}))


@pytest.mark.parametrize("name", list(PAIRS))
def test_module_channels_last_and_double(name):
    cls, tcls = PAIRS[name]
    rank = int(name[-2])
    is_max = name.startswith("Max")
    ours, theirs = cls(3, 2, 1), tcls(3, 2, 1)
    x = make_input((2, 4) + (7,) * rank, seed=3).double()
    compare_forward_backward(ours, theirs, x, is_max)
    if rank > 1:
        fmt = torch.channels_last if rank == 2 else torch.channels_last_3d
        compare_forward_backward(ours, theirs, x.contiguous(memory_format=fmt), is_max)


@pytest.mark.parametrize("name", [n for n in PAIRS if n.startswith("Max")])
def test_max_module_indices_feed_max_unpool(name):
    cls, _ = PAIRS[name]
    rank = int(name[-2])
    unpool = getattr(nn, f"MaxUnpool{rank}d")(2)
    ours, theirs = cls(2, return_indices=True), getattr(nn, name)(2, return_indices=True)
    x = make_input((2, 3) + (6,) * rank, seed=4)
    (yo, i_o), (yt, i_t) = ours(x), theirs(x)
    assert torch.equal(unpool(yo, i_o), unpool(yt, i_t))


# ---------------------------------------------------------------------------
# functional signatures
# ---------------------------------------------------------------------------

_MAX_SIG = [("input", inspect.Parameter.empty), ("kernel_size", inspect.Parameter.empty),
            ("stride", None), ("padding", 0), ("dilation", 1), ("ceil_mode", False),
            ("return_indices", False)]
_AVG1_SIG = [("input", inspect.Parameter.empty), ("kernel_size", inspect.Parameter.empty),
             ("stride", None), ("padding", 0), ("ceil_mode", False),
             ("count_include_pad", True)]
_AVG_SIG = _AVG1_SIG + [("divisor_override", None)]
SIGNATURES = {
    "max_pool1d": _MAX_SIG,
    "max_pool2d": _MAX_SIG,
    "max_pool3d": _MAX_SIG,
    "avg_pool1d": _AVG1_SIG,
    "avg_pool2d": _AVG_SIG,
    "avg_pool3d": _AVG_SIG,
}


@pytest.mark.parametrize("op", list(SIGNATURES))
def test_functional_signature(op):
    sig = inspect.signature(getattr(PF, op))
    got = [(p.name, p.default) for p in sig.parameters.values()]
    assert got == SIGNATURES[op]
    for p in sig.parameters.values():
        assert p.kind == inspect.Parameter.POSITIONAL_OR_KEYWORD, p
    assert op in PF.__all__


# Non-default values for every argument, in signature order.
CALL_VALUES = {
    "max_pool1d": (3, 2, 1, 2, True, True),
    "max_pool2d": ((3, 2), (2, 1), (1, 1), (1, 2), True, True),
    "max_pool3d": (3, (2, 1, 2), 1, (2, 1, 1), True, True),
    "avg_pool1d": (3, 2, 1, True, False),
    "avg_pool2d": ((3, 2), (2, 1), (1, 1), True, False, 3),
    "avg_pool3d": (3, (2, 1, 2), 1, True, True, -4),
}


@pytest.mark.parametrize("op", list(CALL_VALUES))
def test_functional_calls_positional_and_keyword(op):
    rank = int(op[-2])
    x = make_input((2, 3) + (7,) * rank, seed=5, ties=op.startswith("max"))
    values = CALL_VALUES[op]
    names = [n for n, _ in SIGNATURES[op]][1:]
    kw = dict(zip(names, values))
    ref = getattr(TF, op)(x, *values)
    results = [
        getattr(PF, op)(x, *values),
        getattr(PF, op)(x, kernel_size=values[0], **{k: v for k, v in kw.items()
                                                   if k != "kernel_size"}),
        getattr(PF, op)(input=x, **kw),
        getattr(PF, op)(x, values[0], *values[1:3], **dict(list(kw.items())[3:])),
    ]
    assert getattr(TF, op)(input=x, **kw) is not None
    for res in results:
        if op.startswith("max"):
            (y, i), (yr, ir) = res, ref
            assert torch.equal(i, ir)
            torch.testing.assert_close(y, yr, rtol=0, atol=0)
        else:
            torch.testing.assert_close(res, ref)
    # defaults: only input and kernel_size
    d_ours, d_ref = getattr(PF, op)(x, 2), getattr(TF, op)(x, 2)
    torch.testing.assert_close(d_ours, d_ref, **({"rtol": 0, "atol": 0}
                                                 if op.startswith("max") else {}))


# ---------------------------------------------------------------------------
# a small CNN
# ---------------------------------------------------------------------------

def _cnn(lib):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        lib.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        lib.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
        nn.Conv2d(16, 16, 1),
        lib.AvgPool2d(2, count_include_pad=False),
        nn.Flatten(1),
        nn.Linear(16 * 2 * 2, 10),
    )


def _cnn1d3d(lib):
    torch.manual_seed(1)
    return nn.ModuleDict({
        "seq1d": nn.Sequential(nn.Conv1d(2, 4, 3), lib.MaxPool1d(2), nn.Tanh(),
                               lib.AvgPool1d(3, 1, 1), nn.Flatten(1)),
        "seq3d": nn.Sequential(nn.Conv3d(2, 4, 3), lib.MaxPool3d(2, ceil_mode=True), nn.Tanh(),
                               lib.AvgPool3d(2, 1), nn.Flatten(1)),
    })


def _grads(model):
    return [p.grad.clone() for p in model.parameters()]


def test_sequential_cnn_matches_torch():
    ours, theirs = _cnn(poolext), _cnn(nn)
    theirs.load_state_dict(ours.state_dict())
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    assert repr(ours) == repr(theirs)
    x = make_input((4, 3, 16, 16), seed=6)
    for model in (ours, theirs):
        model.train()
        model.zero_grad()
        model(x).logsumexp(1).sum().backward()
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=0)
    for go, gt in zip(_grads(ours), _grads(theirs)):
        torch.testing.assert_close(go, gt)
    ours.eval()
    theirs.eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=0)
    # the poolext model survives a deepcopy and pickling
    for clone in (copy.deepcopy(ours), pickle.loads(pickle.dumps(ours))):
        with torch.no_grad():
            torch.testing.assert_close(clone(x), theirs(x), rtol=0, atol=0)


def test_sequential_1d_3d_matches_torch():
    ours, theirs = _cnn1d3d(poolext), _cnn1d3d(nn)
    theirs.load_state_dict(ours.state_dict())
    inputs = {"seq1d": make_input((3, 2, 20), seed=7), "seq3d": make_input((2, 2, 9, 8, 7),
                                                                            seed=8)}
    for key, x in inputs.items():
        yo, yt = ours[key](x), theirs[key](x)
        torch.testing.assert_close(yo, yt)
        yo.sum().backward()
        yt.sum().backward()
        for go, gt in zip(_grads(ours[key]), _grads(theirs[key])):
            torch.testing.assert_close(go, gt)
