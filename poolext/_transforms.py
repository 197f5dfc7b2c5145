"""What poolext's autograd.Functions need for PyTorch's transforms (torch.func's grad, vmap,
jvp, jacrev, jacfwd, hessian, and torch.autograd.forward_ad).

Every Function is written in the form functorch takes: ``forward`` without ctx,
``setup_context``, and a ``vmap`` rule, which merges the vmapped dim into the batch dim N
(or makes it N for an unbatched input) and runs the same Function on the merged tensors.
Its tangent (forward-mode AD) lives in a ``_tangent`` staticmethod: the class that
torch.compile traces has no ``jvp`` (dynamo refuses Functions that define one), and a
twin subclass that has it runs while a transform or a forward-AD level is active
(``pick``).
"""

import torch
import torch.autograd.forward_ad as _fwad

_functorch = torch._C._functorch


_compiling = torch.compiler.is_compiling


def transforms_active():
    """A functorch transform (grad, vmap, jvp, ...) or a forward-AD dual level is active
    (never while torch.compile traces: it handles the transforms itself)."""
    if _compiling():
        return False
    return _functorch.maybe_current_level() is not None or _fwad._current_level >= 0


def use_function(input):
    """Whether a call goes through poolext's autograd.Function (which saves the least state
    and carries the transforms' rules) rather than the op alone: when its input is
    differentiated or a transform is active, but not under torch.jit.trace, which records
    a Function as an opaque PythonOp; there the op goes into the trace, and its registered
    autograd formula differentiates it."""
    if torch.jit.is_tracing():
        return False
    return torch.is_grad_enabled() and input.requires_grad or transforms_active()


def wrapped(x):
    """x is a tensor that a functorch transform wraps (its layout cannot always be queried)."""
    if _compiling():
        return False
    return isinstance(x, torch.Tensor) and _functorch.is_functorch_wrapped_tensor(x)


def pick(cls):
    """The Function to apply: cls, or its twin with a jvp while a transform is active."""
    return cls.twin if transforms_active() else cls


def call(cls, op, *args):
    """cls's op on args: the op itself when nothing differentiates or transforms it (one call,
    nothing on the tape), else the Function."""
    if torch.is_grad_enabled() or transforms_active():
        return pick(cls).apply(*args)
    return op(*args)


def _vmap_frames(info, in_dims, args, tensors, shapes, cl, rank, apply, samples=None):
    """Runs `apply` once over the whole vmapped batch.  tensors: positions of the tensor
    arguments framed like the pooled input ((N, C, *spatial) or (C, *spatial)); shapes:
    positions of full-shape arguments; cl: position of the channels_last flag (the merged
    tensor is pooled as contiguous); samples: position of fractional max pooling's samples,
    (N', C, rank) with N' >= N (1 for an unbatched input), of which the first N count."""
    args = list(args)
    batched = [i for i in tensors + ((samples,) if samples is not None else ())
               if in_dims[i] is not None]
    if not batched:
        out = apply(*args)
        return out, (tuple(None for _ in out) if isinstance(out, tuple) else None)
    B = info.batch_size
    frame = [i for i in tensors if args[i].dim() - (in_dims[i] is not None) >= rank + 1]
    first = args[frame[0]]
    has_n = first.dim() - (in_dims[frame[0]] is not None) == rank + 2
    n = first.movedim(in_dims[frame[0]], 0).shape[1] if in_dims[frame[0]] is not None else \
        first.shape[0]
    n = n if has_n else None
    for i in tensors:
        t, d = args[i], in_dims[i]
        if d is None:
            if t.dim() < rank + 1:  # an empty placeholder (no argmax / indices asked for)
                continue
            t = t.unsqueeze(0).expand((B,) + tuple(t.shape))
        else:
            t = t.movedim(d, 0)
        args[i] = t.reshape((B * n,) + tuple(t.shape[2:])) if has_n else t
    if samples is not None:
        t, d = args[samples], in_dims[samples]
        t = t.movedim(d, 0) if d is not None else t.unsqueeze(0).expand((B,) + tuple(t.shape))
        t = t[:, :n] if has_n else t[:, :1]
        args[samples] = t.reshape((-1,) + tuple(t.shape[2:]))
    for i in shapes:
        s = list(args[i])
        args[i] = [B * s[0]] + s[1:] if has_n else [B] + s
    if cl is not None:
        args[cl] = False
    out = apply(*args)
    single = not isinstance(out, tuple)
    res, dims = [], []
    for o in (out,) if single else out:
        if isinstance(o, torch.Tensor) and o.dim() >= rank + 1:
            res.append(o.reshape((B, n) + tuple(o.shape[1:])) if has_n else o)
            dims.append(0)
        else:
            res.append(o)
            dims.append(None)
    return (res[0], dims[0]) if single else (tuple(res), tuple(dims))


def function(tensors, shapes=(), cl=None, rank=None, samples=None):
    """Class decorator for a Function: its vmap rule (see _vmap_frames; rank(args) gives the
    spatial rank) and its twin with the jvp (the class's _tangent)."""

    def deco(cls):
        def make_vmap(target):
            def vmap(info, in_dims, *args):
                return _vmap_frames(info, in_dims, args, tensors, shapes, cl, rank(args),
                                    target.apply, samples)
            return staticmethod(vmap)

        cls.vmap = make_vmap(cls)
        twin = jvp_twin(cls)
        twin.vmap = make_vmap(twin)
        return cls

    return deco


def jvp_twin(cls):
    """Gives cls (a Function with a `_tangent` staticmethod) its twin subclass whose jvp is
    that tangent, as `pick` finds it (cls.twin); returns the twin."""
    twin = type(cls.__name__ + "WithJvp", (cls,), {
        "jvp": staticmethod(cls._tangent), "__doc__": cls.__doc__,
        "__module__": cls.__module__})
    cls.twin = twin.twin = twin
    return twin


def linear_pair(names, ops, saved, **vmap_rule):
    """Two Functions, each linear in its first argument and the other's adjoint: the backward
    of one is the other applied to the incoming gradient, the tangent of one is itself applied
    to the tangent.  ops: the two ops, each taking (x, *rest) with the same rest; saved: the
    positions in (x, *rest) of the tensors among rest (argmax, indices, samples), kept through
    ctx rather than on it.  vmap_rule: as for `function`, for both."""
    classes = []

    def make(k):
        op = ops[k]

        def forward(*args):
            return op(*args)

        def setup_context(ctx, inputs, output):
            tensors = [inputs[i] for i in saved]
            ctx.save_for_backward(*tensors)
            ctx.save_for_forward(*tensors)
            ctx.rest = [None if i + 1 in saved else a for i, a in enumerate(inputs[1:])]

        def rest_of(ctx):
            rest = list(ctx.rest)
            for i, t in zip(saved, ctx.saved_tensors):
                rest[i - 1] = t
            return rest

        def backward(ctx, grad):
            rest = rest_of(ctx)
            return (call(classes[1 - k], ops[1 - k], grad, *rest),) + (None,) * len(rest)

        def _tangent(ctx, tangent, *_):
            return pick(classes[k]).apply(tangent, *rest_of(ctx))

        cls = type(names[k], (torch.autograd.Function,), {
            "__doc__": f"{names[k]}: linear in its first argument; its adjoint is "
                       f"{names[1 - k]}.",
            "__module__": __name__, "forward": staticmethod(forward),
            "setup_context": staticmethod(setup_context), "backward": staticmethod(backward),
            "_tangent": staticmethod(_tangent)})
        return function(**vmap_rule)(cls)

    classes.extend(make(k) for k in (0, 1))
    return tuple(classes)
