"""The cache behind poolext's large CPU outputs (csrc/cpu/memory.h): reused blocks give the
same results as fresh ones, the tensors behave as any CPU tensor, the idle bytes stay under
POOLEXT_CPU_CACHE_MB, and empty_cache() gives them back."""

import io
import os
import pickle
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as TF

import poolext
import poolext.functional as PF
from cases import assert_bit_equal

MiB = 2**20


def _big_input(seed, cl=False):
    """4.5 MiB (so its gradient comes from the cache), with ties, NaN and infinities."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(4, 32, 96, 96, generator=g) * 4).round()
    x.view(-1)[::1013] = float("nan")
    x.view(-1)[5::1009] = float("inf")
    return x.contiguous(memory_format=torch.channels_last) if cl else x


def _step(F, x, seed):
    """Output and input gradient of max_pool2d(x, 2) with a seeded upstream gradient."""
    xr = x.detach().requires_grad_()
    y = F.max_pool2d(xr, 2)
    y.backward(torch.randn(y.shape, generator=torch.Generator().manual_seed(seed)))
    return y.detach(), xr.grad


@pytest.mark.parametrize("cl", [False, True])
def test_reused_blocks_give_torchs_results(cl):
    poolext.empty_cache()
    before = poolext.cpu_cache_stats()
    for seed in range(4):
        x = _big_input(seed, cl)
        y, gx = _step(PF, x, seed)
        y_t, gx_t = _step(TF, x, seed)
        assert_bit_equal(y, y_t)
        assert_bit_equal(gx, gx_t)
        assert gx.is_contiguous(memory_format=torch.channels_last if cl else
                                torch.contiguous_format)
        del y, gx
    after = poolext.cpu_cache_stats()
    # Each step's 4.5 MiB gradient after the first comes from the block the step before freed.
    assert after["hits"] - before["hits"] >= 3
    assert after["idle_bytes"] >= 4 * MiB


def test_empty_cache_gives_idle_blocks_back_and_keeps_live_ones():
    x = _big_input(0)
    _, keep = _step(PF, x, 0)
    _step(PF, x, 1)  # its gradient is freed at once: an idle block
    assert poolext.cpu_cache_stats()["idle_bytes"] > 0
    live = poolext.cpu_cache_stats()["live_bytes"]
    assert live >= keep.numel() * keep.element_size()
    poolext.empty_cache()
    stats = poolext.cpu_cache_stats()
    assert stats["idle_bytes"] == 0 and stats["idle_blocks"] == 0
    assert stats["live_bytes"] == live
    ref = keep.clone()
    _step(PF, x, 2)  # a fresh block: must not be the live one
    assert_bit_equal(keep, ref)


def test_cached_tensors_behave_as_cpu_tensors():
    x = _big_input(3)
    _, g = _step(PF, x, 0)
    ref = g.clone()
    # the storage is resizable: growing keeps the data, the old block goes back to the cache
    flat = g.view(-1)
    n = flat.numel()
    flat.resize_(2 * n)
    assert torch.equal(flat[:n], ref.view(-1))
    flat[n:] = 1
    _, g = _step(PF, x, 0)
    # numpy view, pickle, torch.save round trips
    assert torch.equal(torch.from_numpy(g.numpy()), ref)
    assert torch.equal(pickle.loads(pickle.dumps(g)), ref)
    buf = io.BytesIO()
    torch.save(g, buf)
    buf.seek(0)
    assert torch.equal(torch.load(buf), ref)
    # shared memory moves the data into a shared segment
    h = ref.clone()
    h.share_memory_()
    assert h.is_shared() and torch.equal(h, ref)
    _, g2 = _step(PF, x, 0)
    g2.share_memory_()
    assert g2.is_shared() and torch.equal(g2, ref)


def _run(code, **env):
    e = dict(os.environ)
    e.update(env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=e,
                          capture_output=True, text=True, timeout=300)


def test_limit_bounds_idle_bytes_and_zero_turns_it_off():
    code = """
        import torch, poolext
        import poolext.functional as PF
        import torch.nn.functional as TF
        torch.manual_seed(0)
        worst = 0
        for c in (20, 28, 36, 44, 20, 28):  # outputs and gradients of 5 to 11 MiB
            x = torch.randn(4, c, 128, 128, requires_grad=True)
            PF.avg_pool2d(x, 3, 1, 1).sum().backward()
            y = torch.randn(4, c, 128, 128, requires_grad=True)
            TF.avg_pool2d(y, 3, 1, 1).sum().backward()
            assert torch.equal(x.grad, y.grad)
            del x
            worst = max(worst, poolext.cpu_cache_stats()["idle_bytes"])
        s = poolext.cpu_cache_stats()
        print(worst, s["limit_bytes"], s["hits"], s["misses"])
    """
    r = _run(code, POOLEXT_CPU_CACHE_MB="16")
    assert r.returncode == 0, r.stderr
    worst, limit, hits, misses = map(int, r.stdout.split())
    assert limit == 16 * MiB and 0 < worst <= limit
    r = _run(code, POOLEXT_CPU_CACHE_MB="0")
    assert r.returncode == 0, r.stderr
    worst, limit, hits, misses = map(int, r.stdout.split())
    assert (worst, limit, hits) == (0, 0, 0) and misses > 0


def test_bad_limit_is_a_clear_error():
    r = _run("""
        import torch, poolext
        x = torch.randn(4, 32, 96, 96)
        poolext.functional.avg_pool2d(x, 1)
    """, POOLEXT_CPU_CACHE_MB="lots")
    assert r.returncode != 0
    assert "POOLEXT_CPU_CACHE_MB must be a whole number of MiB, got 'lots'" in r.stderr


def test_memory_profiler_sees_cached_outputs():
    x = _big_input(5)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        y = PF.avg_pool2d(x, 1)
        del y
    mem = {e.key: e.cpu_memory_usage for e in prof.key_averages()}
    op = [k for k in mem if k.startswith("poolext::avg_pool")]
    assert op and mem[op[0]] >= x.numel() * 4, mem
