"""Runs the hypothesis fuzzing of tests/fuzz.py in a child process, so that a crash of the
extension is reported with the case that caused it instead of taking the test run down.

CI runs a fixed budget (the same examples every time).  The longer run, with new examples on
each run:  POOLEXT_FUZZ_EXAMPLES=3000 POOLEXT_FUZZ_RANDOM=1 pytest tests/test_fuzz.py -s
"""

import os
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def test_fuzz_against_torch(tmp_path):
    examples = os.environ.get("POOLEXT_FUZZ_EXAMPLES", "200")
    log = tmp_path / "case.txt"
    cmd = [sys.executable, os.path.join(HERE, "fuzz.py"), "--examples", examples,
           "--log", str(log)]
    if os.environ.get("POOLEXT_FUZZ_RANDOM") == "1":
        cmd.append("--random")
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE)
    print(r.stdout)
    if r.returncode < 0:
        case = log.read_text().strip() if log.exists() else "unknown case"
        raise AssertionError(f"the fuzzer crashed ({signal.Signals(-r.returncode).name}) "
                             f"on: {case}\n{r.stderr[-3000:]}")
    assert r.returncode == 0, r.stdout[-5000:] + r.stderr[-3000:]
    assert "disagreements: 0, crashes: 0" in r.stdout, r.stdout[-5000:]
