"""max_unpool{1,2,3}d and MaxUnpool{1,2,3}d against torch.

CPU: random round trips (indices from poolext's and from torch's max pooling,
every float dtype, batched and unbatched, any layout of input and indices,
output_size given or not) bit for bit with torch, memory format included;
gradients; gradcheck and gradgradcheck; opcheck; torch.compile; every refusal
with torch's exception type; the modules.  The CUDA code is checked twice: its
host side and per-element bodies run on the host (tests/cuda_emulation.cpp)
against the CPU kernels here, and on a GPU, when there is one, against torch.
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
from cases import (FLOAT_TYPES, assert_bit_equal, assert_raises_like_torch, load_cuda_emulation,
                   random_values, rng_for, torch_behaves_old)

ops = torch.ops.poolext
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
RANKS = [1, 2, 3]
SEEDS = range(15)


def unpool_pair(rank):
    name = f"max_unpool{rank}d"
    return getattr(PF, name), getattr(TF, name)


def pool_fn(source, rank):
    return getattr(PF if source == "poolext" else TF, f"max_pool{rank}d")


def cl_format(rank):
    return torch.channels_last if rank == 2 else torch.channels_last_3d


def relayout(rng, t, rank, batched):
    """t with the same values in a random layout: contiguous, channels_last,
    a strided view, or transposed strides."""
    choice = rng.choice(["contiguous", "channels_last", "view", "transposed"])
    if choice == "channels_last" and batched and rank >= 2:
        return t.contiguous(memory_format=cl_format(rank))
    if choice == "view" and t.dim() >= 1:
        big = torch.zeros(*t.shape[:-1], 2 * t.shape[-1], dtype=t.dtype)
        big[..., ::2] = t
        return big[..., ::2]
    if choice == "transposed" and t.dim() >= 2:
        return t.transpose(-1, -2).contiguous().transpose(-1, -2)
    return t.contiguous()


def outcome(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs), None
    except Exception as e:  # noqa: BLE001  (the type is what is compared)
        return None, e


def assert_like_torch(ours, theirs, *args, **kwargs):
    """Both raise the same exception type, or both return the same bits,
    shape and strides.  Returns (ours, torch's) outputs, or None if raised."""
    ref, ref_err = outcome(theirs, *args, **kwargs)
    out, err = outcome(ours, *args, **kwargs)
    y = args[0]
    if (ref_err is not None and torch_behaves_old("half-unpool-cpu")
            and y.dtype in (torch.float16, torch.bfloat16)):
        # This torch has no half-type CPU unpooling; unpooling only moves
        # values, so torch's float32 result, cast back, is the exact answer.
        ref, ref_err = outcome(theirs, y.float(), *args[1:], **kwargs)
        if ref_err is None:
            assert err is None, f"poolext raised {err!r}, torch returned"
            assert_bit_equal(out, ref.to(y.dtype))
            return out, ref
    if ref_err is not None:
        assert err is not None, f"torch raised {ref_err!r}, poolext returned"
        if isinstance(ref_err, RuntimeError) and "integer multiplication overflow" in str(ref_err):
            # torch 2.11 meets a negative output size only when it allocates;
            # later versions check it first and raise ValueError, as poolext does.
            assert isinstance(err, ValueError) and "output_size" in str(err), (err, ref_err)
            return None
        assert_raises_like_torch(err, ref_err)
        return None
    assert err is None, f"poolext raised {err!r}, torch returned"
    assert_bit_equal(out, ref)
    name = getattr(theirs, "__name__", type(theirs).__name__)  # a function or a module
    if name.endswith("1d") and torch_behaves_old("unpool1d-strides"):
        pass  # this torch's 1d output is contiguous; later ones keep the input's layout, as poolext
    elif ref.numel() > 0:
        assert out.stride() == ref.stride(), (out.stride(), ref.stride())
    return out, ref


def default_size(L, k, s, p):
    return (L - 1) * s + k - 2 * p


def draw_problem(rng, rank, dtype, source):
    """(y, indices, unpool args, unpool kwargs, batched): pooled values and
    their indices from `source`'s max pooling, with an output_size that is
    mostly the pooled input's (so the round trip restores it) and sometimes
    none, the full shape with N and C, or another size in torch's range."""
    while True:
        k = [rng.randint(1, 4) for _ in range(rank)]
        s = [rng.randint(1, 3) for _ in range(rank)] if rng.random() < 0.7 else list(k)
        p = [rng.randint(0, kk // 2) for kk in k]
        d = [1] * rank if rng.random() < 0.8 else [rng.randint(1, 2) for _ in range(rank)]
        ceil = rng.random() < 0.3
        batched = rng.random() < 0.8
        spatial = [rng.randint(1, 9) for _ in range(rank)]
        shape = ([rng.randint(1, 3)] if batched else []) + [rng.randint(1, 4)] + spatial
        x = random_values(rng, shape, dtype)
        try:
            y, idx = pool_fn(source, rank)(x, k, s, p, d, ceil, return_indices=True)
        except (RuntimeError, ValueError):
            continue
        break
    r = rng.random()
    if r < 0.3:
        output_size = None
    elif r < 0.65:
        output_size = list(spatial) if rng.random() < 0.5 else tuple(spatial)
    elif r < 0.85:
        output_size = x.shape if batched else [5, 7] + spatial  # N, C entries are ignored
    else:
        dflt = [default_size(y.shape[-rank + a], k[a], s[a], p[a]) for a in range(rank)]
        output_size = [max(0, rng.randint(dd - s[a] + 1, dd + s[a] - 1))
                       for a, dd in enumerate(dflt)]
    y = relayout(rng, y, rank, batched)
    idx = relayout(rng, idx, rank, batched)
    args = (k if rng.random() < 0.8 else k[0],)
    kwargs = {}
    if s != k or rng.random() < 0.5:
        kwargs["stride"] = s
    if any(p) or rng.random() < 0.3:
        kwargs["padding"] = p
    if output_size is not None or rng.random() < 0.3:
        kwargs["output_size"] = output_size
    if rank == 1 and isinstance(args[0], list):
        args = (args[0][0],) if rng.random() < 0.5 else args
    return y, idx, args, kwargs, batched


# ---- forward -------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("source", ["poolext", "torch"])
@pytest.mark.parametrize("dtype", FLOAT_TYPES, ids=str)
@pytest.mark.parametrize("rank", RANKS)
def test_round_trip_matches_torch(rank, dtype, source, seed):
    rng = rng_for("unpool-fwd", rank, str(dtype), source, seed)
    ours, theirs = unpool_pair(rank)
    y, idx, args, kwargs, _ = draw_problem(rng, rank, dtype, source)
    assert_like_torch(ours, theirs, y, idx, *args, **kwargs)


@pytest.mark.parametrize("rank", RANKS)
def test_round_trip_restores_the_maxima(rank):
    """With the pooled input's size, unpooling puts every maximum back where it was."""
    x = torch.rand(2, 3, *([8] * rank)) + 1  # positive: re-pooling finds the maxima again
    y, idx = pool_fn("poolext", rank)(x, 2, return_indices=True)
    out = unpool_pair(rank)[0](y, idx, 2, output_size=x.shape)
    kept = out != 0
    assert kept.sum() == y.numel()
    assert torch.equal(out[kept], x[kept])
    assert torch.equal(pool_fn("torch", rank)(out, 2), y)


@pytest.mark.parametrize("cl", [False, True])
@pytest.mark.parametrize("rank", RANKS)
def test_duplicate_indices_last_wins(rank, cl):
    """Duplicated indices inside a plane: the last input element wins, at any
    thread count, as torch's CPU kernel does when it runs on one thread."""
    if cl and rank == 1:
        pytest.skip("no channels_last in 1d")
    g = torch.Generator().manual_seed(rank)
    shape = (3, 5) + (4,) * rank
    y = torch.randn(shape, generator=g)
    out_spatial = [3] * rank
    plane = 3 ** rank
    idx = torch.randint(0, plane, shape, generator=g)  # 4^r elements into 3^r places
    if cl:
        y = y.contiguous(memory_format=cl_format(rank))
    ours, theirs = unpool_pair(rank)
    # Reference: a serial scatter in input order.
    want = torch.zeros(3, 5, plane)
    for n in range(3):
        for c in range(5):
            for v, j in zip(y[n, c].reshape(-1).tolist(), idx[n, c].reshape(-1).tolist()):
                want[n, c, j] = v
    want = want.view(3, 5, *out_spatial)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        # kernel 2, stride 1, padding 1: the default size 3 is the one asked for.
        ref = theirs(y, idx, 2, 1, 1, out_spatial)
        results = []
        for t in (1, 2, 3):
            torch.set_num_threads(t)
            results.append(ours(y, idx, 2, 1, 1, out_spatial))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(ref, want)
    for r in results:
        assert_bit_equal(r, want)


def test_large_plane_and_many_channels_channels_last():
    """Planes past one task's grain and C past one channel block (64)."""
    x = torch.randn(2, 130, 40, 36).contiguous(memory_format=torch.channels_last)
    y, idx = TF.max_pool2d(x, 3, 2, 1, return_indices=True)
    assert_like_torch(PF.max_unpool2d, TF.max_unpool2d, y, idx, 3, 2, 1, x.shape)
    x = torch.randn(3, 2, 300, 301)
    y, idx = TF.max_pool2d(x, 2, return_indices=True)
    assert_like_torch(PF.max_unpool2d, TF.max_unpool2d, y, idx, 2, output_size=x.shape[2:])


@pytest.mark.parametrize("rank", RANKS)
def test_deterministic_mode(rank):
    """poolext's CPU unpooling is deterministic, so it runs under
    torch.use_deterministic_algorithms(True), where torch's refuses (a
    deliberate difference: DESIGN.md, determinism)."""
    x = torch.randn(2, 3, *([6] * rank))
    y, idx = pool_fn("torch", rank)(x, 2, return_indices=True)
    ours, theirs = unpool_pair(rank)
    want = theirs(y, idx, 2)
    prev = torch.are_deterministic_algorithms_enabled()
    try:
        torch.use_deterministic_algorithms(True)
        with pytest.raises(RuntimeError, match="deterministic"):
            theirs(y, idx, 2)
        got = ours(y, idx, 2)
    finally:
        torch.use_deterministic_algorithms(prev)
    assert_bit_equal(got, want)


# ---- valid edge calls and refusals ---------------------------------------------------------

def _pooled(rank, batched=True, n=2, c=3, size=8, dtype=torch.float32, cl=False):
    g = torch.Generator().manual_seed(7)
    shape = ((n,) if batched else ()) + (c,) + (size,) * rank
    x = torch.randn(shape, generator=g).to(dtype)
    if cl:
        x = x.contiguous(memory_format=cl_format(rank))
    if not dtype.is_floating_point:
        xf = torch.randn(shape, generator=g)
        y, idx = pool_fn("torch", rank)(xf, 2, return_indices=True)
        return y.to(dtype), idx
    return pool_fn("torch", rank)(x, 2, return_indices=True)


def _with_index(idx, pos, value):
    idx = idx.clone()
    idx[pos] = value
    return idx


def _edge_rows():
    rows = []
    for rank in RANKS:
        y, idx = _pooled(rank)
        z = (0,) * (rank + 2)
        last = tuple(s - 1 for s in idx.shape)
        rows += [
            (f"{rank}d too large index", rank, y, _with_index(idx, last, 8 ** rank), (2,), {}),
            (f"{rank}d negative index", rank, y, _with_index(idx, z, -1), (2,), {}),
            (f"{rank}d huge negative index", rank, y, _with_index(idx, z, -(2 ** 62)), (2,), {}),
            (f"{rank}d index past a smaller output", rank, y, idx, (2,),
             dict(output_size=[7] * rank)),
            (f"{rank}d output_size too large", rank, y, idx, (2,), dict(output_size=[10] * rank)),
            (f"{rank}d output_size too small", rank, y, idx, (2,), dict(output_size=[6] * rank)),
            (f"{rank}d output_size of wrong length", rank, y, idx, (2,),
             dict(output_size=[8] * (rank + 1))),
            (f"{rank}d output_size an int", rank, y, idx, (2,), dict(output_size=8)),
            (f"{rank}d output_size of floats", rank, y, idx, (2,),
             dict(output_size=[8.0] * rank)),
            (f"{rank}d output_size with N and C", rank, y, idx, (2,),
             dict(output_size=[9, 9] + [8] * rank)),
            (f"{rank}d negative default size", rank, y[..., :1], idx[..., :1], (1, 1, 1), {}),
            (f"{rank}d int32 indices", rank, y, idx.int(), (2,), {}),
            (f"{rank}d float indices", rank, y, idx.float(), (2,), {}),
            (f"{rank}d indices of another shape", rank, y, idx[:, :2], (2,), {}),
            (f"{rank}d indices of one more dim", rank, y, idx[None], (2,), {}),
            (f"{rank}d input of too few dims", rank, y[0, 0], idx[0, 0], (2,), {}),
            (f"{rank}d input of too many dims", rank, y[None], idx[None], (2,), {}),
            (f"{rank}d zero channels", rank, y[:, :0], idx[:, :0], (2,), {}),
            (f"{rank}d zero spatial size", rank, y[..., :0], idx[..., :0], (2,), {}),
            (f"{rank}d zero batch", rank, y[:0], idx[:0], (2,), {}),
            (f"{rank}d unbatched", rank, y[0], idx[0], (2,), {}),
            (f"{rank}d unbatched bad index", rank, y[0], _with_index(idx[0], z[1:], 64 ** 3),
             (2,), {}),
            (f"{rank}d int32 input", rank, y.int(), idx, (2,), {}),
            (f"{rank}d int64 input", rank, y.long(), idx, (2,), {}),
            (f"{rank}d bool input", rank, y > 0, idx, (2,), {}),
            (f"{rank}d complex input", rank, y.to(torch.complex64), idx, (2,), {}),
            # Default size (4 - 1) * 1 + 1 - 2 * 2 = 0.
            (f"{rank}d int input, empty output", rank, y.int(), idx, (1, 1, 2), {}),
            (f"{rank}d empty output, indices unchecked", rank, y, idx, (1, 1, 2), {}),
            (f"{rank}d int input, zero batch", rank, y[:0].int(), idx[:0], (2,), {}),
            (f"{rank}d kernel as a longer tuple", rank, y, idx, ((2,) * (rank + 1),), {}),
            (f"{rank}d stride as a shorter tuple", rank, y, idx, (2, (2,) * max(rank - 1, 1)),
             {}),
            (f"{rank}d float kernel", rank, y, idx, (2.0,), {}),
            (f"{rank}d zero stride", rank, y, idx, (2, 0), {}),
            (f"{rank}d negative stride", rank, y, idx, (9, -1), {}),
            (f"{rank}d zero kernel", rank, y, idx, (0,), {}),
            (f"{rank}d negative padding", rank, y, idx, (2, 2, -1), {}),
            (f"{rank}d padding past the kernel", rank, y, idx, (2, 2, 3), {}),
            (f"{rank}d stride as a list", rank, y, idx, (2, [2] * rank), {}),
        ]
        if rank >= 2:
            yc, ic = _pooled(rank, cl=True)
            yc = yc.contiguous(memory_format=cl_format(rank))
            rows += [
                (f"{rank}d channels_last bad index", rank, yc,
                 _with_index(ic, (1, 2) + (1,) * rank, 99999), (2,), {}),
                (f"{rank}d channels_last", rank, yc, ic, (2,), dict(output_size=[9] * rank)),
                (f"{rank}d channels_last indices", rank, y,
                 idx.contiguous(memory_format=cl_format(rank)), (2,), {}),
            ]
    # Padding makes the default size smaller than the pooled input: some
    # round-trip indices fall outside.
    x = torch.arange(2 * 36.0).view(1, 2, 6, 6)
    y, idx = TF.max_pool2d(x, 3, 2, 1, return_indices=True)
    rows.append(("2d padding shrinks the default size", 2, y, idx, (3, 2, 1), {}))
    rows.append(("2d padding, output_size restores", 2, y, idx, (3, 2, 1), dict(output_size=(6, 6))))
    # 1d: a (N, L, C)-strided input.
    y, idx = _pooled(1, c=4)
    rows.append(("1d transposed input", 1, y.transpose(1, 2).contiguous().transpose(1, 2), idx,
                 (2,), {}))
    rows.append(("1d single channel", 1, y[:, :1], idx[:, :1], (2,), {}))
    return rows


EDGE = _edge_rows()


@pytest.mark.parametrize("row", EDGE, ids=[r[0] for r in EDGE])
def test_edge_call_like_torch(row):
    """Valid edge calls give torch's result; invalid ones raise torch's exception type."""
    _, rank, y, idx, args, kwargs = row
    assert_like_torch(unpool_pair(rank)[0], unpool_pair(rank)[1], y, idx, *args, **kwargs)


def test_edge_rows_cover_both_outcomes():
    raised = sum(outcome(unpool_pair(r)[1], y, i, *a, **k)[1] is not None
                 for _, r, y, i, a, k in EDGE)
    assert 0 < raised < len(EDGE)


@pytest.mark.parametrize("rank", RANKS)
def test_refusal_messages_name_the_argument(rank):
    ours = unpool_pair(rank)[0]
    y, idx = _pooled(rank)
    with pytest.raises(RuntimeError, match=r"^Found an invalid max index: 12345 \(output volumes "
                                           r"are of size [0-9x]+\) \(.*at indices\[1, 2"):
        ours(y, _with_index(idx, (1, 2) + (0,) * rank, 12345), 2)
    with pytest.raises(RuntimeError, match=r"invalid max index: -3 "):
        ours(y, _with_index(idx, (0, 0) + (1,) * rank, -3), 2)
    with pytest.raises(ValueError, match="output_size"):
        ours(y, idx, 2, output_size=[11] * rank)
    with pytest.raises(TypeError, match="output_size"):
        ours(y, idx, 2, output_size=8)
    with pytest.raises(RuntimeError, match="int64.*torch.int32"):
        ours(y, idx.int(), 2)
    with pytest.raises(RuntimeError, match="shape"):
        ours(y, idx[:1], 2)
    with pytest.raises(NotImplementedError, match="torch.int32"):
        ours(y.int(), idx, 2)
    if rank == 3:
        with pytest.raises(RuntimeError, match="stride"):
            ours(y, idx, 2, 0)


def test_first_bad_index_is_named():
    """Of several bad indices the error names the first in input order, in
    both layouts and at any thread count."""
    y, idx = _pooled(2, n=3, c=70, size=8)
    bad = idx.clone()
    bad[2, 60, 1, 1] = 1000
    bad[1, 65, 3, 0] = -7      # the first in (n, c, h, w) order
    bad[1, 66, 0, 0] = 2000
    threads = torch.get_num_threads()
    try:
        for t in (1, 3):
            torch.set_num_threads(t)
            for yy, ii in ((y, bad), (y.contiguous(memory_format=torch.channels_last),
                                      bad.contiguous(memory_format=torch.channels_last))):
                with pytest.raises(RuntimeError, match=r"index: -7 .*at indices\[1, 65, 3, 0\]"):
                    PF.max_unpool2d(yy, ii, 2)
    finally:
        torch.set_num_threads(threads)


def test_direct_op_calls_refuse_bad_arguments():
    """torch.ops.poolext.* called directly: bad arguments raise, never crash."""
    y, idx = _pooled(2)
    g = torch.randn(2, 3, 8, 8)
    bad_calls = [
        lambda: ops.max_unpool(y, idx, [], False),
        lambda: ops.max_unpool(y, idx, [8, 8, 8, 8], False),
        lambda: ops.max_unpool(y, idx, [8, -8], False),
        lambda: ops.max_unpool(y, idx, [8], False),
        lambda: ops.max_unpool(y[0], idx[0], [8, 8], True),
        lambda: ops.max_unpool(y, idx.int(), [8, 8], False),
        lambda: ops.max_unpool(y, idx[:1], [8, 8], False),
        lambda: ops.max_unpool(y, _with_index(idx, (0, 0, 0, 0), 64), [8, 8], False),
        lambda: ops.max_unpool(y, _with_index(idx, (0, 0, 0, 0), -1), [8, 8], True),
        lambda: ops.max_unpool(y, idx, [2 ** 40, 2 ** 40], False),
        lambda: ops.max_unpool(y.int(), idx, [8, 8], False),
        lambda: ops.max_unpool_backward(g, idx, [8, 9], False),
        lambda: ops.max_unpool_backward(g[:1], idx, [8, 8], False),
        lambda: ops.max_unpool_backward(g.int(), idx, [8, 8], False),
        lambda: ops.max_unpool_backward(g, idx.int(), [8, 8], False),
        lambda: ops.max_unpool_backward(g, _with_index(idx, (1, 2, 3, 3), 64), [8, 8], False),
        lambda: ops.max_unpool_backward(g, _with_index(idx, (1, 2, 3, 3), -1), [8, 8], True),
    ]
    for i, call in enumerate(bad_calls):
        with pytest.raises((RuntimeError, NotImplementedError)) as info:
            call()
        assert "poolext.max_unpool" in str(info.value), (i, info.value)


# ---- gradients -----------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("dtype", FLOAT_TYPES, ids=str)
@pytest.mark.parametrize("rank", RANKS)
def test_backward_matches_torch(rank, dtype, seed):
    rng = rng_for("unpool-bwd", rank, str(dtype), seed)
    ours, theirs = unpool_pair(rank)
    for _ in range(20):
        y, idx, args, kwargs, batched = draw_problem(rng, rank, dtype, rng.choice(["poolext", "torch"]))
        if outcome(theirs, y, idx, *args, **kwargs)[1] is None:
            break
    else:
        pytest.skip("no valid problem drawn")
    yy = y.detach().clone().requires_grad_()
    out = ours(yy, idx, *args, **kwargs)
    go = relayout(rng, random_values(rng, out.shape, dtype), rank, batched)
    (gy,) = torch.autograd.grad(out, yy, go)
    if out.numel() == 0:
        # The output depends on no input element.  (torch's backward raises
        # here, indexing the empty grad_output; poolext returns the zero gradient.)
        assert_bit_equal(gy, torch.zeros_like(y))
        return
    # The gather at the indices, plane by plane.
    planes = idx.shape[:idx.dim() - rank].numel()
    want = go.reshape(planes, -1).gather(1, idx.reshape(planes, -1)).view(idx.shape)
    assert_bit_equal(gy, want)
    yt = y.detach().clone().requires_grad_()
    ref = theirs(yt, idx, *args, **kwargs)
    try:
        (gt,) = torch.autograd.grad(ref, yt, go)
    except RuntimeError as e:
        # torch's backward (max_pool_double_backward) views grad_output in the
        # indices' memory format and fails on some layout mixes.
        assert "view size is not compatible" in str(e)
        return
    assert_bit_equal(gy, gt)


def test_backward_of_an_empty_output_is_zero():
    """Nothing depends on the input, and the forward never read the indices.
    (torch's backward raises here, indexing the empty grad_output: a
    deliberate difference.)"""
    y, idx = _pooled(2)
    y = y.requires_grad_()
    out = PF.max_unpool2d(y, idx, 1, 1, 2)  # default size 3 * 1 + 1 - 4 = 0
    assert out.shape == (2, 3, 0, 0)
    (g,) = torch.autograd.grad(out, y, torch.ones_like(out))
    assert_bit_equal(g, torch.zeros_like(y))
    with pytest.raises(RuntimeError):
        yt = y.detach().requires_grad_()
        o = TF.max_unpool2d(yt, idx, 1, 1, 2)
        torch.autograd.grad(o, yt, torch.ones_like(o))


def _unique_problem(rank, batched=True, cl=False, dtype=torch.float64):
    """Non-overlapping windows: no index repeats, so the unpooling is linear
    and its gradient exact."""
    g = torch.Generator().manual_seed(rank)
    shape = ((2,) if batched else ()) + (3,) + (5,) * rank
    x = torch.randn(shape, generator=g, dtype=dtype)
    y, idx = pool_fn("torch", rank)(x, 2, return_indices=True)
    if cl:
        y = y.contiguous(memory_format=cl_format(rank))
    return y.detach().requires_grad_(), idx


@pytest.mark.parametrize("case", ["batched", "unbatched", "channels_last"])
@pytest.mark.parametrize("rank", RANKS)
def test_gradcheck_and_gradgradcheck(rank, case):
    if case == "channels_last" and rank == 1:
        pytest.skip("no channels_last in 1d")
    y, idx = _unique_problem(rank, batched=case != "unbatched", cl=case == "channels_last")
    ours = unpool_pair(rank)[0]

    def f(t):
        return ours(t, idx, 2, output_size=[5] * rank)

    assert torch.autograd.gradcheck(f, (y,))
    assert torch.autograd.gradgradcheck(f, (y,))


@pytest.mark.parametrize("rank", RANKS)
def test_double_backward_matches_torch(rank):
    y, idx = _unique_problem(rank, dtype=torch.float32)
    res = []
    for fn in unpool_pair(rank):
        yy = y.detach().clone().requires_grad_()
        out = fn(yy, idx, 2, output_size=[5] * rank)
        go = torch.linspace(-1, 1, out.numel()).view(out.shape).requires_grad_()
        (gy,) = torch.autograd.grad(out, yy, go, create_graph=True)
        (ggo,) = torch.autograd.grad(gy, go, torch.cos(torch.arange(gy.numel()).view(gy.shape).float()))
        res.append((gy.detach(), ggo))
    for a, b in zip(*res):
        assert_bit_equal(a, b)


def test_backward_saves_no_output():
    """The autograd graph of an unpooling keeps only the indices."""
    y, idx = _unique_problem(2, dtype=torch.float32)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        PF.max_unpool2d(y, idx, 2, output_size=[5, 5])
    assert len(saved) == 1 and saved[0].data_ptr() == idx.data_ptr()


# ---- torch.library / torch.compile ---------------------------------------------------------

def _op_samples():
    y, idx = _pooled(2)
    yc = y.contiguous(memory_format=torch.channels_last)
    y3, idx3 = _pooled(3, size=4)
    y1, idx1 = _pooled(1, batched=False)
    g = torch.randn(2, 3, 9, 8)
    return [
        (ops.max_unpool.default, (y, idx, [8, 8], False)),
        (ops.max_unpool.default, (yc, idx, [9, 8], True)),
        (ops.max_unpool.default, (y3, idx3, [4, 5, 4], False)),
        (ops.max_unpool.default, (y3.contiguous(memory_format=torch.channels_last_3d), idx3,
                                  [4, 4, 4], True)),
        (ops.max_unpool.default, (y1.half(), idx1, [9], False)),
        (ops.max_unpool_backward.default, (g, idx, [9, 8], False)),
        (ops.max_unpool_backward.default, (g.contiguous(memory_format=torch.channels_last), idx,
                                           [9, 8], True)),
        (ops.max_unpool_backward.default, (torch.randn(2, 3, 4, 4, 4).double(), idx3, [4, 4, 4],
                                           False)),
        (ops.max_unpool_backward.default, (torch.randn(3, 8).bfloat16(), idx1, [8], False)),
    ]


@pytest.mark.parametrize("i", range(len(_op_samples())))
def test_opcheck(i):
    op, args = _op_samples()[i]
    torch.library.opcheck(op, args)


class UNetStep(nn.Module):
    def __init__(self, pool_mod, F):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.pool = pool_mod.MaxPool2d(2, return_indices=True)
        self.unpool = pool_mod.MaxUnpool2d(2)
        self.F = F

    def forward(self, x):
        y, idx = self.pool(torch.relu(self.conv(x)))
        a = self.unpool(y * 2, idx, output_size=x.shape)
        b = self.F.max_unpool1d(y.flatten(2), idx.flatten(2), 5)  # 20 -> 100 >= 9 * 10
        return a.square().sum() + b.sum()


@pytest.mark.slow
@pytest.mark.parametrize("channels_last", [False, True])
def test_torch_compile_fullgraph(channels_last):
    torch.manual_seed(0)
    model = UNetStep(poolext, PF)
    x = torch.randn(2, 3, 9, 10)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True)
    y_eager = model(x)
    y_eager.backward()
    g_eager = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    y_comp = compiled(x)
    y_comp.backward()
    g_comp = [p.grad.clone() for p in model.parameters()]
    torch.testing.assert_close(y_comp, y_eager)
    for a, b in zip(g_comp, g_eager):
        torch.testing.assert_close(a, b)
    ref = UNetStep(nn, TF)
    ref.load_state_dict(model.state_dict())
    torch.testing.assert_close(ref(x), y_eager)


# ---- modules and signatures ----------------------------------------------------------------

MODULE_CONFIGS = [((2,), {}), ((3, 2), {}), ((3, 2, 1), {}),
                  ((), dict(kernel_size=3, stride=1, padding=1))]


@pytest.mark.parametrize("cfg", range(len(MODULE_CONFIGS)))
@pytest.mark.parametrize("rank", RANKS)
def test_module_matches_torch(rank, cfg):
    args, kwargs = MODULE_CONFIGS[cfg]
    ours = getattr(poolext, f"MaxUnpool{rank}d")(*args, **kwargs)
    theirs = getattr(nn, f"MaxUnpool{rank}d")(*args, **kwargs)
    assert isinstance(ours, getattr(nn, f"MaxUnpool{rank}d"))
    assert repr(ours) == repr(theirs)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    for attr in ("kernel_size", "stride", "padding"):
        assert getattr(ours, attr) == getattr(theirs, attr)
    buf = io.BytesIO()
    pickle.dump(ours, buf)
    clone = pickle.loads(buf.getvalue())
    assert type(clone) is type(ours) and repr(clone) == repr(ours)
    assert repr(copy.deepcopy(ours)) == repr(ours)
    k = ours.kernel_size if isinstance(ours.kernel_size, tuple) else (ours.kernel_size,)
    s = ours.stride if isinstance(ours.stride, tuple) else (ours.stride,)
    p = ours.padding if isinstance(ours.padding, tuple) else (ours.padding,)
    x = torch.randn(2, 3, *([7] * rank))
    pool = pool_fn("torch", rank)
    y, idx = pool(x, k[0], s[0], p[0], return_indices=True)
    assert_like_torch(ours, theirs, y, idx)
    assert_like_torch(ours, theirs, y, idx, output_size=x.shape)
    assert_like_torch(ours, theirs, y, idx, x.shape[2:])


@pytest.mark.parametrize("rank", RANKS)
def test_functional_signature_is_torchs(rank):
    ours, theirs = unpool_pair(rank)
    got = [(p.name, p.default, p.kind) for p in inspect.signature(ours).parameters.values()]
    want = [(p.name, p.default, p.kind) for p in inspect.signature(theirs).parameters.values()]
    assert got == want
    assert f"max_unpool{rank}d" in PF.__all__
    assert f"MaxUnpool{rank}d" in poolext.__all__


def test_ops_registered_on_cpu():
    for name in ("max_unpool", "max_unpool_backward"):
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f"poolext::{name}", "CPU")


# ---- the CUDA code on the host -------------------------------------------------------------

@pytest.fixture(scope="module")
def emu():
    return load_cuda_emulation()


def _raw_unpool_problem(rng, rank, dtype):
    """(y, idx, output_size, channels_last) in the form torch.ops.poolext.* takes."""
    y, idx, args, kwargs, batched = draw_problem(rng, rank, dtype, "poolext")
    k = list(args[0]) if isinstance(args[0], (list, tuple)) else [args[0]] * rank
    s = kwargs.get("stride") or k
    p = kwargs.get("padding") or [0] * rank
    out = [default_size(y.shape[-rank + a], k[a], s[a], p[a]) for a in range(rank)]
    if rng.random() < 0.5:
        out = [max(0, o + rng.randint(-1, 1)) for o in out]
    cl = rank >= 2 and batched and rng.random() < 0.5
    if cl:
        y = y.contiguous(memory_format=cl_format(rank))
    if rng.random() < 0.2:  # some bad index
        idx = idx.clone()
        flat = idx.view(-1) if idx.is_contiguous() else None
        if flat is not None and flat.numel():
            flat[rng.randrange(flat.numel())] = rng.choice([-1, 10 ** 6])
    return y, idx, out, cl


def _same_outcome(f, g):
    a, ea = outcome(f)
    b, eb = outcome(g)
    if ea is not None or eb is not None:
        assert ea is not None and eb is not None, (ea, eb)
        assert type(ea) is type(eb) and str(ea).split("\n")[0] == str(eb).split("\n")[0]
        return False
    assert a.stride() == b.stride() or a.numel() == 0
    assert_bit_equal(a, b)
    return True


@pytest.mark.parametrize("index32", [True, False])
@pytest.mark.parametrize("rank", RANKS)
def test_emulated_cuda_code_matches_cpu(emu, rank, index32):
    emu.set_index32(index32)
    ran = raised = 0
    for seed in range(40):
        rng = rng_for("emu-unpool", rank, seed)
        dtype = rng.choice(FLOAT_TYPES)
        y, idx, out, cl = _raw_unpool_problem(rng, rank, dtype)
        if _same_outcome(lambda: emu.max_unpool(y, idx, out, cl),
                         lambda: ops.max_unpool(y, idx, out, cl)):
            ran += 1
        else:
            raised += 1
        shape = list(y.shape[:y.dim() - rank]) + out
        go = random_values(rng, shape, dtype)
        _same_outcome(lambda: emu.max_unpool_backward(go, idx, out, cl),
                      lambda: ops.max_unpool_backward(go, idx, out, cl))
    assert ran > 20 and raised > 0


def test_emulated_cuda_code_integer_dtypes(emu):
    """The CUDA op takes torch's CUDA integer types; values are copied bit for bit."""
    emu.set_index32(True)
    for dtype in (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64):
        y, idx = _pooled(2, dtype=dtype)
        if dtype == torch.int64:
            y = y * (2 ** 40) + 3  # past float64's integers: a value cast would show
        got = emu.max_unpool(y, idx, [8, 8], False)
        # The CPU op on the same bits read as a float type of the same width.
        same_width = {1: torch.float8_e4m3fn, 2: torch.float16, 4: torch.float32,
                      8: torch.float64}[y.element_size()]
        if same_width == torch.float8_e4m3fn:
            want = ops.max_unpool(y.view(torch.uint8).float(), idx, [8, 8], False).to(torch.uint8)
            want = want.view(dtype)
        else:
            want = ops.max_unpool(y.view(same_width), idx, [8, 8], False).view(dtype)
        assert got.dtype == dtype
        assert torch.equal(got, want)
    with pytest.raises(NotImplementedError):
        emu.max_unpool(y > 0, idx, [8, 8], False)


# ---- on a GPU ------------------------------------------------------------------------------

def _to_cuda(t):
    out = torch.empty_strided(t.size(), t.stride(), dtype=t.dtype, device="cuda")
    return out.copy_(t)


@cuda
@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("dtype", FLOAT_TYPES, ids=str)
@pytest.mark.parametrize("rank", RANKS)
def test_cuda_round_trip_matches_torch(rank, dtype, seed):
    rng = rng_for("unpool-cuda", rank, str(dtype), seed)
    ours, theirs = unpool_pair(rank)
    y, idx, args, kwargs, _ = draw_problem(rng, rank, dtype, rng.choice(["poolext", "torch"]))
    ref, ref_err = outcome(theirs, y, idx, *args, **kwargs)  # on the CPU
    if ref_err is not None:
        if isinstance(ref_err, RuntimeError) and "invalid max index" in str(ref_err):
            with pytest.raises(RuntimeError, match="invalid max index"):
                ours(_to_cuda(y), _to_cuda(idx), *args, **kwargs)
                torch.cuda.synchronize()
        return
    yc = _to_cuda(y).requires_grad_()
    out = ours(yc, _to_cuda(idx), *args, **kwargs)
    assert out.is_cuda and out.is_contiguous()  # torch's CUDA kernels give contiguous outputs
    assert_bit_equal(out.detach().cpu(), ref)
    go = random_values(rng, out.shape, dtype)
    (g,) = torch.autograd.grad(out, yc, _to_cuda(go))
    yr = y.detach().clone().requires_grad_()
    try:
        (gr,) = torch.autograd.grad(theirs(yr, idx, *args, **kwargs), yr, go)
    except RuntimeError:
        # torch 2.11's own CPU max_unpool backward fails on some of these
        # (a view of its gradient, empty outputs).  Unpooling's gradient is
        # the output gradient read at the indices.
        gr = _gather_at_indices(go, idx, rank)
    assert_bit_equal(g.cpu(), gr)


def _gather_at_indices(go, idx, rank):
    if go.numel() == 0 or idx.numel() == 0:  # an empty output sends nothing back
        return torch.zeros(idx.shape, dtype=go.dtype)
    lead = idx.shape[:-rank]
    flat_go = go.reshape(*lead, -1)
    return flat_go.gather(-1, idx.reshape(*lead, -1)).reshape(idx.shape)


def test_gather_at_indices_is_torchs_gradient():
    """The fallback reference of test_cuda_round_trip_matches_torch against
    torch's own unpool gradient, where torch computes one."""
    g = torch.Generator().manual_seed(3)
    for rank in RANKS:
        y, idx = _pooled(rank)
        y = y.detach().requires_grad_()
        out = unpool_pair(rank)[1](y, idx, 2)
        go = torch.randn(out.shape, generator=g)
        (want,) = torch.autograd.grad(out, y, go)
        assert torch.equal(_gather_at_indices(go, idx, rank), want)
    # An empty output (default size 0: kernel 2, padding 1 over one element),
    # where torch's own backward raises: poolext's gradient is zero.
    y = torch.tensor([[[2.0]], [[1.0]], [[-float("inf")]]], requires_grad=True)
    idx = torch.zeros(3, 1, 1, dtype=torch.long)
    out = PF.max_unpool1d(y, idx, 2, padding=1)
    assert out.shape == (3, 1, 0)
    (got,) = torch.autograd.grad(out, y, torch.ones(out.shape))
    assert torch.equal(got, _gather_at_indices(torch.ones(out.shape), idx, 1))


@cuda
@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32,
                                   torch.int64, torch.float16, torch.bfloat16], ids=str)
def test_cuda_dtypes_and_layout_like_torch_cuda(dtype):
    y, idx = _pooled(2, cl=True)
    y = (y * 10).to(dtype).contiguous(memory_format=torch.channels_last).cuda()
    idx = idx.cuda()
    want = TF.max_unpool2d(y, idx, 2)
    got = PF.max_unpool2d(y, idx, 2)
    assert got.stride() == want.stride()
    assert torch.equal(got, want)
    y3, idx3 = _pooled(3, size=4)
    assert torch.equal(PF.max_unpool3d(y3.to(dtype).cuda(), idx3.cuda(), 2),
                       TF.max_unpool3d(y3.to(dtype).cuda(), idx3.cuda(), 2))


@cuda
@pytest.mark.parametrize("rank", RANKS)
def test_cuda_bad_index_raises_and_device_stays_usable(rank):
    ours = unpool_pair(rank)[0]
    y, idx = _pooled(rank)
    for value in (-1, 8 ** rank, 2 ** 40):
        bad = _with_index(idx, (1, 2) + (1,) * rank, value)
        with pytest.raises(RuntimeError, match=f"invalid max index: {value} .*at indices"):
            ours(y.cuda(), bad.cuda(), 2)
        # The same message as on the CPU (the same first bad index).
        with pytest.raises(RuntimeError) as cpu_info:
            ours(y, bad, 2)
        with pytest.raises(RuntimeError) as cuda_info:
            ops.max_unpool(y.cuda(), bad.cuda(), [8] * rank, False)
        assert str(cuda_info.value).split("\n")[0] == str(cpu_info.value).split("\n")[0]
        with pytest.raises(RuntimeError, match="invalid max index"):
            ops.max_unpool_backward(torch.randn(2, 3, *([8] * rank), device="cuda"), bad.cuda(),
                                    [8] * rank, False)
    torch.cuda.synchronize()
    assert torch.equal(ours(y.cuda(), idx.cuda(), 2).cpu(), unpool_pair(rank)[1](y, idx, 2))


@cuda
def test_cuda_deterministic_mode_raises_like_torch():
    y, idx = _pooled(2)
    y, idx = y.cuda(), idx.cuda()
    prev = torch.are_deterministic_algorithms_enabled()
    try:
        torch.use_deterministic_algorithms(True)
        for fn in (TF.max_unpool2d, PF.max_unpool2d):
            with pytest.raises(RuntimeError, match="deterministic"):
                fn(y, idx, 2)
    finally:
        torch.use_deterministic_algorithms(prev)


@cuda
def test_cuda_opcheck():
    for op, args in _op_samples():
        torch.library.opcheck(op, tuple(a.cuda() if isinstance(a, torch.Tensor) else a
                                        for a in args))


@cuda
def test_cuda_gradcheck():
    y, idx = _unique_problem(2)
    y = y.detach().cuda().requires_grad_()

    def f(t):
        return PF.max_unpool2d(t, idx.cuda(), 2, output_size=[5, 5])

    assert torch.autograd.gradcheck(f, (y,))
    assert torch.autograd.gradgradcheck(f, (y,))


@pytest.mark.parametrize("rank", RANKS)
def test_bad_index_refusal_starts_with_torchs_sentence(rank):
    """The functional and the op called directly both start with torch's own sentence."""
    ours, theirs = unpool_pair(rank)
    y, idx = _pooled(rank)
    bad = _with_index(idx, (1, 2) + (0,) * rank, 12345)
    with pytest.raises(RuntimeError) as t_info:
        theirs(y, bad, 2)
    words = str(t_info.value).splitlines()[0]
    with pytest.raises(RuntimeError) as p_info:
        ours(y, bad, 2)
    assert str(p_info.value).startswith(words), (words, str(p_info.value))
    with pytest.raises(RuntimeError) as d_info:
        ops.max_unpool(y, bad, [8] * rank, False)
    assert str(d_info.value).startswith(words), (words, str(d_info.value))
