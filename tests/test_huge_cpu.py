"""One pooling plane of more than 2^31 elements on the CPU: values and int64 indices exact.

Needs about 16 GiB of free memory and a minute or two; deselected by the test command
(-m "not huge").  Run it with:

    .venv/bin/python -m pytest -q -m huge tests/test_huge_cpu.py
"""

import pytest
import torch
import torch.nn.functional as F

import poolext.functional as P

SIDE = 46341  # SIDE**2 = 2,147,488,281 > 2**31


def _free_gib():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


@pytest.mark.huge
@pytest.mark.skipif(_free_gib() < 18, reason="needs about 16 GiB of free memory")
def test_plane_over_2_pow_31_elements():
    g = torch.Generator().manual_seed(0)
    x = torch.empty(1, 1, SIDE, SIDE)
    band = 2048  # rows drawn and checked at a time (even, so bands hold whole windows)
    for r in range(0, SIDE, band):
        rows = x[0, 0, r:r + band]
        rows.copy_(torch.randint(-50, 50, rows.shape, generator=g).float())  # many ties
    assert x.numel() > 2**31

    # ceil_mode: the last row's windows hold the elements whose plane index passes 2^31.
    out, idx = P.max_pool2d(x, 2, ceil_mode=True, return_indices=True)
    assert out.shape == (1, 1, (SIDE + 1) // 2, (SIDE + 1) // 2)
    assert int(idx.max()) > 2**31
    for r in range(0, SIDE, band):  # torch on bands of rows, indices shifted to the plane
        want, want_idx = F.max_pool2d(x[..., r:r + band, :], 2, ceil_mode=True,
                                      return_indices=True)
        o = slice(r // 2, r // 2 + want.shape[-2])
        assert torch.equal(out[..., o, :], want)
        assert torch.equal(idx[..., o, :], want_idx + r * SIDE)
    del out, idx

    avg = P.avg_pool2d(x, 3, stride=2, padding=1)
    assert avg.shape == (1, 1, (SIDE + 1) // 2, (SIDE + 1) // 2)
    for r in range(0, SIDE, band):  # a band of outputs needs the rows above and below it
        lo = max(r - 1, 0)
        hi = min(r + band + 1, SIDE)
        want = F.avg_pool2d(F.pad(x[..., lo:hi, :], (0, 0, 1 if lo == 0 else 0,
                                                     1 if hi == SIDE else 0)),
                            3, stride=2, padding=(0, 1), count_include_pad=True)
        o = slice(r // 2, r // 2 + want.shape[-2])
        torch.testing.assert_close(avg[..., o, :], want)
