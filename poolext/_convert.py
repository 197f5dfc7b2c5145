"""poolext.convert: swap a model's torch.nn pooling layers for poolext's."""

from torch import nn

__all__ = ["convert"]

# The torch.nn pooling layers that poolext stands in for, each looked up by
# name in poolext.modules when convert runs (tests/test_convert.py checks that
# every one has a twin).
POOLING_NAMES = tuple(
    f"{kind}{rank}d"
    for kind in ("MaxPool", "AvgPool", "AdaptiveMaxPool", "AdaptiveAvgPool", "MaxUnpool", "LPPool")
    for rank in (1, 2, 3)
) + tuple(f"FractionalMaxPool{rank}d" for rank in (2, 3))


def twins():
    """{torch.nn class: poolext class} for every pooling layer poolext has a twin of."""
    from . import modules

    out = {}
    for name in POOLING_NAMES:
        ours = getattr(modules, name, None)
        theirs = getattr(nn, name, None)
        if ours is not None and theirs is not None:
            out[theirs] = ours
    return out


def convert(module):
    """Replace every torch.nn pooling layer in ``module`` by its poolext twin.

    Works like ``nn.SyncBatchNorm.convert_sync_batchnorm``::

        model = poolext.convert(model)

    - The layers replaced are those whose type is exactly one of
      ``nn.{Max,Avg}Pool{1,2,3}d``, ``nn.Adaptive{Max,Avg}Pool{1,2,3}d``,
      ``nn.MaxUnpool{1,2,3}d``, ``nn.LPPool{1,2,3}d`` and ``nn.FractionalMaxPool{2,3}d``
      for which ``poolext.modules`` has a class of the same name.  Subclasses of these (a
      user's own layer) are left alone, as
      are layers that are already poolext's.
    - Containers (``nn.Sequential``, ``nn.ModuleList``, ``nn.ModuleDict``, any
      module with children) are modified in place, recursively, and returned.
      Child names, and so ``state_dict`` keys, do not change.
    - A module that is itself a pooling layer is not modified: a new poolext
      layer is returned in its place.
    - The new layer holds the old one's instance state (a shallow copy of its
      ``__dict__``): the same settings (``kernel_size``, ``stride``, ...,
      ``return_indices``, ``ceil_mode``), the same ``training`` flag, any
      attribute set on it, and the same hook dictionaries, so forward, pre- and
      backward hooks keep firing and the handles returned when they were
      registered still remove them.
    - A pooling layer that appears at several places of the model (one
      instance registered twice) becomes one poolext layer at all of them.
    """
    table = twins()
    converted = {}  # id(old layer) -> (old layer, new layer); keeps old alive so ids stay unique
    visited = set()

    def swap(m):
        twin = table.get(type(m))
        if twin is None:
            return m
        if id(m) not in converted:
            new = twin.__new__(twin)
            new.__dict__.update(m.__dict__)
            converted[id(m)] = (m, new)
        return converted[id(m)][1]

    def visit(m):
        if id(m) in visited:
            return
        visited.add(id(m))
        for name, child in m._modules.items():
            if child is None:
                continue
            new = swap(child)
            if new is not child:
                m._modules[name] = new
            else:
                visit(child)

    out = swap(module)
    if out is module:
        visit(module)
    return out
