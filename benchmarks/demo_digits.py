"""Demo on real data: a small CNN on scikit-learn's handwritten digits, trained twice.

    python benchmarks/demo_digits.py [--epochs N] [--threads T] [--quick]

load_digits ships with scikit-learn (1797 images of 8x8 pixels, 10 classes; no
download).  The CNN (conv, max pooling, conv, average pooling, linear) is trained
once with torch's pooling layers and once after poolext.convert, from the same
initial weights, on the same batches in the same order; the two runs alternate
epoch by epoch so both see the same machine load.  Printed: each epoch's mean
training loss for both, side by side, the test accuracy and the time per epoch.

Max pooling is bit-exact and average pooling agrees within float rounding, so
the two runs must give the same losses.  The script checks every batch's loss:
equal bit for bit, or at most within rounding (relative 1e-5); anything more
and it exits with status 1.

It runs on one thread by default: with batches of 32 8x8 images every op is tiny,
and on a busy machine a second intra-op thread costs far more than it gives.
"""

import argparse
import copy
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

import poolext

ROUNDING = 1e-5  # relative difference still counted as float rounding


def load_data(seed):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (N, 1, 8, 8)
    y = torch.tensor(digits.target, dtype=torch.int64)
    idx_train, idx_test = train_test_split(torch.arange(len(y)).numpy(), test_size=0.25,
                                           random_state=seed, stratify=y.numpy())
    return x[idx_train], y[idx_train], x[idx_test], y[idx_test]


def make_model():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2),                               # 8x8 -> 4x4
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(3, stride=1, padding=1),          # overlapping windows, 4x4 -> 4x4
        nn.AvgPool2d(2),                               # 4x4 -> 2x2
        nn.Flatten(),
        nn.Linear(64 * 2 * 2, 10),
    )


def train_epoch(model, opt, x, y, order, batch):
    """One epoch over ``order``; returns the per-batch losses (float32 tensor) and seconds."""
    model.train()
    losses = []
    t0 = time.perf_counter()
    for i in range(0, len(order), batch):
        b = order[i:i + batch]
        opt.zero_grad()
        loss = F.cross_entropy(model(x[b]), y[b])
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    return torch.stack(losses), time.perf_counter() - t0


@torch.no_grad()
def accuracy(model, x, y):
    model.eval()
    return (model(x).argmax(1) == y).float().mean().item()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--quick", action="store_true", help="one short epoch (10 batches): a smoke test")
    args = p.parse_args(argv)
    epochs = 1 if args.quick else args.epochs
    torch.set_num_threads(args.threads)

    x_train, y_train, x_test, y_test = load_data(args.seed)
    torch.manual_seed(args.seed)
    reference = make_model()
    runs = {"torch": reference, "poolext": poolext.convert(copy.deepcopy(reference))}
    converted = [f"[{n}] {type(m).__module__}.{type(m).__name__}"
                 for n, m in runs["poolext"].named_modules() if "Pool" in type(m).__name__]
    opts = {k: torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9) for k, m in runs.items()}
    g = torch.Generator().manual_seed(args.seed)
    orders = [torch.randperm(len(y_train), generator=g) for _ in range(epochs)]
    if args.quick:
        orders = [o[: 10 * args.batch] for o in orders]

    print(f"digits: {len(y_train)} training and {len(y_test)} test images of 8x8, 10 classes; "
          f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"poolext CPU kernels: {poolext.cpu_isa()}")
    print("pooling layers after poolext.convert: " + ", ".join(converted))
    print()
    header = (f"{'epoch':>5}  {'torch loss':>12}  {'poolext loss':>12}  {'same':>10}  "
              f"{'torch s':>8}  {'poolext s':>9}")
    print(header)
    print("-" * len(header))
    all_losses = {k: [] for k in runs}
    times = {k: [] for k in runs}
    for epoch, order in enumerate(orders, 1):
        for name, model in runs.items():  # alternate: both runs see the same machine load
            losses, secs = train_epoch(model, opts[name], x_train, y_train, order, args.batch)
            all_losses[name].append(losses)
            times[name].append(secs)
        a, b = all_losses["torch"][-1], all_losses["poolext"][-1]
        same = "bitwise" if torch.equal(a, b) else f"{(a - b).abs().max().item():.1e}"
        print(f"{epoch:>5}  {a.mean().item():>12.8f}  {b.mean().item():>12.8f}  {same:>10}  "
              f"{times['torch'][-1]:>8.3f}  {times['poolext'][-1]:>9.3f}")
    print()
    acc = {k: accuracy(m, x_test, y_test) for k, m in runs.items()}
    per_epoch = {k: sum(v) / len(v) for k, v in times.items()}
    print(f"test accuracy: torch {acc['torch']:.2%}, poolext {acc['poolext']:.2%}")
    print(f"time per epoch (mean): torch {per_epoch['torch']:.3f} s, "
          f"poolext {per_epoch['poolext']:.3f} s")

    a, b = torch.cat(all_losses["torch"]), torch.cat(all_losses["poolext"])
    if torch.equal(a, b):
        print(f"losses identical: all {len(a)} batch losses equal bit for bit")
        return 0
    rel = ((a - b).abs() / a.abs().clamp_min(1e-30)).max().item()
    if rel <= ROUNDING:
        print(f"losses equal within rounding: {int((a != b).sum())} of {len(a)} batch losses "
              f"differ, by at most {rel:.1e} relative")
        return 0
    print(f"FAIL: losses differ beyond rounding ({rel:.1e} relative, allowed {ROUNDING:.0e})",
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
