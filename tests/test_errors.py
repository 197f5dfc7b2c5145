"""poolext refuses exactly what torch refuses, and says why.

For every invalid call torch raises and poolext raises too, with torch's
exception class and a message that names the offending argument and its
value.  For every valid edge call both succeed and agree.  A seeded random
sweep over small, often invalid, argument combinations checks that poolext
raises if and only if torch raises.  Direct calls of torch.ops.poolext.* with
bad arguments raise instead of crashing.
"""

import random

import pytest
import torch
import torch.nn.functional as TF

import poolext  # noqa: F401  (registers torch.ops.poolext)
import poolext.functional as PF
from cases import old_torch_skip, same_memory_format, torch_behaves_old

ALLOWED = (RuntimeError, ValueError, TypeError, NotImplementedError)
BIG = 2**31  # first value past int32
K32 = 2**31 - 1  # largest int32

MAX_OPS = ("max_pool1d", "max_pool2d", "max_pool3d")
AVG_OPS = ("avg_pool1d", "avg_pool2d", "avg_pool3d")
OPS = MAX_OPS + AVG_OPS


def rank_of(op):
    return int(op[-2])


def shape_for(op, n=1, c=2, size=5):
    """A batched (n given) or unbatched (n None) input shape for op."""
    return ((n,) if n is not None else ()) + (c,) + (size,) * rank_of(op)


def make_input(shape, dtype=torch.float32, requires_grad=False, channels_last=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.bool:
        x = torch.randint(0, 2, shape, generator=g).bool()
    elif dtype.is_complex:
        x = torch.randn(shape, generator=g, dtype=dtype)
    elif dtype.is_floating_point:
        x = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    else:
        x = torch.randint(0, 100, shape, generator=g).to(dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last if len(shape) == 4
                         else torch.channels_last_3d)
    return x.requires_grad_(requires_grad)


def fmt(v):
    """How poolext prints an argument list: a tuple."""
    return repr(tuple(v))


def _call(lib, op, x, args, kwargs):
    return getattr(lib, op)(x, *args, **kwargs)


# ---------------------------------------------------------------------------
# (a) invalid calls
# ---------------------------------------------------------------------------

def bad(name, op, shape, *args, must, dtype=torch.float32, grad=False, cls=None, change=None,
        **kwargs):
    """One invalid call: `must` are substrings poolext's message must contain;
    `cls` overrides the expected exception class (default: torch's); `change`
    names the TORCH_CHANGES entry under which an older torch takes the call."""
    return pytest.param(op, shape, dtype, grad, args, kwargs, must, cls, id=f"{op}-{name}",
                        marks=[old_torch_skip(change)] if change else [])


def _invalid_rows():
    rows = []
    for op in OPS:
        r = rank_of(op)
        x = shape_for(op)
        rows += [
            bad("stride0", op, x, 2, stride=0, must=[f"stride={fmt([0] * r)}"]),
            bad("stride-neg", op, x, 2, stride=-1, must=[f"stride={fmt([-1] * r)}"]),
            bad("kernel0", op, x, 0, must=[f"kernel_size={fmt([0] * r)}"]),
            bad("kernel-neg", op, x, -1, must=[f"kernel_size={fmt([-1] * r)}"]),
            bad("padding-neg", op, x, 3, padding=-1, must=[f"padding={fmt([-1] * r)}"]),
            bad("padding-over-half", op, x, 3, padding=2,
                must=[f"padding={fmt([2] * r)}", f"kernel_size={fmt([3] * r)}"]),
            # avg_pool3d refuses any input smaller than the kernel, before sizing the output.
            bad("output-too-small", op, x, 7,
                must=["smaller than" if op == "avg_pool3d" else "output size",
                      f"kernel_size={fmt([7] * r)}", "input of shape (1, 2, 5"]),
            bad("ceil-mode-size0", op, shape_for(op, size=1), 2, stride=1, ceil_mode=True,
                must=(["smaller than"] if op == "avg_pool3d" else ["output size", "ceil_mode=True"])
                + [f"kernel_size={fmt([2] * r)}", "input of shape " + fmt(shape_for(op, size=1))]),
            bad("rank-too-few", op, (5,) * r, 2, must=["input of shape " + fmt((5,) * r)],
                # torch's avg_pool2d fails on a dimension lookup (IndexError) there
                cls=(IndexError, RuntimeError) if op == "avg_pool2d" else None),
            bad("rank-too-many", op, (1,) * (r + 3), 1,
                must=["input of shape " + fmt((1,) * (r + 3))]),
            bad("C0", op, shape_for(op, c=0), 2,
                must=["input of shape " + fmt(shape_for(op, c=0))]),
            bad("spatial0", op, (1, 2, 0) + (5,) * (r - 1), 2,
                must=["input of shape " + fmt((1, 2, 0) + (5,) * (r - 1))]),
            bad("unbatched-C0", op, (0,) + (5,) * r, 2,
                must=["input of shape " + fmt((0,) + (5,) * r)]),
            bad("bool", op, x, 2, dtype=torch.bool, must=["torch.bool"]),
            bad("complex64", op, x, 2, dtype=torch.complex64, must=["torch.complex64"]),
            bad("kernel-float", op, x, 2.0, must=["kernel_size=2.0"]),
            bad("kernel-bool", op, x, True, must=["kernel_size=True"]),
            bad("kernel-None", op, x, None, must=["kernel_size=None"]),
            bad("kernel-str", op, x, "2", must=["kernel_size='2'"]),
            bad("stride-float", op, x, 2, stride=1.0, must=["stride=1.0"]),
            bad("padding-float", op, x, 2, padding=0.0, must=["padding=0.0"]),
            bad("padding-None", op, x, 2, padding=None, must=["padding=None"]),
            bad("input-list", op, [[1.0]], 2, must=["input", "list"]),
            bad("kernel-empty-list", op, x, [], must=["kernel_size=[]"]),
            bad("padding-empty-list", op, x, 2, padding=[], must=["padding=[]"]),
            bad("kernel-too-long", op, x, [2] * (r + 1), must=[f"kernel_size={[2] * (r + 1)}"]),
            bad("stride-too-long", op, x, 2, stride=[1] * (r + 1),
                must=[f"stride={[1] * (r + 1)}"]),
            bad("padding-too-long", op, x, 2, padding=[0] * (r + 1),
                must=[f"padding={[0] * (r + 1)}"]),
            bad("ceil_mode-None", op, x, 2, ceil_mode=None, must=["ceil_mode=None"]),
            bad("ceil_mode-int", op, x, 2, ceil_mode=1, must=["ceil_mode=1"]),
        ]
        if r > 1:
            rows += [
                bad("kernel-mixed-float", op, x, (2,) * (r - 1) + (2.0,),
                    must=["kernel_size=" + repr((2,) * (r - 1) + (2.0,))]),
                bad("kernel-2-of-3" if r == 3 else "kernel-3-of-2", op, x, [2] * (5 - r),
                    must=[f"kernel_size={[2] * (5 - r)}"]),
                bad("kernel-huge", op, x, BIG, must=[f"kernel_size={fmt([BIG] * r)}"]),
                bad("stride-huge", op, x, 2, stride=BIG, must=[f"stride={fmt([BIG] * r)}"],
                    change="avg-stride-overflow" if op == "avg_pool2d" else None),
                bad("padding-huge", op, x, 2, padding=BIG, must=[f"padding={fmt([BIG] * r)}"]),
            ]
        if op.startswith("max"):
            rows += [
                bad("dilation0", op, x, 2, dilation=0, must=[f"dilation={fmt([0] * r)}"]),
                bad("dilation-neg", op, x, 2, dilation=-2, must=[f"dilation={fmt([-2] * r)}"]),
                bad("dilation-float", op, x, 2, dilation=1.0, must=["dilation=1.0"]),
                bad("dilation-too-long", op, x, 2, dilation=[1] * (r + 1),
                    must=[f"dilation={[1] * (r + 1)}"]),
                # torch compares padding with the plain kernel size, whatever the dilation
                bad("padding-over-half-dilated", op, x, 2, padding=2, dilation=3,
                    must=[f"padding={fmt([2] * r)}", f"kernel_size={fmt([2] * r)}"]),
            ]
            if r > 1:
                rows.append(bad("dilation-huge", op, x, 2, dilation=BIG,
                                must=[f"dilation={fmt([BIG] * r)}"]))
        else:
            for dt in (torch.int32, torch.uint8, torch.int8, torch.int16):
                rows.append(bad(str(dt).replace("torch.", ""), op, x, 2, dtype=dt,
                                must=[str(dt)]))
            rows += [
                bad("count_include_pad-None", op, x, 2, count_include_pad=None,
                    must=["count_include_pad=None"]),
                bad("count_include_pad-int", op, x, 2, count_include_pad=0,
                    must=["count_include_pad=0"]),
            ]
            if r > 1:
                rows += [
                    bad("divisor0", op, x, 2, divisor_override=0, must=["divisor_override=0"]),
                    bad("divisor-float", op, x, 2, divisor_override=2.0,
                        must=["divisor_override=2.0"]),
                    bad("divisor-bool", op, x, 2, divisor_override=True,
                        must=["divisor_override=True"]),
                ]
    # 1d specifics
    x1 = shape_for("max_pool1d")
    rows += [
        bad("kernel-2-of-1", "max_pool1d", x1, [2, 2], must=["kernel_size=[2, 2]"]),
        bad("kernel-2-of-1", "avg_pool1d", x1, [2, 2], must=["kernel_size=[2, 2]"]),
        bad("kernel-huge", "avg_pool1d", x1, BIG, must=[f"kernel_size={fmt([BIG])}"]),
        bad("stride-huge", "avg_pool1d", x1, 2, stride=BIG, must=[f"stride={fmt([BIG])}"],
            change="avg-stride-overflow"),
        bad("padding-huge", "avg_pool1d", x1, 2, padding=BIG, must=[f"padding={fmt([BIG])}"]),
        # max_pool1d refuses these through their size checks, not through int32 limits
        bad("kernel-huge", "max_pool1d", x1, BIG, must=[f"kernel_size={fmt([BIG])}"]),
        bad("padding-huge", "max_pool1d", x1, 2, padding=BIG, must=[f"padding={fmt([BIG])}"]),
        bad("dilation-huge", "max_pool1d", x1, 2, dilation=BIG, must=[f"dilation={fmt([BIG])}"]),
        # torch's plain 1d inference path takes 64-bit strides, but the paths that
        # keep indices (return_indices, or an input that requires grad) refuse
        # strides past int32
        bad("stride-huge-return_indices", "max_pool1d", x1, 2, stride=BIG, return_indices=True,
            must=[f"stride={fmt([BIG])}"]),
        bad("stride-huge-requires_grad", "max_pool1d", x1, 2, stride=BIG, grad=True,
            must=[f"stride={fmt([BIG])}"]),
        bad("stride-huge-requires_grad-unbatched", "max_pool1d", (2, 5), 2, stride=BIG, grad=True,
            must=[f"stride={fmt([BIG])}"]),
        # torch's avg_pool3d (only it) refuses an input smaller than the kernel,
        # even where padding or ceil_mode would give a valid output size
        bad("input-smaller-than-kernel", "avg_pool3d", (1, 2, 2, 2, 2), 3, stride=1, padding=1,
            must=["kernel_size=(3, 3, 3)", "(1, 2, 2, 2, 2)"]),
        bad("input-smaller-than-kernel-one-dim", "avg_pool3d", (1, 2, 2, 5, 5), 3, stride=1,
            padding=1, must=["kernel_size=(3, 3, 3)", "(1, 2, 2, 5, 5)"]),
        bad("input-smaller-than-kernel-ceil", "avg_pool3d", (1, 2, 1, 1, 1), 3, ceil_mode=True,
            must=["kernel_size=(3, 3, 3)", "(1, 2, 1, 1, 1)"]),
        bad("input-smaller-than-kernel-zero-batch", "avg_pool3d", (0, 2, 2, 2, 2), 3, stride=1,
            padding=1, must=["kernel_size=(3, 3, 3)", "(0, 2, 2, 2, 2)"]),
    ]
    return rows


INVALID = _invalid_rows()


@pytest.mark.parametrize("op, shape, dtype, grad, args, kwargs, must, cls", INVALID)
def test_invalid_call_raises_like_torch(op, shape, dtype, grad, args, kwargs, must, cls):
    x = make_input(shape, dtype, grad) if isinstance(shape, tuple) else shape
    with pytest.raises(Exception) as t_info:
        _call(TF, op, x, args, kwargs)
    with pytest.raises(ALLOWED) as p_info:
        _call(PF, op, x, args, kwargs)
    expected = cls if cls is not None else type(t_info.value)
    assert isinstance(p_info.value, expected), (
        f"torch raised {type(t_info.value).__name__}, poolext {type(p_info.value).__name__}: "
        f"{p_info.value}")
    msg = str(p_info.value)
    assert msg.startswith(op) or f"({op}: " in msg, msg
    for s in must:
        assert s in msg, f"{s!r} not in {msg!r}"


# The refusals whose message starts with torch's own sentence (values included),
# on every path torch takes: with and without grad, with and without indices.
WORDS = ("stride0", "stride-neg", "kernel0", "kernel-neg", "padding-neg", "padding-over-half",
         "padding-over-half-dilated", "dilation0", "dilation-neg", "output-too-small",
         "ceil-mode-size0", "C0", "spatial0", "unbatched-C0", "input-smaller-than-kernel",
         "input-smaller-than-kernel-one-dim", "input-smaller-than-kernel-ceil",
         "input-smaller-than-kernel-zero-batch")
WORD_ROWS = [pytest.param(*p.values, id=p.id, marks=p.marks) for p in INVALID
             if p.id.split("-", 1)[1] in WORDS]


def _first_line(e):
    return str(e).splitlines()[0] if str(e) else ""


@pytest.mark.parametrize("grad", [False, True], ids=["no-grad", "grad"])
@pytest.mark.parametrize("return_indices", [False, True], ids=["values", "indices"])
@pytest.mark.parametrize("op, shape, dtype, _grad, args, kwargs, must, cls", WORD_ROWS)
def test_refusal_words_are_torchs(op, shape, dtype, _grad, args, kwargs, must, cls, grad,
                                  return_indices):
    if return_indices and not op.startswith("max"):
        pytest.skip("only max pooling returns indices")
    if return_indices:
        kwargs = dict(kwargs, return_indices=True)
    x = make_input(shape, dtype, grad)
    with pytest.raises(Exception) as t_info:
        _call(TF, op, x, args, kwargs)
    with pytest.raises(type(t_info.value)) as p_info:
        _call(PF, op, x, args, kwargs)
    words = _first_line(t_info.value)
    if words == "integer out of range":
        # torch 2.11's avg_pool1d/2d fail converting a negative kernel or stride before any
        # pooling check: there is no refusal sentence to match
        pytest.skip("torch raises 'integer out of range' here, not a pooling refusal")
    assert str(p_info.value).startswith(words), (words, str(p_info.value))


# ---------------------------------------------------------------------------
# (b) valid edge calls
# ---------------------------------------------------------------------------

def ok(name, op, shape, *args, dtype=torch.float32, grad=True, cl=False, ramp=False,
       change=None, **kwargs):
    """One valid call; grad: also compare gradients (float inputs); ramp: the
    input counts up along its last dims, so each window's maximum is its last
    in-bounds element; change: the TORCH_CHANGES entry under which an older
    torch gets the call wrong or refuses it."""
    return pytest.param(op, shape, dtype, grad, cl, ramp, args, kwargs, id=f"{op}-{name}",
                        marks=[old_torch_skip(change)] if change else [])


def _valid_rows():
    rows = []
    for op in OPS:
        r = rank_of(op)
        rows += [
            ok("zero-batch", op, shape_for(op, n=0), 2),
            ok("zero-batch-padded", op, shape_for(op, n=0), 3, 2, 1),
            ok("unbatched", op, shape_for(op, n=None), 2, 1, 1),
            ok("stride-empty-list", op, shape_for(op), 2, []),
            ok("stride-empty-tuple", op, shape_for(op), 2, ()),
            ok("stride-None", op, shape_for(op), 2, None),
            ok("kernel-1-element-list", op, shape_for(op), [3], (2,), [1]),
            ok("kernel-tensor", op, shape_for(op), torch.tensor(2), change="sizes-as-tensors"),
            ok("kernel1-stride1", op, shape_for(op), 1, 1),
            ok("padding-half-even", op, shape_for(op, size=6), 4, 1, 2),
            ok("padding-half-odd", op, shape_for(op, size=6), 5, 2, 2),
            # the last window would start in the right padding: ceil_mode drops it
            ok("ceil-window-in-right-padding", op, shape_for(op), 3, 3, 1, ceil_mode=True),
            ok("ceil-overhang", op, shape_for(op, size=6), 3, 2, 1, ceil_mode=True),
            ok("mixed-per-dim", op, (2, 3) + (7, 6, 5)[:r], [3, 2, 3][:r], [2, 1, 3][:r],
               [1, 0, 1][:r], ceil_mode=True),
        ]
        if op != "avg_pool3d":  # (torch's avg_pool3d refuses an input smaller than the kernel)
            rows.append(ok("ceil-kernel-over-input", op, shape_for(op, size=2), 3, 3, 1,
                           ceil_mode=True))
        if r > 1:
            rows.append(ok("channels-last", op, shape_for(op, n=2, c=3, size=6), 3, 2, 1,
                           cl=True))
        if op.startswith("max"):
            rows += [
                ok("dilation-padding", op, shape_for(op, size=6), 3, 1, 1, 2),
                ok("dilation-padding-ceil", op, shape_for(op, size=6), 3, 2, 1, 2,
                   ceil_mode=True),
                ok("dilation-wide", op, shape_for(op, size=6), 2, 1, 1, 3),
                ok("return_indices", op, shape_for(op, size=6), 3, 2, 1, 2, return_indices=True),
                ok("return_indices-unbatched", op, shape_for(op, n=None, size=6), 2,
                   return_indices=True),
                ok("return_indices-zero-batch", op, shape_for(op, n=0), 2,
                   return_indices=True),
                # a window with no in-bounds element (dilation skips the input);
                # its gradient is not compared: torch sends it to an unrelated element
                ok("empty-window", op, shape_for(op, size=1), 2, 1, 1, 2, return_indices=True,
                   grad=False),
                ok("uint8-indices", op, shape_for(op), 2, dtype=torch.uint8, grad=False,
                   return_indices=True),
            ]
            if r > 1:
                rows += [
                    ok("int64", op, shape_for(op), 3, 2, 1, dtype=torch.int64, grad=False),
                    ok("int32", op, shape_for(op), 3, 2, 1, dtype=torch.int32, grad=False),
                    ok("int8", op, shape_for(op), 2, dtype=torch.int8, grad=False),
                    ok("dilation-per-dim", op, shape_for(op, size=7), 3, 2, 1,
                       [2, 3, 1][:r], ceil_mode=True),
                ]
        else:
            rows += [
                ok("count_include_pad-False", op, shape_for(op), 3, 2, 1,
                   count_include_pad=False),
                ok("count_include_pad-False-ceil", op, shape_for(op, size=6), 3, 2, 1,
                   ceil_mode=True, count_include_pad=False),
                ok("int64", op, shape_for(op), 3, 2, 1, dtype=torch.int64, grad=False),
                ok("float64", op, shape_for(op), 3, 2, 1, dtype=torch.float64),
                ok("stride-int32-max", op, shape_for(op), 2, K32),
            ]
            if r > 1:
                rows += [
                    ok("divisor-negative", op, shape_for(op), 3, 2, 1, divisor_override=-2),
                    ok("divisor-1", op, shape_for(op), 3, 2, 1, ceil_mode=True,
                       divisor_override=1),
                    ok("divisor-past-int32", op, shape_for(op), 2, divisor_override=2**40,
                       change="divisor-int64"),
                    ok("divisor-int64-max", op, shape_for(op), 2, divisor_override=2**63 - 1,
                       change="divisor-int64"),
                ]
    rows += [
        # torch's plain 1d max pooling takes 64-bit strides
        ok("stride-past-int32", "max_pool1d", (1, 2, 5), 2, BIG, grad=False),
        ok("stride-past-int32-padded", "max_pool1d", (1, 2, 3), 2, BIG, 1, grad=False),
        ok("stride-past-int32-unbatched", "max_pool1d", (2, 5), 2, BIG, grad=False),
        ok("stride-past-int32-ceil", "max_pool1d", (1, 2, 5), 2, BIG, ceil_mode=True, grad=False),
        ok("stride-2^40", "max_pool1d", (1, 2, 5), 2, 2**40, grad=False),
        ok("stride-2^48", "max_pool1d", (1, 2, 5), 2, 2**48, grad=False),
        ok("stride-2^62", "max_pool1d", (1, 2, 5), 2, 2**62, grad=False),
        ok("stride-int64-max", "max_pool1d", (1, 2, 5), 2, 2**63 - 1, grad=False),
    ]
    return rows


VALID = _valid_rows()


# Documented refusals: absurd windows torch accepts (spending seconds looping
# over them) that poolext refuses with a clear message: kernel and dilation
# past int32 on torch's plain 1d max path, and windows of more than 2^31-1
# elements, whose winner's offset would not fit the 32-bit argmax.
DEVIATIONS = [
    pytest.param("max_pool1d", (1, 2, 3), (1, 1, 0, BIG), {}, "dilation=(2147483648,)",
                 id="max_pool1d-dilation-past-int32"),
    pytest.param("max_pool1d", (1, 2, 1), (BIG, BIG), {"ceil_mode": True},
                 "kernel_size=(2147483648,)", id="max_pool1d-kernel-past-int32"),
    pytest.param("max_pool2d", (1, 2, 1, 1), (K32, K32), {"ceil_mode": True},
                 "kernel_size=(2147483647, 2147483647)", id="max_pool2d-kernel-int32-max"),
    pytest.param("max_pool3d", (1, 2, 3, 1, 1), ((3, K32, K32), (3, K32, K32)),
                 {"ceil_mode": True}, "kernel_size=(3, 2147483647, 2147483647)",
                 id="max_pool3d-window-past-2^63-elements"),
    pytest.param("max_pool2d", (1, 2, 3, 1), ((3, K32), (3, K32)), {"ceil_mode": True},
                 "kernel_size=(3, 2147483647)", id="max_pool2d-window-past-2^31-elements"),
    pytest.param("avg_pool2d", (1, 2, 3, 1), ((3, K32), (3, K32)), {"ceil_mode": True},
                 "kernel_size=(3, 2147483647)", id="avg_pool2d-window-past-2^31-elements"),
]


@pytest.mark.parametrize("op, shape, args, kwargs, must", DEVIATIONS)
def test_documented_refusals(op, shape, args, kwargs, must):
    x = torch.randn(shape)
    with pytest.raises(RuntimeError) as info:
        getattr(PF, op)(x, *args, **kwargs)
    assert str(info.value).startswith(op) and must in str(info.value), str(info.value)


def assert_same(a, b, exact):
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    assert a.shape == b.shape, (a.shape, b.shape)
    if exact:
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)
    else:
        torch.testing.assert_close(a, b, equal_nan=True)


@pytest.mark.parametrize("op, shape, dtype, grad, cl, ramp, args, kwargs", VALID)
def test_valid_edge_call_matches_torch(op, shape, dtype, grad, cl, ramp, args, kwargs):
    grad = grad and dtype.is_floating_point
    if ramp:
        x = torch.arange(torch.Size(shape).numel(), dtype=dtype).view(shape)
    else:
        x = make_input(shape, dtype, channels_last=cl)
    is_max = op.startswith("max")
    xt = x.detach().clone().requires_grad_(grad)
    xp = x.detach().clone().requires_grad_(grad)
    yt = _call(TF, op, xt, args, kwargs)
    yp = _call(PF, op, xp, args, kwargs)
    if kwargs.get("return_indices"):
        (yt, it), (yp, ip) = yt, yp
        assert_same(it, ip, exact=True)
    assert_same(yt, yp, exact=is_max)
    if not (cl and op == "avg_pool3d"):  # torch's CPU avg_pool3d drops channels_last_3d
        assert same_memory_format(yt, yp)
    if grad:
        g = torch.randn(yt.shape, dtype=yt.dtype, generator=torch.Generator().manual_seed(1))
        yt.backward(g)
        yp.backward(g)
        assert_same(xt.grad, xp.grad, exact=is_max)


def test_documented_supersets():
    """poolext takes two things torch's CPU kernels refuse, and gets them right:
    integer max_pool1d (torch's path with indices takes them) and half/bfloat16
    avg_pool3d (computed in float)."""
    # Older torch raises RuntimeError for these (TORCH_CHANGES["not-implemented-error"]).
    refusal = RuntimeError if torch_behaves_old("not-implemented-error") else NotImplementedError
    x = make_input((2, 3, 9), torch.int32)
    with pytest.raises(refusal, match="not implemented"):
        TF.max_pool1d(x, 3, 2, 1)
    ref = TF.max_pool1d(x, 3, 2, 1, return_indices=True)[0]
    assert torch.equal(PF.max_pool1d(x, 3, 2, 1), ref)
    for dt in (torch.float16, torch.bfloat16):
        x = make_input((2, 3, 5, 6, 7), dt)
        with pytest.raises(refusal, match="not implemented"):
            TF.avg_pool3d(x, 3, 2, 1)
        ref = TF.avg_pool3d(x.float(), 3, 2, 1).to(dt)
        y = PF.avg_pool3d(x, 3, 2, 1)
        assert y.dtype == dt
        torch.testing.assert_close(y, ref, atol=1e-2, rtol=1e-2)


# ---------------------------------------------------------------------------
# (c) random agreement: poolext raises if and only if torch raises
# ---------------------------------------------------------------------------

N_RANDOM = 300


def _draw_int(rng, lo, hi, bad):
    """Mostly in [lo, hi]; now and then one of the invalid values `bad`."""
    return rng.choice(bad) if rng.random() < 0.07 else rng.randint(lo, hi)


def _draw_list(rng, rank, lo, hi, bad):
    """An int, or a list of (usually) rank ints."""
    u = rng.random()
    if u < 0.4:
        return _draw_int(rng, lo, hi, bad)
    length = rank
    if u > 0.95:
        length = rng.choice([0, rank - 1, rank + 1])
    elif u > 0.87:
        length = 1
    return [_draw_int(rng, lo, hi, bad) for _ in range(length)]


def _draw_case(rng, op):
    rank = rank_of(op)
    u = rng.random()
    ndim = rank + (2 if u < 0.6 else 1 if u < 0.9 else rng.choice([0, 3]))
    shape = tuple(0 if rng.random() < 0.04 else rng.randint(1, 6) for _ in range(ndim))
    kw = {"kernel_size": _draw_list(rng, rank, 1, 4, [0, -1])}
    u = rng.random()
    if u < 0.15:
        kw["stride"] = None
    elif u < 0.2:
        kw["stride"] = []
    elif u < 0.85:
        kw["stride"] = _draw_list(rng, rank, 1, 3, [0, -1, -2])
    if rng.random() < 0.7:
        kw["padding"] = _draw_list(rng, rank, 0, 1, [-1, 2, 3])
    kw["ceil_mode"] = rng.random() < 0.5
    if op.startswith("max"):
        if rng.random() < 0.6:
            kw["dilation"] = _draw_list(rng, rank, 1, 3, [0, -1])
        kw["return_indices"] = rng.random() < 0.3
    else:
        kw["count_include_pad"] = rng.random() < 0.5
        if rank > 1 and rng.random() < 0.4:
            kw["divisor_override"] = rng.choice([0, 1, 3, -2])
    grad = rng.random() < 0.25
    return shape, kw, grad


def _outcome(lib, op, x, kw):
    try:
        return True, getattr(lib, op)(x, **kw)
    except Exception as e:  # noqa: BLE001  (what is raised is part of the comparison)
        return False, e


def agreement_problem(op, rng, seed):
    """Draws one (often invalid) call of op and runs it in torch and poolext: None when they
    agree (both raise, or both succeed with the same results), else what differs."""
    shape, kw, grad = _draw_case(rng, op)
    x = make_input(shape, torch.float32, requires_grad=grad, seed=seed)
    t_ok, t_res = _outcome(TF, op, x, kw)
    p_ok, p_res = _outcome(PF, op, x, kw)
    call = f"{op}(x of shape {shape}{', requires_grad' if grad else ''}, **{kw})"
    if t_ok != p_ok:
        return (f"{call}: torch: {'ok' if t_ok else repr(t_res)}; "
                f"poolext: {'ok' if p_ok else repr(p_res)}")
    if not t_ok:
        return None if isinstance(p_res, ALLOWED) else f"{call}: poolext raised {p_res!r}"
    if kw.get("return_indices"):
        (t_res, t_idx), (p_res, p_idx) = t_res, p_res
        if not torch.equal(t_idx, p_idx):
            return f"{call}: indices differ"
    try:
        assert_same(t_res, p_res, exact=op.startswith("max"))
    except AssertionError as e:
        return f"{call}: outputs differ: {str(e).splitlines()[0]}"
    return None


@pytest.mark.parametrize("op", OPS)
def test_random_agreement(op):
    rng = random.Random(20240611 + OPS.index(op))
    problems = [p for p in (agreement_problem(op, rng, i) for i in range(N_RANDOM)) if p]
    assert not problems, f"{len(problems)} of {N_RANDOM} calls disagree:\n" + "\n".join(
        problems[:20])


# ---------------------------------------------------------------------------
# (d) direct calls of torch.ops.poolext.*
# ---------------------------------------------------------------------------

ops = torch.ops.poolext
X2 = (2, 3, 6, 6)
GEOM2 = ([2, 2], [2, 2], [0, 0], [1, 1])  # kernel, stride, padding, dilation: output 3x3


def _max(x, k=(2, 2), s=(2, 2), p=(0, 0), d=(1, 1), ceil=False, cl=False):
    return ops.max_pool(x, list(k), list(s), list(p), list(d), ceil, cl, True, True)


def _argmax(shape=(2, 3, 3, 3), dtype=torch.uint8):
    return torch.zeros(shape, dtype=dtype)


def _go(shape=(2, 3, 3, 3), dtype=torch.float32):
    return torch.ones(shape, dtype=dtype)


def _direct_rows():
    x = lambda *s, dtype=torch.float32: make_input(s or X2, dtype)  # noqa: E731
    k, s, p, d = GEOM2
    rows = [
        ("max_pool-stride0", lambda: _max(x(), s=(0, 2)), ["stride=(0, 2)"]),
        ("max_pool-stride-neg", lambda: _max(x(), s=(2, -1)), ["stride=(2, -1)"]),
        ("max_pool-kernel0", lambda: _max(x(), k=(0, 2)), ["kernel_size=(0, 2)"]),
        ("max_pool-kernel-past-int32", lambda: _max(x(), k=(BIG, 2)),
         [f"kernel_size=({BIG}, 2)"]),
        ("max_pool-dilation0", lambda: _max(x(), d=(1, 0)), ["dilation=(1, 0)"]),
        ("max_pool-padding-neg", lambda: _max(x(), p=(-1, 0)), ["padding=(-1, 0)"]),
        ("max_pool-padding-over-half", lambda: _max(x(), p=(2, 0)), ["padding=(2, 0)"]),
        ("max_pool-kernel-4-entries", lambda: _max(x(), k=(2,) * 4, s=(2,) * 4, p=(0,) * 4,
                                                   d=(1,) * 4),
         ["kernel_size=(2, 2, 2, 2)"]),
        ("max_pool-kernel-empty", lambda: _max(x(), k=(), s=(), p=(), d=()), ["kernel_size=()"]),
        ("max_pool-stride-short", lambda: _max(x(), s=(2,)), ["stride=(2,)"]),
        ("max_pool-padding-long", lambda: _max(x(), p=(0, 0, 0)), ["padding=(0, 0, 0)"]),
        ("max_pool-dilation-short", lambda: _max(x(), d=(1,)), ["dilation=(1,)"]),
        ("max_pool-rank", lambda: _max(x(6, 6)), ["input of shape (6, 6)"]),
        ("max_pool-C0", lambda: _max(x(2, 0, 6, 6)), ["input of shape (2, 0, 6, 6)"]),
        ("max_pool-too-small", lambda: _max(x(2, 3, 1, 6)), ["output size", "(2, 3, 1, 6)"]),
        ("max_pool-channels_last-unbatched", lambda: _max(x(3, 6, 6), cl=True),
         ["channels_last"]),
        ("max_pool-bool", lambda: _max(x(dtype=torch.bool)), ["Bool"]),
        ("max_pool_backward-argmax-int64", lambda: ops.max_pool_backward(
            _go(), _argmax(dtype=torch.int64), list(X2), k, s, p, d, False, False),
         ["argmax", "Long"]),
        ("max_pool_backward-argmax-int16", lambda: ops.max_pool_backward(
            _go(), _argmax(dtype=torch.int16), list(X2), k, s, p, d, False, False),
         ["argmax", "Short"]),
        ("max_pool_backward-argmax-shape", lambda: ops.max_pool_backward(
            _go(), _argmax((2, 3, 3, 2)), list(X2), k, s, p, d, False, False),
         ["argmax", "(2, 3, 3, 2)"]),
        ("max_pool_backward-argmax-empty", lambda: ops.max_pool_backward(
            _go(), _argmax((0,)), list(X2), k, s, p, d, False, False),
         ["argmax", "(0,)"]),
        ("max_pool_backward-grad_output-shape", lambda: ops.max_pool_backward(
            _go((2, 3, 3, 4)), _argmax(), list(X2), k, s, p, d, False, False),
         ["grad_output", "(2, 3, 3, 4)"]),
        ("max_pool_backward-grad_output-int", lambda: ops.max_pool_backward(
            _go(dtype=torch.int32), _argmax(), list(X2), k, s, p, d, False, False),
         ["grad_output", "Int"]),
        ("max_pool_backward-input_size-rank", lambda: ops.max_pool_backward(
            _go(), _argmax(), [6, 6], k, s, p, d, False, False), ["input of shape (6, 6)"]),
        ("max_pool_backward-input_size-negative-batch", lambda: ops.max_pool_backward(
            _go(), _argmax(), [-2, 3, 6, 6], k, s, p, d, False, False), ["(-2, 3"]),
        ("max_pool_backward-input_size-negative", lambda: ops.max_pool_backward(
            _go(), _argmax(), [2, 3, -6, 6], k, s, p, d, False, False), ["(2, 3, -6, 6)"]),
        ("max_pool_backward-stride0", lambda: ops.max_pool_backward(
            _go(), _argmax(), list(X2), k, [0, 2], p, d, False, False), ["stride=(0, 2)"]),
        ("max_pool_backward-kernel-short", lambda: ops.max_pool_backward(
            _go(), _argmax(), list(X2), [2], s, p, d, False, False), ["stride=(2, 2)"]),
        ("max_pool_gather-argmax-dtype", lambda: ops.max_pool_gather(
            x(), _argmax(dtype=torch.int32), k, s, p, d, False, False), ["argmax", "Int"]),
        ("max_pool_gather-argmax-shape", lambda: ops.max_pool_gather(
            x(), _argmax((2, 3, 9)), k, s, p, d, False, False), ["argmax", "(2, 3, 9)"]),
        ("max_pool_gather-source-int", lambda: ops.max_pool_gather(
            x(dtype=torch.int32), _argmax(), k, s, p, d, False, False), ["source", "Int"]),
        ("max_pool_gather-dilation-long", lambda: ops.max_pool_gather(
            x(), _argmax(), k, s, p, [1, 1, 1], False, False), ["dilation=(1, 1, 1)"]),
        ("avg_pool-stride0", lambda: ops.avg_pool(x(), k, [2, 0], p, False, True, None, False),
         ["stride=(2, 0)"]),
        ("avg_pool-divisor0", lambda: ops.avg_pool(x(), k, s, p, False, True, 0, False),
         ["divisor_override=0"]),
        ("avg_pool-padding-long", lambda: ops.avg_pool(x(), k, s, [0, 0, 0], False, True, None,
                                                       False),
         ["padding=(0, 0, 0)"]),
        ("avg_pool-int32", lambda: ops.avg_pool(x(dtype=torch.int32), k, s, p, False, True, None,
                                                False), ["Int"]),
        ("avg_pool-bool", lambda: ops.avg_pool(x(dtype=torch.bool), k, s, p, False, True, None,
                                               False), ["Bool"]),
        ("avg_pool-rank", lambda: ops.avg_pool(x(2, 1, 3, 6, 6), k, s, p, False, True, None,
                                               False), ["input of shape (2, 1, 3, 6, 6)"]),
        ("avg_pool_backward-grad_output-shape", lambda: ops.avg_pool_backward(
            _go((2, 3, 2, 3)), list(X2), k, s, p, False, True, None, False),
         ["grad_output", "(2, 3, 2, 3)"]),
        ("avg_pool_backward-grad_output-int", lambda: ops.avg_pool_backward(
            _go(dtype=torch.int64), list(X2), k, s, p, False, True, None, False),
         ["grad_output", "Long"]),
        ("avg_pool_backward-divisor0", lambda: ops.avg_pool_backward(
            _go(), list(X2), k, s, p, False, True, 0, False), ["divisor_override=0"]),
        ("avg_pool_backward-kernel-neg", lambda: ops.avg_pool_backward(
            _go(), list(X2), [2, -2], s, p, False, True, None, False),
         ["kernel_size=(2, -2)"]),
        ("avg_pool_backward-input_size-C0", lambda: ops.avg_pool_backward(
            _go(), [2, 0, 6, 6], k, s, p, False, True, None, False), ["(2, 0, 6, 6)"]),
    ]
    return [pytest.param(f, must, id=name) for name, f, must in rows]


@pytest.mark.parametrize("call, must", _direct_rows())
def test_direct_op_bad_arguments_raise(call, must):
    with pytest.raises((RuntimeError, NotImplementedError)) as info:
        call()
    msg = str(info.value)
    for s in must:
        assert s in msg, f"{s!r} not in {msg!r}"


def test_direct_op_garbage_argmax_does_not_crash():
    """An argmax of the right dtype and shape but naming taps outside the
    window (or outside the input) sends no gradient and gathers zeros."""
    k, s, p, d = [3, 3], [2, 2], [1, 1], [1, 1]
    x = make_input(X2)
    out, argmax, _ = ops.max_pool(x, k, s, p, d, False, False, True, False)
    for v in (9, 200, 255):
        bogus = torch.full_like(argmax, v)
        gi = ops.max_pool_backward(torch.ones_like(out), bogus, list(X2), k, s, p, d, False, False)
        assert gi.shape == x.shape and torch.equal(gi, torch.zeros_like(gi))
        g = ops.max_pool_gather(x, bogus, k, s, p, d, False, False)
        assert g.shape == out.shape and torch.equal(g, torch.zeros_like(g))
    # tap 0 of the first window lies in the padding: nothing flows either
    first = torch.zeros_like(argmax)
    gi = ops.max_pool_backward(torch.ones_like(out), first, list(X2), k, s, p, d, False, False)
    assert torch.isfinite(gi).all()


def _direct_op_call(op, x, args, kwargs):
    """The call of poolext's op underneath `op` (max_pool or avg_pool of any rank) with the
    arguments normalised as the functions normalise them."""
    import inspect

    rank = int(op[-2])
    bound = inspect.signature(getattr(PF, op)).bind(x, *args, **kwargs)
    bound.apply_defaults()
    a = bound.arguments

    def tup(v):
        return list(v) * (rank if len(v) == 1 else 1) if isinstance(v, (tuple, list)) \
            else [v] * rank

    k = tup(a["kernel_size"])
    s = tup(a["stride"]) if a["stride"] not in (None, [], ()) else k
    p = tup(a["padding"])
    if op.startswith("max"):
        return ops.max_pool(x, k, s, p, tup(a["dilation"]), a["ceil_mode"], False, False, False)
    return ops.avg_pool(x, k, s, p, a["ceil_mode"], a["count_include_pad"],
                        a.get("divisor_override"), False)


@pytest.mark.parametrize("op, shape, dtype, _grad, args, kwargs, must, cls", WORD_ROWS)
def test_direct_op_refusals_have_torchs_words(op, shape, dtype, _grad, args, kwargs, must, cls):
    """torch.ops.poolext.max_pool / avg_pool, called directly, refuse with torch's sentence
    (that of max_pool*d's indices path, which checks 1d as 2d) and poolext's detail after it."""
    if not op.startswith(("max_pool", "avg_pool")):
        pytest.skip("not a fixed-window op")
    x = make_input(shape, dtype, False)
    kw = dict(kwargs, return_indices=True) if op.startswith("max") else kwargs
    with pytest.raises(Exception) as t_info:
        _call(TF, op, x, args, kw)
    words = _first_line(t_info.value)
    if words == "integer out of range" or words.startswith("max_pool1d()"):
        pytest.skip("torch's words of another path")
    with pytest.raises(RuntimeError) as p_info:
        _direct_op_call(op, x, args, kwargs)
    assert str(p_info.value).startswith(words), (words, str(p_info.value))


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("what", ["empty-channels", "empty-spatial", "integer"])
def test_direct_adaptive_op_refusals_have_torchs_words(kind, rank, what):
    """torch.ops.poolext.adaptive_*_pool, called directly, refuse empty non-batch dims and
    integer inputs with the sentence of torch's adaptive_*_pool{rank}d."""
    shape = [2, 3] + [5] * rank
    if what == "empty-channels":
        shape[1] = 0
    elif what == "empty-spatial":
        shape[-1] = 0
    dtype = torch.int64 if what == "integer" else torch.float32
    x = torch.zeros(shape, dtype=dtype)
    out = [2] * rank
    theirs = getattr(TF, f"adaptive_{kind}_pool{rank}d")
    try:
        theirs(x, out)
    except (RuntimeError, NotImplementedError) as e:
        words = _first_line(e)
    else:
        words = None  # torch takes it (adaptive avg 1d/2d with no channels)
    if kind == "max":
        call = lambda: ops.adaptive_max_pool(x, out, False, False, False)  # noqa: E731
    else:
        call = lambda: ops.adaptive_avg_pool(x, out, False)  # noqa: E731
    if words is None:
        call()
        return
    with pytest.raises((RuntimeError, NotImplementedError)) as p_info:
        call()
    assert str(p_info.value).startswith(words), (words, str(p_info.value))
