"""Loading the compiled extension, with a clear error when it was built
against another torch release than the one running.

The extension uses torch's C++ API, whose symbols change from one minor
release to the next: a build made against torch 2.15 does not load on 2.14
(an "undefined symbol" from the dynamic loader), and a build that happens to
load on another release is not one poolext has been checked with.  Both end
here in an ImportError that names the two releases and the rebuild command.
"""

import importlib
import re

import torch

REBUILD = ("rebuild it against the torch in this environment: "
           "pip install --no-build-isolation --no-deps --force-reinstall <poolext source>")


def _major_minor(version):
    m = re.match(r"(\d+)\.(\d+)", version)
    return f"{m.group(1)}.{m.group(2)}" if m else version


def load_extension():
    running = _major_minor(torch.__version__)
    try:
        ext = importlib.import_module("poolext._C")
    except ImportError as e:
        if "undefined symbol" not in str(e):
            raise
        raise ImportError(
            f"poolext's extension does not load with torch {torch.__version__} ({e}); it was "
            f"most likely built against another torch release: {REBUILD}") from e
    built = getattr(ext, "torch_version", None)
    if built != running:
        raise ImportError(
            f"poolext's extension was built against torch {built}, but torch "
            f"{torch.__version__} is loaded: {REBUILD}")
    return ext
