"""Property-based fuzzing of poolext against torch.nn.functional, with hypothesis.

    python tests/fuzz.py [--examples N] [--random] [--log FILE]

Three properties, each tried on N examples (hypothesis draws the seeds and arguments of the
generators that the seeded tests use):

- valid forward: every op, dtype and layout (ties, NaN, infinities, views, channels_last,
  unbatched, zero batch, ceil_mode, dilation): values bit-identical to torch for max pooling
  (within rounding for avg), int64 indices, dtype, shape, memory format;
- valid backward: input gradients against torch (float32, float64, bfloat16);
- any call, often invalid: poolext raises exactly where torch raises, else agrees;
- adaptive pooling: valid forward and backward as above (output sizes divisible or not, larger
  than the input, None), and any call (shapes and output sizes often invalid) raising exactly
  where torch raises.

Before each example the script writes what it is about to run to FILE, so a crash (which would
take the process down) can be reported with its case by whoever ran it (tests/test_fuzz.py
does).  Exit status 0 and "disagreements: 0" when every example agreed.  With --random the
examples differ from run to run; by default they are the same every time (derandomized).
"""

import argparse
import os
import sys

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_adaptive  # noqa: E402
import test_compare  # noqa: E402
import test_errors  # noqa: E402
from cases import FLOAT_TYPES, INT_TYPES  # noqa: E402

COUNTS = {"tried": 0, "skipped": 0, "disagreements": 0}
LOG = None


def _log(what):
    COUNTS["tried"] += 1
    if LOG:
        with open(LOG, "w") as f:
            f.write(what + "\n")


def _run(what, fn, *args):
    _log(what)
    try:
        fn(*args)
    except pytest.skip.Exception:
        COUNTS["skipped"] += 1
    except AssertionError:
        COUNTS["disagreements"] += 1
        print(f"DISAGREEMENT: {what}", flush=True)
        raise


forward_case = st.tuples(st.sampled_from(["max", "avg"]), st.sampled_from([1, 2, 3]),
                         st.sampled_from(FLOAT_TYPES + INT_TYPES + (torch.int64,)),
                         st.integers(0, 2**31 - 1))
backward_case = st.tuples(st.sampled_from(["max", "avg"]), st.sampled_from([1, 2, 3]),
                          st.sampled_from([torch.float32, torch.float64, torch.bfloat16]),
                          st.integers(0, 2**31 - 1))
any_call = st.tuples(st.sampled_from(test_errors.OPS), st.randoms(use_true_random=False),
                     st.integers(0, 2**31 - 1))

adaptive_case = st.tuples(st.sampled_from(["max", "avg"]), st.sampled_from([1, 2, 3]),
                          st.sampled_from(FLOAT_TYPES), st.booleans(), st.integers(0, 2**31 - 1))
_size = st.one_of(st.integers(-2, 12), st.none(), st.sampled_from([2.0, True]))
adaptive_call = st.tuples(st.sampled_from(["max", "avg"]), st.sampled_from([1, 2, 3]),
                          st.lists(st.integers(0, 9), min_size=1, max_size=5),
                          st.one_of(_size, st.lists(_size, min_size=0, max_size=4)))


def _forward(case):
    kind, rank, dtype, seed = case
    if kind == "avg" and not (dtype.is_floating_point or dtype == torch.int64):
        kind = "max"  # torch's avg pooling takes no other integer type
    if kind == "avg" and rank == 3 and dtype in (torch.float16, torch.bfloat16):
        rank = 2  # torch has no CPU avg_pool3d for half types to compare with
    if kind == "max" and rank == 1 and not dtype.is_floating_point:
        rank = 2  # torch has no integer max_pool1d with indices
    _run(f"forward {kind} {rank}d {dtype} seed={seed}", test_compare._check_forward,
         kind, rank, dtype, seed)


def _backward(case):
    kind, rank, dtype, seed = case
    _run(f"backward {kind} {rank}d {dtype} seed={seed}", test_compare.test_backward,
         kind, rank, dtype, seed)


def _any_call(case):
    op, rng, seed = case
    _log(f"call {op} seed={seed} (hypothesis prints the random state of a failing example)")
    problem = test_errors.agreement_problem(op, rng, seed)
    if problem:
        COUNTS["disagreements"] += 1
        print(f"DISAGREEMENT: {problem}", flush=True)
        raise AssertionError(problem)


def _adaptive(case):
    kind, rank, dtype, backward, seed = case
    test = test_adaptive.test_backward_matches_torch if backward else \
        test_adaptive.test_forward_matches_torch
    _run(f"adaptive {'backward' if backward else 'forward'} {kind} {rank}d {dtype} seed={seed}",
         test, kind, rank, dtype, seed)


def _adaptive_call(case):
    kind, rank, shape, out_size = case
    what = f"adaptive call {kind} {rank}d shape={tuple(shape)} output_size={out_size!r}"
    _log(what)
    ours, theirs = test_adaptive._fns(kind, rank)
    x = torch.randn(shape)
    expected = test_adaptive._outcome(theirs, x, out_size)
    got = test_adaptive._outcome(ours, x, out_size)
    problem = None
    if got != expected:
        problem = f"{what}: torch {expected}, poolext {got}"
    elif expected is None and ours(x, out_size).shape != theirs(x, out_size).shape:
        problem = f"{what}: shapes differ"
    if problem:
        COUNTS["disagreements"] += 1
        print(f"DISAGREEMENT: {problem}", flush=True)
        raise AssertionError(problem)


def main(argv=None):
    global LOG
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, default=200, help="examples per property")
    p.add_argument("--random", action="store_true", help="new examples on every run")
    p.add_argument("--log", help="file that holds the example being run")
    args = p.parse_args(argv)
    LOG = args.log
    opts = settings(max_examples=args.examples, derandomize=not args.random, deadline=None,
                    database=None, print_blob=True,
                    suppress_health_check=list(HealthCheck))
    failures = 0
    for name, strategy, body in (("valid forward", forward_case, _forward),
                                 ("valid backward", backward_case, _backward),
                                 ("any call", any_call, _any_call),
                                 ("adaptive valid", adaptive_case, _adaptive),
                                 ("adaptive any call", adaptive_call, _adaptive_call)):
        test = opts(given(strategy)(body))
        before = COUNTS["tried"]
        try:
            test()
            status = "ok"
        except Exception as e:  # noqa: BLE001  (hypothesis re-raises the shrunk failure)
            failures += 1
            status = f"FAILED: {str(e).splitlines()[0][:200]}"
        print(f"{name}: {COUNTS['tried'] - before} cases, {status}", flush=True)
    print(f"cases tried: {COUNTS['tried']} (skipped: {COUNTS['skipped']}), "
          f"disagreements: {COUNTS['disagreements']}, crashes: 0", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
