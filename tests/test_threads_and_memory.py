"""Threads and memory: concurrent calls from Python threads give the single-threaded results,
any intra-op thread count gives the same bits, and repeated training steps keep memory flat."""

import gc
import os
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

import poolext.functional as P
from cases import assert_bit_equal


def _problems():
    g = torch.Generator().manual_seed(7)
    cl = torch.channels_last
    return [
        (P.max_pool2d, torch.randn(4, 16, 33, 35, generator=g), dict(kernel_size=3, stride=2,
                                                                      padding=1)),
        (P.max_pool2d, torch.randn(4, 16, 33, 35, generator=g).contiguous(memory_format=cl),
         dict(kernel_size=2)),
        (P.avg_pool2d, torch.randn(4, 16, 33, 35, generator=g), dict(kernel_size=3, stride=1,
                                                                      padding=1,
                                                                      count_include_pad=False)),
        (P.max_pool3d, torch.randn(2, 8, 9, 10, 11, generator=g), dict(kernel_size=3, stride=2,
                                                                        padding=1)),
        (P.avg_pool1d, torch.randn(4, 8, 1000, generator=g), dict(kernel_size=4, stride=3)),
        (P.max_pool1d, torch.randint(-3, 4, (4, 8, 999), generator=g).float(),
         dict(kernel_size=5, stride=2, dilation=2)),
    ]


def _step(fn, x, kw, seed):
    """Output and input gradient of one training step with a seeded upstream gradient."""
    xr = x.detach().requires_grad_()
    y = fn(xr, **kw)
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed))
    y.backward(g)
    return y.detach(), xr.grad


def test_concurrent_python_threads_match_serial():
    problems = _problems()
    jobs = [(i, seed) for seed in range(4) for i in range(len(problems))]
    want = {(i, s): _step(*problems[i], s) for i, s in jobs}
    with ThreadPoolExecutor(max_workers=6) as pool:
        got = dict(zip(jobs, pool.map(lambda j: _step(*problems[j[0]], j[1]), jobs)))
    for key in jobs:
        for a, b in zip(got[key], want[key]):
            assert_bit_equal(a, b)


@pytest.mark.parametrize("threads", [1, 2, 7])
def test_intra_op_thread_count_does_not_change_the_bits(threads):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        want = [_step(fn, x, kw, 0) for fn, x, kw in _problems()]
        torch.set_num_threads(threads)
        got = [_step(fn, x, kw, 0) for fn, x, kw in _problems()]
    finally:
        torch.set_num_threads(before)
    for w, g in zip(want, got):
        for a, b in zip(g, w):
            assert_bit_equal(a, b)


def _rss_bytes():
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
def test_repeated_training_steps_keep_memory_flat():
    problems = _problems()

    def rounds(n):
        for _ in range(n):
            for fn, x, kw in problems:
                _step(fn, x, kw, 0)
        gc.collect()

    rounds(20)  # warm up allocator caches and thread pools
    start = _rss_bytes()
    rounds(200)
    grown = _rss_bytes() - start
    # A leaked output or gradient of one of the 2d problems (78-296 KiB a step) would add
    # 15-58 MiB over 200 rounds.
    assert grown < 12 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB over 200 rounds"
