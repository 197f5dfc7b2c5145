"""Build poolext._C with torch's cpp_extension and ninja.

CUDA is built when a CUDA toolkit and a CUDA build of torch are both present.
POOLEXT_CUDA=1 forces it (and fails loudly if it cannot be built);
POOLEXT_CUDA=0 turns it off.  Without a visible GPU, TORCH_CUDA_ARCH_LIST
defaults to 9.0 (H100/H200).
"""

import glob
import os
import shutil
import sys

from setuptools import setup

ROOT = os.path.dirname(os.path.abspath(__file__))


def _find_cuda_home():
    """The toolkit root: CUDA_HOME, CUDA_PATH, /usr/local/cuda, or nvcc's real home."""
    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"]
    nvcc = shutil.which("nvcc")
    if nvcc:
        # nvcc may be a wrapper script; the toolkit is where its target lives.
        real = os.path.realpath(nvcc)
        candidates.append(os.path.dirname(os.path.dirname(real)))
        try:
            with open(real, "rb") as f:
                head = f.read(512)
            if head.startswith(b"#!"):
                for tok in head.decode(errors="ignore").split():
                    if tok.endswith("/bin/nvcc") and os.path.exists(tok):
                        candidates.append(os.path.dirname(os.path.dirname(tok)))
        except OSError:
            pass
    for c in candidates:
        if c and os.path.isfile(os.path.join(c, "bin", "nvcc")) and os.path.isdir(
            os.path.join(c, "include")
        ):
            return os.path.realpath(c)
    return None


def _want_cuda(torch_cuda_version, cuda_home):
    flag = os.environ.get("POOLEXT_CUDA", "").strip().lower()
    if flag in ("0", "off", "false", "no"):
        return False
    forced = flag in ("1", "on", "true", "yes", "force")
    if flag and not forced:
        raise RuntimeError(f"POOLEXT_CUDA={flag!r}: use 1 to force CUDA or 0 to turn it off")
    if forced:
        if torch_cuda_version is None:
            raise RuntimeError("POOLEXT_CUDA=1 but the installed torch is not a CUDA build")
        if cuda_home is None:
            raise RuntimeError(
                "POOLEXT_CUDA=1 but no CUDA toolkit was found: set CUDA_HOME to the toolkit root"
            )
        return True
    return torch_cuda_version is not None and cuda_home is not None


def _shared_cpp_runtime():
    """Link flags that make the extension use the shared C++ runtime torch uses.

    Every refusal is a c10::Error thrown inside libc10 (TORCH_CHECK calls
    c10::detail::torchCheckFail), by the system libstdc++ and unwound by the
    system libgcc_s, through poolext's frames on its way to Python.  Linked
    with -static-libgcc / -static-libstdc++ (from LDFLAGS or from a compiler
    wrapper that adds them), the extension carries private copies of the
    unwinder and of the C++ personality routine; on reaching its frames the
    private personality routine calls the private _Unwind_SetGR on the shared
    unwinder's context, whose register table that copy never set up, and the
    process aborts (or crashes) instead of raising.  Naming libstdc++ and
    libgcc_s here puts them on the link line before the compiler's own library
    arguments, so every C++ runtime and unwinder symbol resolves to the shared
    libraries and the static archives, if named later, contribute nothing.
    """
    if not sys.platform.startswith("linux"):
        return []
    return ["-lstdc++", "-lgcc_s"]


def _extensions():
    cuda_home = _find_cuda_home()
    if cuda_home and not os.environ.get("CUDA_HOME"):
        # cpp_extension reads CUDA_HOME when it is imported.
        os.environ["CUDA_HOME"] = cuda_home

    import torch
    from torch.utils import cpp_extension

    with_cuda = _want_cuda(torch.version.cuda, cuda_home)
    sources = ["csrc/ops.cpp"] + sorted(glob.glob("csrc/cpu/*.cpp"))
    include_dirs = [os.path.join(ROOT, "csrc")]
    # -g0: Python's CFLAGS ask for full debug info, which nearly doubles the
    # time to compile the kernel templates and is not shipped anyway.
    cxx = ["-O3", "-fopenmp", "-fno-math-errno", "-g0"]
    extra_link_args = ["-fopenmp"] + _shared_cpp_runtime()
    if os.environ.get("POOLEXT_SANITIZE") == "1":
        # AddressSanitizer + UndefinedBehaviorSanitizer for the CPU kernels: see
        # scripts/sanitize.sh, which preloads the ASan runtime into Python.
        # -g1: line tables for the reports' file:line (full -g takes 1.75x
        # as long to compile).
        san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
               "-fno-omit-frame-pointer", "-g1"]
        cxx = ["-O1", "-fopenmp", "-fno-math-errno"] + san
        extra_link_args += san
        print("poolext: building with AddressSanitizer and UBSan", file=sys.stderr)
    define_macros = [("Py_LIMITED_API", "0x03090000")]
    if not with_cuda:
        print("poolext: building the CPU kernels only", file=sys.stderr)
        return [
            cpp_extension.CppExtension(
                "poolext._C",
                sources,
                include_dirs=include_dirs,
                extra_compile_args={"cxx": cxx},
                extra_link_args=extra_link_args,
                define_macros=define_macros,
                py_limited_api=True,
            )
        ]

    if not os.environ.get("TORCH_CUDA_ARCH_LIST") and not torch.cuda.is_available():
        os.environ["TORCH_CUDA_ARCH_LIST"] = "9.0"
        print("poolext: no GPU visible, TORCH_CUDA_ARCH_LIST=9.0", file=sys.stderr)
    # The CUDA wheels of torch keep the cuBLAS/cuSPARSE headers that ATen's
    # CUDA headers include next to torch, not in the toolkit.
    site = os.path.dirname(os.path.dirname(torch.__file__))
    include_dirs += sorted(glob.glob(os.path.join(site, "nvidia", "cu*", "include")))
    cu_sources = sorted(glob.glob("csrc/cuda/*.cu"))
    print(
        f"poolext: building CPU and CUDA kernels ({len(cu_sources)} .cu files, "
        f"CUDA_HOME={os.environ['CUDA_HOME']}, "
        f"TORCH_CUDA_ARCH_LIST={os.environ.get('TORCH_CUDA_ARCH_LIST', '(torch default)')})",
        file=sys.stderr,
    )
    return [
        cpp_extension.CUDAExtension(
            "poolext._C",
            sources + cu_sources,
            include_dirs=include_dirs,
            extra_compile_args={"cxx": cxx + ["-DPOOLEXT_WITH_CUDA"], "nvcc": ["-O3", "-lineinfo"]},
            extra_link_args=extra_link_args,
            define_macros=define_macros,
            py_limited_api=True,
        )
    ]


def _cmdclass():
    from torch.utils.cpp_extension import BuildExtension

    return {"build_ext": BuildExtension.with_options(use_ninja=True)}


setup(
    ext_modules=_extensions(),
    cmdclass=_cmdclass(),
    options={"bdist_wheel": {"py_limited_api": "cp39"}},
)
