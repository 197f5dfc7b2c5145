"""setuptools' build backend, with the torch to build against chosen to match
the environment poolext is installed into.

The extension is compiled against torch's C++ API, which changes from one
minor release to the next, so it must be built against the release it will
run with.  A plain `pip install .` builds in an isolated environment that
would otherwise get the newest torch the index has, whatever the target
environment holds; the wheel would then not load there (poolext/_load.py
says so at import).  get_requires_for_build_* asks the interpreter pip runs
the backend with, started afresh with -I so that it sees its own
site-packages and not the isolated overlay, which torch it has, and
requires exactly that release.  Where it has none (a fresh environment,
or a frontend that builds in a separate environment), any torch>=2.4 is
required, and the installed one must match it.  A build without isolation
(--no-build-isolation) uses the torch already there and never calls these.
"""

import os
import subprocess
import sys

from setuptools.build_meta import *  # noqa: F401,F403  (every other hook as setuptools has it)

OLDEST = "2.4"
_PROBE = ("import importlib.metadata as m, sys\n"
          "try:\n    sys.stdout.write(m.version('torch'))\n"
          "except m.PackageNotFoundError:\n    pass\n")


def _installed_torch():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    try:
        out = subprocess.run([sys.executable, "-I", "-c", _PROBE], env=env, capture_output=True,
                             text=True, timeout=120, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out or None


def _torch_requirement():
    version = _installed_torch()
    if version is None:
        return f"torch>={OLDEST}"
    return "torch==" + version.split("+")[0]  # the local label (+cu130) names the index build


def get_requires_for_build_wheel(config_settings=None):
    return [_torch_requirement()]


# The same for editable builds and sdists (setuptools would run setup.py to
# list them, and setup.py imports torch).
get_requires_for_build_editable = get_requires_for_build_wheel
get_requires_for_build_sdist = get_requires_for_build_wheel
