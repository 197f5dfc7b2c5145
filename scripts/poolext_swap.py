"""A pytest plugin for running a test file of PyTorch's with poolext in torch.nn's place.

Loaded by scripts/torch_tests.py (``-p poolext_swap``).  With POOLEXT_SWAP=1,
every public function of ``poolext.functional`` replaces its namesake in
``torch.nn.functional``, and every module class of ``poolext.modules`` its
namesake in ``torch.nn``, ``torch.nn.modules`` and ``torch.nn.modules.pooling``,
before the test file is imported.  Which names are swapped is read from poolext
itself, so pooling layers added later are swapped without a change here.

In both modes the plugin writes, to the JSON file named by POOLEXT_SWAP_REPORT,
one record per test: its outcome and how many calls reached a poolext function
during it (the modules count too: their forward calls poolext.functional).
"""

import json
import os

import pytest

SWAP = os.environ.get("POOLEXT_SWAP") == "1"
REPORT = os.environ.get("POOLEXT_SWAP_REPORT")

_calls = [0]
_records = {}
swapped = []


def _counting(fn):
    def wrapper(*args, **kwargs):
        _calls[0] += 1
        return fn(*args, **kwargs)

    wrapper.__name__ = fn.__name__
    wrapper.__qualname__ = getattr(fn, "__qualname__", fn.__name__)
    wrapper.__doc__ = fn.__doc__
    wrapper.__module__ = fn.__module__
    wrapper.__wrapped__ = fn
    return wrapper


def _install():
    import torch.nn
    import torch.nn.functional as TF
    import torch.nn.modules
    import torch.nn.modules.pooling

    import poolext.functional as PF
    import poolext.modules as PM

    for name in getattr(PF, "__all__", dir(PF)):
        fn = getattr(PF, name, None)
        if name.startswith("_") or not callable(fn) or not hasattr(TF, name):
            continue
        wrapped = _counting(fn)
        setattr(PF, name, wrapped)  # poolext's modules call these, so they count too
        if SWAP:
            setattr(TF, name, wrapped)
            swapped.append(f"torch.nn.functional.{name}")
    if not SWAP:
        return
    for name in getattr(PM, "__all__", dir(PM)):
        cls = getattr(PM, name, None)
        if not isinstance(cls, type) or not hasattr(torch.nn, name):
            continue
        for namespace in (torch.nn, torch.nn.modules, torch.nn.modules.pooling):
            if hasattr(namespace, name):
                setattr(namespace, name, cls)
        swapped.append(f"torch.nn.{name}")


def pytest_configure(config):
    _install()


def pytest_report_header(config):
    if SWAP:
        return f"poolext_swap: {len(swapped)} names swapped: " + ", ".join(swapped)
    return "poolext_swap: torch as it is (calls to poolext counted)"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _calls[0] = 0
    yield
    _records.setdefault(item.nodeid, {"outcome": "passed"})["poolext_calls"] = _calls[0]


def pytest_runtest_logreport(report):
    rec = _records.setdefault(report.nodeid, {"outcome": "passed"})
    if report.when == "call" and hasattr(report, "wasxfail"):
        rec["outcome"] = "xfailed" if report.skipped else "xpassed"
    elif report.skipped and report.when in ("setup", "call"):
        rec["outcome"] = "skipped"
    elif report.failed:
        if rec["outcome"] != "failed":
            rec["outcome"] = "failed"
            crash = getattr(getattr(report.longrepr, "reprcrash", None), "message", None)
            text = crash or (report.longreprtext or "").strip()
            rec["message"] = text.strip().splitlines()[:1] or [""]


def pytest_sessionfinish(session, exitstatus):
    if REPORT:
        with open(REPORT, "w") as f:
            json.dump({"swap": SWAP, "swapped": swapped, "tests": _records}, f, indent=1)
