"""cuDNN's pooling (the legacy cudnnPoolingForward/Backward API) through ctypes, as a baseline.

    pool = CudnnPool("max", kernel=(3, 3), stride=(2, 2), padding=(1, 1))
    y = pool.forward(x)                 # x: CUDA tensor, NCHW or NHWC (any strides), 1d/2d/3d
    dx = pool.backward(x, y, dy)

Max pooling uses CUDNN_POOLING_MAX_DETERMINISTIC with CUDNN_PROPAGATE_NAN; average pooling
CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING or _EXCLUDE_PADDING.  cuDNN has no dilation, no
ceil_mode and no divisor override, and takes int32 sizes and strides: supports() says which
problems it can run.  Nothing is loaded until first use, so this module imports without a GPU.
cuDNN 9 keeps these functions in libcudnn_ops.so.9 and the handle functions in
libcudnn_graph.so.9 (both from the nvidia-cudnn wheel that torch depends on).
"""

import ctypes
import glob
import os

import torch

# Enum values from cudnn_graph.h / cudnn_ops.h (cuDNN 9).
CUDNN_STATUS_SUCCESS = 0
CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING = 1
CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING = 2
CUDNN_POOLING_MAX_DETERMINISTIC = 3
CUDNN_PROPAGATE_NAN = 1
DATA_TYPES = {  # cudnnDataType_t
    torch.float32: 0,  # CUDNN_DATA_FLOAT
    torch.float64: 1,  # CUDNN_DATA_DOUBLE
    torch.float16: 2,  # CUDNN_DATA_HALF
    torch.bfloat16: 9,  # CUDNN_DATA_BFLOAT16
}
INT32_MAX = 2**31 - 1

_lib = None


class CudnnError(RuntimeError):
    pass


def _candidates(name):
    """Places to look for a cuDNN library: the nvidia-cudnn wheel, then the loader's path."""
    paths = []
    try:
        import nvidia.cudnn

        for root in list(getattr(nvidia.cudnn, "__path__", [])):
            paths += glob.glob(os.path.join(root, "lib", name))
    except ImportError:
        pass
    site = os.path.dirname(os.path.dirname(torch.__file__))
    paths += glob.glob(os.path.join(site, "nvidia", "cudnn", "lib", name))
    return paths + [name]


def _load(name):
    for path in _candidates(name):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


class _Lib:
    """The few cuDNN entry points used here, with their C signatures."""

    def __init__(self):
        torch.backends.cudnn.version()  # lets torch load cuDNN first (same copy, same handle pool)
        graph = _load("libcudnn_graph.so.9") or _load("libcudnn.so.9")
        ops = _load("libcudnn_ops.so.9") or _load("libcudnn.so.9")
        if graph is None or ops is None:
            raise CudnnError("cuDNN 9 not found (libcudnn_graph.so.9 / libcudnn_ops.so.9)")
        P, I, S = ctypes.c_void_p, ctypes.c_int, ctypes.c_int  # S: cudnnStatus_t
        IA = ctypes.POINTER(ctypes.c_int)
        sigs = {
            (graph, "cudnnGetVersion"): (ctypes.c_size_t, []),
            (graph, "cudnnGetErrorString"): (ctypes.c_char_p, [S]),
            (graph, "cudnnCreate"): (S, [ctypes.POINTER(P)]),
            (graph, "cudnnDestroy"): (S, [P]),
            (graph, "cudnnSetStream"): (S, [P, P]),
            (ops, "cudnnCreateTensorDescriptor"): (S, [ctypes.POINTER(P)]),
            (ops, "cudnnDestroyTensorDescriptor"): (S, [P]),
            (ops, "cudnnSetTensorNdDescriptor"): (S, [P, I, I, IA, IA]),
            (ops, "cudnnCreatePoolingDescriptor"): (S, [ctypes.POINTER(P)]),
            (ops, "cudnnDestroyPoolingDescriptor"): (S, [P]),
            (ops, "cudnnSetPoolingNdDescriptor"): (S, [P, I, I, I, IA, IA, IA]),
            # handle, pooling, alpha, xDesc, x, beta, yDesc, y
            (ops, "cudnnPoolingForward"): (S, [P, P, P, P, P, P, P, P]),
            # handle, pooling, alpha, yDesc, y, dyDesc, dy, xDesc, x, beta, dxDesc, dx
            (ops, "cudnnPoolingBackward"): (S, [P, P, P, P, P, P, P, P, P, P, P, P]),
        }
        for (lib, name), (res, args) in sigs.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = res, args
            setattr(self, name, fn)
        self.handles = {}

    def check(self, status, what):
        if status != CUDNN_STATUS_SUCCESS:
            msg = self.cudnnGetErrorString(status).decode(errors="replace")
            raise CudnnError(f"{what} failed: {msg} ({status})")

    def handle(self):
        """The handle of the current device, bound to the current stream."""
        dev = torch.cuda.current_device()
        if dev not in self.handles:
            h = ctypes.c_void_p()
            self.check(self.cudnnCreate(ctypes.byref(h)), "cudnnCreate")
            self.handles[dev] = h
        h = self.handles[dev]
        stream = torch.cuda.current_stream().cuda_stream
        self.check(self.cudnnSetStream(h, ctypes.c_void_p(stream)), "cudnnSetStream")
        return h


def lib():
    global _lib
    if _lib is None:
        _lib = _Lib()
    return _lib


def version():
    """cuDNN's version number (e.g. 92400), or None where it cannot be loaded."""
    try:
        return int(lib().cudnnGetVersion())
    except (CudnnError, OSError, AttributeError):
        return None


def supports(kind, rank, kwargs, shape, dtype):
    """(True, "") when cuDNN can run this torch-style pooling problem, else (False, reason)."""
    if kind not in ("max", "avg"):
        return False, f"no cuDNN {kind.rstrip('_')} pooling"
    if dtype not in DATA_TYPES:
        return False, f"dtype {dtype}"
    if kind == "max" and any(d != 1 for d in _tuple(kwargs.get("dilation", 1), rank)):
        return False, "dilation"
    if kwargs.get("ceil_mode"):
        return False, "ceil_mode"
    if kwargs.get("divisor_override") is not None:
        return False, "divisor_override"
    k = _tuple(kwargs["kernel_size"], rank)
    p = _tuple(kwargs.get("padding", 0), rank)
    if any(2 * pp >= kk for pp, kk in zip(p, k)):
        return False, "padding >= half the window"
    numel = 1
    for s in shape:
        numel *= s
    if numel > INT32_MAX:
        return False, "more than 2^31 elements"
    if len(shape) != rank + 2:
        return False, "unbatched input"
    return True, ""


def _tuple(v, rank):
    if v is None:
        return None
    return (v,) * rank if isinstance(v, int) else tuple(v) * (rank if len(v) == 1 else 1)


class _TensorDesc:
    def __init__(self, t):
        L = lib()
        self.ptr = ctypes.c_void_p()
        L.check(L.cudnnCreateTensorDescriptor(ctypes.byref(self.ptr)), "cudnnCreateTensorDescriptor")
        n = t.dim()
        dims = (ctypes.c_int * n)(*t.shape)
        strides = (ctypes.c_int * n)(*t.stride())
        L.check(L.cudnnSetTensorNdDescriptor(self.ptr, DATA_TYPES[t.dtype], n, dims, strides),
                f"cudnnSetTensorNdDescriptor{tuple(t.shape)}{t.stride()}")

    def __del__(self):
        if _lib is not None and self.ptr:
            _lib.cudnnDestroyTensorDescriptor(self.ptr)


class CudnnPool:
    """Pooling over the last 1, 2 or 3 dims of an N x C x ... CUDA tensor with cuDNN."""

    def __init__(self, kind, kernel, stride=None, padding=0, count_include_pad=True):
        self.rank = len(kernel)
        self.kind = kind
        self.kernel = tuple(kernel)
        self.stride = _tuple(stride, self.rank) if stride is not None else self.kernel
        self.padding = _tuple(padding, self.rank)
        if kind == "max":
            mode = CUDNN_POOLING_MAX_DETERMINISTIC
        elif count_include_pad:
            mode = CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING
        else:
            mode = CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING
        # cuDNN pools 2 or 3 spatial dims: 1d runs as 2d over a unit height.
        k, s, p = self.kernel, self.stride, self.padding
        if self.rank == 1:
            k, s, p = (1,) + k, (1,) + s, (0,) + p
        L = lib()
        self.desc = ctypes.c_void_p()
        L.check(L.cudnnCreatePoolingDescriptor(ctypes.byref(self.desc)),
                "cudnnCreatePoolingDescriptor")
        arr = lambda v: (ctypes.c_int * len(v))(*v)  # noqa: E731
        L.check(L.cudnnSetPoolingNdDescriptor(self.desc, mode, CUDNN_PROPAGATE_NAN, len(k), arr(k),
                                              arr(p), arr(s)), "cudnnSetPoolingNdDescriptor")
        self._descs = {}

    def __del__(self):
        if _lib is not None and getattr(self, "desc", None):
            _lib.cudnnDestroyPoolingDescriptor(self.desc)

    def _view(self, t):
        return t.unsqueeze(-2) if self.rank == 1 else t

    def _desc(self, t):
        key = (tuple(t.shape), t.stride(), t.dtype)
        if key not in self._descs:
            self._descs[key] = _TensorDesc(t)
        return self._descs[key].ptr

    def _scalars(self, dtype):
        c = ctypes.c_double if dtype == torch.float64 else ctypes.c_float
        return c(1.0), c(0.0)

    def out_shape(self, shape):
        out = list(shape)
        for a in range(self.rank):
            L = shape[len(shape) - self.rank + a]
            out[len(shape) - self.rank + a] = (L + 2 * self.padding[a] - self.kernel[a]) // self.stride[a] + 1
        return out

    def forward(self, x):
        y = torch.empty(self.out_shape(x.shape), dtype=x.dtype, device=x.device)
        if x.dim() >= 4 and not x.is_contiguous() and x.is_contiguous(
                memory_format=torch.channels_last if x.dim() == 4 else torch.channels_last_3d):
            y = y.contiguous(memory_format=torch.channels_last if x.dim() == 4
                             else torch.channels_last_3d)
        xv, yv = self._view(x), self._view(y)
        alpha, beta = self._scalars(x.dtype)
        L = lib()
        with torch.cuda.device(x.device):
            L.check(L.cudnnPoolingForward(L.handle(), self.desc, ctypes.byref(alpha), self._desc(xv),
                                          ctypes.c_void_p(xv.data_ptr()), ctypes.byref(beta),
                                          self._desc(yv), ctypes.c_void_p(yv.data_ptr())),
                    "cudnnPoolingForward")
        return y

    def backward(self, x, y, dy):
        if dy.stride() != y.stride():  # give dy and y one layout, as cuDNN expects
            dy = torch.empty_like(y).copy_(dy)
        dx = torch.empty_like(x)
        xv, yv, dyv, dxv = map(self._view, (x, y, dy, dx))
        alpha, beta = self._scalars(x.dtype)
        L = lib()
        with torch.cuda.device(x.device):
            L.check(L.cudnnPoolingBackward(
                L.handle(), self.desc, ctypes.byref(alpha),
                self._desc(yv), ctypes.c_void_p(yv.data_ptr()),
                self._desc(dyv), ctypes.c_void_p(dyv.data_ptr()),
                self._desc(xv), ctypes.c_void_p(xv.data_ptr()),
                ctypes.byref(beta), self._desc(dxv), ctypes.c_void_p(dxv.data_ptr())),
                "cudnnPoolingBackward")
        return dx


def for_problem(kind, rank, kwargs):
    """A CudnnPool for torch.nn.functional-style arguments (call supports() first)."""
    k = _tuple(kwargs["kernel_size"], rank)
    s = kwargs.get("stride")
    s = k if s is None or s == [] else _tuple(s, rank)
    return CudnnPool(kind, k, s, _tuple(kwargs.get("padding", 0), rank),
                     kwargs.get("count_include_pad", True))


def check_against_torch(device="cuda"):
    """Compares cuDNN's pooling with torch.nn.functional on small problems; raises on a mismatch.

    Max pooling values must be bit-identical; average pooling and gradients close.  Inputs are
    distinct values, so both libraries route each max gradient to the same element.
    """
    import torch.nn.functional as F

    problems = [
        ("max", 1, (2, 3, 50), dict(kernel_size=4, stride=3, padding=1)),
        ("max", 2, (2, 8, 17, 19), dict(kernel_size=3, stride=2, padding=1)),
        ("max", 3, (2, 4, 9, 10, 11), dict(kernel_size=3, stride=2, padding=1)),
        ("avg", 1, (2, 3, 50), dict(kernel_size=4, stride=2, padding=1)),
        ("avg", 2, (2, 8, 17, 19), dict(kernel_size=3, stride=1, padding=1,
                                        count_include_pad=False)),
        ("avg", 3, (2, 4, 9, 10, 11), dict(kernel_size=2, stride=2)),
    ]
    g = torch.Generator().manual_seed(0)
    for kind, rank, shape, kw in problems:
        fn = getattr(F, f"{kind}_pool{rank}d")
        for layout in (["contiguous", "channels_last"] if rank > 1 else ["contiguous"]):
            n = torch.Size(shape).numel()
            x = (torch.randperm(n, generator=g).float() / n).view(shape).to(device)
            if layout == "channels_last":
                x = x.contiguous(memory_format=torch.channels_last if rank == 2
                                 else torch.channels_last_3d)
            pool = for_problem(kind, rank, kw)
            xr = x.clone().requires_grad_()
            ref = fn(xr, **kw)
            y = pool.forward(x)
            what = f"cuDNN {kind} {rank}d {layout}"
            if kind == "max" and not torch.equal(y, ref):
                raise AssertionError(f"{what}: forward differs from torch")
            torch.testing.assert_close(y, ref, msg=lambda m: f"{what} forward: {m}")
            dy = torch.randn(ref.shape, generator=g).to(device)
            (dx_ref,) = torch.autograd.grad(ref, xr, dy)
            dx = pool.backward(x, y, dy)
            torch.testing.assert_close(dx, dx_ref, msg=lambda m: f"{what} backward: {m}")
    return True
