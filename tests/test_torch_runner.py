"""scripts/torch_tests.py: runs a test file twice (torch as it is, poolext in torch.nn's
place) and reports the tests that pass on torch and fail with poolext, and which of the
passes reached poolext.  Checked here on a small test file of our own."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SUITE = '''
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F


def test_pools_like_by_hand():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    assert torch.equal(F.max_pool2d(x, 2), torch.tensor([[[[5.0, 7.0], [13.0, 15.0]]]]))


def test_module_pools():
    assert nn.AdaptiveAvgPool2d(1)(torch.ones(1, 2, 3, 3)).shape == (1, 2, 1, 1)


def test_relies_on_torchs_own_function():
    assert F.max_pool2d.__module__ == "torch.nn.functional"


def test_relies_on_torchs_own_class():
    assert type(nn.MaxPool2d(2)).__module__ == "torch.nn.modules.pooling"


def test_never_pools():
    assert torch.ones(2).sum() == 2


@pytest.mark.skip(reason="skipped on both")
def test_skipped():
    pass
'''


def test_runner_reports_regressions_and_reach(tmp_path):
    suite = tmp_path / "test_suite.py"
    suite.write_text(SUITE)
    out = tmp_path / "cmp.json"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "torch_tests.py"),
                           str(suite), "--json", str(out)], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    name = "test_suite.py::"
    assert sorted(report["regressions"]) == [name + "test_relies_on_torchs_own_class",
                                             name + "test_relies_on_torchs_own_function"]
    pool = report["poolext"]
    assert pool[name + "test_pools_like_by_hand"] == {"outcome": "passed", "poolext_calls": 1}
    assert pool[name + "test_module_pools"]["poolext_calls"] == 1
    assert pool[name + "test_never_pools"] == {"outcome": "passed", "poolext_calls": 0}
    assert pool[name + "test_skipped"]["outcome"] == "skipped"
    assert all(r["poolext_calls"] == 0 for r in report["torch"].values())
    assert all(r["outcome"] in ("passed", "skipped") for r in report["torch"].values())
    assert "torch.nn.MaxPool2d" in report["swapped"]
    assert "torch.nn.functional.max_unpool3d" in report["swapped"]
    assert "tests that pass on torch: 5" in proc.stdout
    assert "pass with poolext too: 3 (2 of them reached poolext)" in proc.stdout
    assert "fail with poolext: 2" in proc.stdout


def test_runner_refuses_a_file_that_does_not_run(tmp_path):
    suite = tmp_path / "test_broken.py"
    suite.write_text("import no_such_module_here\n")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "torch_tests.py"),
                           str(suite)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode not in (0, 1)
    assert "did not run its tests" in proc.stderr
