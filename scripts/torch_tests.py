"""Runs a copy of one of PyTorch's test files twice, on CPU: with torch as it is, and with
poolext in torch.nn's place (scripts/poolext_swap.py), then compares.

    python scripts/torch_tests.py FILE [--json OUT] [-- pytest args...]

Prints the tests that pass on torch and fail with poolext, how many of the tests that pass
with poolext reached poolext at all (a pass that never called poolext proves nothing), and
the totals.  Exit status: 0 when no test that passes on torch fails with poolext, 1
otherwise, 2 when a run could not start.  PyTorch's test files are not part of this project:
pass a path to a copy of one (e.g. test/nn/test_pooling.py of pytorch/pytorch).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def run(path, swap, extra, report):
    env = dict(os.environ)
    env["POOLEXT_SWAP"] = "1" if swap else "0"
    env["POOLEXT_SWAP_REPORT"] = report
    env["CUDA_VISIBLE_DEVICES"] = ""  # CPU, as the comparison is made
    env.setdefault("PYTORCH_PRINT_REPRO_ON_FAILURE", "0")
    env["PYTHONPATH"] = HERE + os.pathsep + env.get("PYTHONPATH", "")
    folder, name = os.path.split(os.path.abspath(path))
    cmd = [sys.executable, "-m", "pytest", name, "-p", "poolext_swap", "-p", "no:cacheprovider",
           "-q", "--tb=line", "-rN", "-c", os.devnull, "--rootdir", folder, *extra]
    proc = subprocess.run(cmd, cwd=folder, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    if proc.returncode not in (0, 1) or not os.path.exists(report):
        sys.stdout.write(proc.stdout[-4000:])
        print(f"torch_tests: the {'poolext' if swap else 'torch'} run did not run its tests "
              f"(pytest exit status {proc.returncode})", file=sys.stderr)
        raise SystemExit(2)
    with open(report) as f:
        return json.load(f), proc.stdout.strip().splitlines()[-1:]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", help="a copy of one of PyTorch's test files")
    ap.add_argument("--json", help="write the per-test comparison to this file")
    ap.add_argument("pytest_args", nargs="*", help="after --: passed to both pytest runs")
    args = ap.parse_args(argv)
    if not os.path.isfile(args.file):
        print(f"torch_tests: no such file: {args.file}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        torch_rep, torch_tail = run(args.file, False, args.pytest_args,
                                    os.path.join(tmp, "torch.json"))
        pool_rep, pool_tail = run(args.file, True, args.pytest_args,
                                  os.path.join(tmp, "poolext.json"))
    t, p = torch_rep["tests"], pool_rep["tests"]
    passed_torch = sorted(n for n, r in t.items() if r["outcome"] == "passed")
    regress = [n for n in passed_torch if p.get(n, {}).get("outcome") != "passed"]
    both = [n for n in passed_torch if p.get(n, {}).get("outcome") == "passed"]
    reached = [n for n in both if p[n]["poolext_calls"] > 0]
    import torch

    print(f"file: {args.file}")
    print(f"torch {torch.__version__}; swapped: {len(pool_rep['swapped'])} names "
          f"({', '.join(s.rsplit('.', 1)[1] for s in pool_rep['swapped'])})")
    print(f"torch run:   {torch_tail[0] if torch_tail else ''}")
    print(f"poolext run: {pool_tail[0] if pool_tail else ''}")
    print(f"tests that pass on torch: {len(passed_torch)}")
    print(f"  pass with poolext too: {len(both)} ({len(reached)} of them reached poolext)")
    print(f"  fail with poolext: {len(regress)}")
    for n in regress:
        rec = p.get(n, {"outcome": "missing"})
        msg = " ".join(rec.get("message", []))[:200]
        print(f"    {n}  [{rec['outcome']}, {rec.get('poolext_calls', 0)} poolext calls] {msg}")
    gained = sorted(n for n, r in p.items()
                    if r["outcome"] == "passed" and t.get(n, {}).get("outcome") != "passed")
    if gained:
        print(f"tests that fail or skip on torch and pass with poolext: {len(gained)}")
        for n in gained:
            print(f"    {n}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch": t, "poolext": p, "swapped": pool_rep["swapped"],
                       "regressions": regress}, f, indent=1)
    return 1 if regress else 0


if __name__ == "__main__":
    sys.exit(main())
