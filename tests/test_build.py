"""The built extension shares torch's C++ runtime instead of carrying its own,
and refuses to load under another torch release than the one it was built for.

Refusals are c10::Errors thrown inside libc10 by the shared libstdc++ and
unwound by the shared libgcc_s through poolext's frames.  An extension linked
with -static-libgcc/-static-libstdc++ holds private copies of the unwinder and
of the personality routine, and the first refusal aborts the interpreter
(setup.py's _shared_cpp_runtime says how).  These tests read the ELF file of
the extension that was imported; scripts/compat.sh --static-runtime builds one
with those flags and runs the refusal tests against it.
"""

import shutil
import subprocess
import sys

import pytest
import torch

import poolext._C as ext

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ELF checks on Linux")


def _tool(name):
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} (binutils) not found")
    return path


@linux
def test_links_the_shared_cpp_runtime():
    out = subprocess.run([_tool("readelf"), "-d", ext.__file__], check=True,
                         capture_output=True, text=True).stdout
    needed = [line.split("[")[1].split("]")[0] for line in out.splitlines() if "(NEEDED)" in line]
    assert any(n.startswith("libstdc++.so") for n in needed), needed
    assert any(n.startswith("libgcc_s.so") for n in needed), needed


@linux
def test_holds_no_private_unwinder_or_personality_routine():
    out = subprocess.run([_tool("nm"), ext.__file__], check=True,
                         capture_output=True, text=True).stdout
    defined = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] not in ("U", "w", "v"):
            defined.add(parts[2])
    private = sorted(defined & {"_Unwind_RaiseException", "_Unwind_Resume", "_Unwind_SetGR",
                                "__gxx_personality_v0", "__cxa_throw", "__cxa_begin_catch"})
    assert not private, f"the extension defines its own copies of {private}"


def test_a_direct_op_refusal_raises():
    with pytest.raises(RuntimeError, match="stride"):
        torch.ops.poolext.max_pool(torch.randn(2, 3, 8, 8), [2, 2], [0, 2], [0, 0], [1, 1],
                                   False, False, True, True)


def test_records_the_torch_it_was_built_against():
    assert ext.torch_version == ".".join(torch.__version__.split(".")[:2])


def test_refuses_another_torch_release(monkeypatch):
    from poolext._load import load_extension

    monkeypatch.setattr(torch, "__version__", "2.3.1")
    with pytest.raises(ImportError, match=rf"built against torch {ext.torch_version}, but torch "
                                          r"2\.3\.1 is loaded: rebuild"):
        load_extension()


def test_isolated_builds_require_the_installed_torch():
    """pip's isolated build environment gets the torch release this environment holds
    (_build_backend/backend.py), not whatever is newest on the index."""
    import importlib.metadata
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "_build_backend" / "backend.py"
    if not path.exists():
        pytest.skip("run from an installed copy without the source tree")
    spec = importlib.util.spec_from_file_location("poolext_build_backend", path)
    backend = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(backend)
    want = "torch==" + importlib.metadata.version("torch").split("+")[0]
    assert backend.get_requires_for_build_wheel() == [want]
    assert backend.get_requires_for_build_editable() == [want]
