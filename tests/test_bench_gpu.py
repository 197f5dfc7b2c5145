"""The GPU benchmark's code paths, on the CPU: --dry-run with tiny tensors, and its cuDNN binding's
pure-Python parts (no GPU needed)."""

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import bench_gpu  # noqa: E402
import cudnn  # noqa: E402


def test_dry_run_writes_results(tmp_path):
    rc = bench_gpu.main(["--dry-run", "--filter", "stem max 3x3/s2/p1 16x64", "--out",
                         str(tmp_path), "--repeats", "1"])
    assert rc == 0
    (js,) = tmp_path.glob("gpu-*.json")
    (md,) = tmp_path.glob("gpu-*.md")
    data = json.loads(js.read_text())
    rows = data["rows"]
    assert {r["direction"] for r in rows} == {"fwd", "bwd", "fwd+bwd"}
    assert {r["layout"] for r in rows} == {"NCHW", "NHWC"}
    assert all(r["cudnn_na"] == "no GPU" and r["poolext_us"] > 0 for r in rows)
    assert data["environment"]["dry_run"] is True
    text = md.read_text()
    assert "| case" in text and "n/a (no GPU)" in text


def test_bytes_model():
    # stem 3x3/s2/p1 on 16x64x112x112 fp32: 16x64x56x56 outputs, 1-byte argmax.
    row = {"fwd": None, "bwd": None, "fwd+bwd": None}
    n_in, n_out = 16 * 64 * 112 * 112, 16 * 64 * 56 * 56
    for d in row:
        row[d] = bench_gpu.C.pool_bytes("max", d, n_in, n_out, 4, (3, 3))
    assert row["fwd"] == 4 * (n_in + n_out)
    assert row["bwd"] == 4 * (n_in + n_out) + n_out
    assert row["fwd+bwd"] == 2 * row["bwd"]


def test_table_marks_what_cudnn_cannot_run():
    base = dict(case="c", direction="fwd", shape="1x2x3x4", dtype="fp32", layout="NCHW",
                poolext_us=10.0, torch_us=20.0, cudnn_us=None, speedup_vs_torch=2.0,
                speedup_vs_cudnn=None, poolext_gbps=1.0, torch_gbps=0.5, cudnn_gbps=None,
                copy_gbps=2.0, poolext_frac_of_copy=0.5, cudnn_na="dilation")
    failed = dict(case="d", direction="bwd", shape="1", dtype="bf16", layout="NHWC",
                  error="mismatch")
    text = bench_gpu.table([base, failed])
    assert "n/a (dilation)" in text and "2.00x" in text and "error: mismatch" in text
    assert "1 case(s) failed" in bench_gpu.summary([base, failed])


def test_cudnn_supports():
    f32 = torch.float32
    ok = cudnn.supports("max", 2, dict(kernel_size=3, stride=2, padding=1), (16, 64, 112, 112), f32)
    assert ok == (True, "")
    assert cudnn.supports("max", 2, dict(kernel_size=3, dilation=2), (1, 1, 9, 9), f32)[1] == "dilation"
    assert cudnn.supports("avg", 2, dict(kernel_size=3, ceil_mode=True), (1, 1, 9, 9), f32)[1] == "ceil_mode"
    assert cudnn.supports("avg", 2, dict(kernel_size=3, divisor_override=2), (1, 1, 9, 9),
                          f32)[1] == "divisor_override"
    assert cudnn.supports("max", 1, dict(kernel_size=3), (4, 9), f32)[1] == "unbatched input"
    assert cudnn.supports("max", 2, dict(kernel_size=2), (1, 1, 9, 9), torch.int32)[0] is False
    assert cudnn.supports("max", 2, dict(kernel_size=2), (1, 2, 32768, 32769), torch.float16)[0] is False
