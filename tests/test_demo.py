"""The digits demo (benchmarks/demo_digits.py) and the gradient picture (docs/gradient_flow.py)."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _env():
    """The child imports the poolext this test imports (this checkout)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


@pytest.mark.slow
def test_demo_quick_run_gives_identical_losses():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "demo_digits.py"), "--quick"],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "poolext.modules.MaxPool2d" in out and "poolext.modules.AvgPool2d" in out
    rows = re.findall(r"^\s*(\d+)\s+([\d.]+)\s+([\d.]+)\s+(\S+)\s+([\d.]+)\s+([\d.]+)\s*$", out,
                      re.M)
    assert len(rows) == 1, out  # --quick: one epoch
    epoch, torch_loss, poolext_loss, same, _, _ = rows[0]
    assert torch_loss == poolext_loss, out  # as printed, 8 decimals
    # bit for bit here (max pooling is exact, 2x2 averages sum in torch's order); the demo
    # itself also accepts a difference within float rounding
    assert same == "bitwise" or float(same) <= 1e-5 * float(torch_loss), out
    assert re.search(r"losses (identical: all \d+ batch losses equal bit for bit"
                     r"|equal within rounding)", out), out
    assert re.search(r"test accuracy: torch [\d.]+%, poolext [\d.]+%", out), out


def _gradient_flow():
    spec = importlib.util.spec_from_file_location("gradient_flow",
                                                  ROOT / "docs" / "gradient_flow.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _windows():
    for wr in range(2):
        for wc in range(2):
            yield wr, wc, [(2 * wr + i, 2 * wc + j) for i in range(2) for j in range(2)]


@pytest.mark.parametrize("x,g", [
    (None, None),  # the picture's example
    ([[0, 0, 1, 1], [0, 0, 1, 1], [2, -1, -3, -3], [-1, 2, -3, -3]],  # ties: first maximum wins
     [[2.0, -1.0], [4.0, 0.25]]),
], ids=["picture", "ties"])
def test_gradient_grids(x, g):
    gf = _gradient_flow()
    x = gf.INPUT if x is None else x
    g = gf.GRAD_OUTPUT if g is None else g
    grids = gf.compute_grids(x, g)

    m = grids["max"]
    assert m["input"] == [[float(v) for v in row] for row in x]
    assert m["grad_output"] == g
    for wr, wc, cells in _windows():
        vals = [x[r][c] for r, c in cells]
        first = cells[vals.index(max(vals))]  # row-major scan, first maximum
        assert m["output"][wr][wc] == max(vals)
        assert m["indices"][wr][wc] == first[0] * 4 + first[1]
        for r, c in cells:  # the window's gradient lands on its argmax, nothing elsewhere
            assert m["grad_input"][r][c] == (g[wr][wc] if (r, c) == first else 0.0)

    a = grids["avg"]
    for wr, wc, cells in _windows():
        assert a["output"][wr][wc] == pytest.approx(sum(x[r][c] for r, c in cells) / 4)
        for r, c in cells:  # split evenly: g/4 to each of the window's four cells
            assert a["grad_input"][r][c] == pytest.approx(g[wr][wc] / 4, abs=0)
        assert sum(a["grad_input"][r][c] for r, c in cells) == pytest.approx(g[wr][wc])


def test_gradient_picture_draws(tmp_path):
    gf = _gradient_flow()
    out = gf.draw(tmp_path / "flow.png")
    data = Path(out).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    committed = ROOT / "docs" / "gradient_flow.png"
    assert committed.exists() and committed.stat().st_size < 150_000
