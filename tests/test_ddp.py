"""A CNN with poolext layers trains under DistributedDataParallel as on one process.

Two CPU processes (gloo, started with torch.multiprocessing.spawn, rendezvous
through a file) each take half of every batch; DDP averages their gradients,
which is the gradient of the mean loss over the full batch.  After a few SGD
steps their parameters must equal those of a single process trained on the
full batches (float64, so the only difference is the order of a few sums).
Rank 1 starts from different weights: DDP's initial broadcast from rank 0
must make them agree.
"""

import os
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as TF
from torch import nn

import poolext

WORLD = 2
STEPS = 4
BATCH = 8  # per step, split evenly across the ranks
TIMEOUT_S = 90


def make_model(seed):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(),
        poolext.MaxPool2d(2),                      # 8x8 -> 4x4
        nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(),
        poolext.MaxPool2d(3, stride=1, padding=1),  # overlapping windows
        poolext.AvgPool2d(2),                      # 4x4 -> 2x2
        nn.Flatten(), nn.Linear(8 * 2 * 2, 3),
    ).double()


def make_batches():
    g = torch.Generator().manual_seed(1234)
    xs = torch.randn(STEPS, BATCH, 1, 8, 8, generator=g, dtype=torch.float64)
    ys = torch.randint(0, 3, (STEPS, BATCH), generator=g)
    return xs, ys


def train(model, xs, ys, rank=0, world=1):
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    per = BATCH // world
    for x, y in zip(xs, ys):
        opt.zero_grad()
        lo, hi = rank * per, (rank + 1) * per
        TF.cross_entropy(model(x[lo:hi]), y[lo:hi]).backward()
        opt.step()


def worker(rank, init_file, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=WORLD)
    try:
        model = make_model(seed=rank)  # different start on each rank: DDP broadcasts rank 0's
        ddp = nn.parallel.DistributedDataParallel(model)
        xs, ys = make_batches()
        train(ddp, xs, ys, rank, WORLD)
        torch.save({k: v.detach().clone() for k, v in model.state_dict().items()},
                   os.path.join(out_dir, f"rank{rank}.pt"))
        # both ranks done before either tears gloo down: one rank destroying the group while
        # the other is still in it once aborted a worker in gloo ("terminate called without
        # an active exception"), under a loaded machine
        dist.barrier()
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_matches_single_process(tmp_path):
    ctx = mp.spawn(worker, args=(str(tmp_path / "rendezvous"), str(tmp_path)), nprocs=WORLD,
                   join=False)
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while not ctx.join(timeout=1):  # raises if a worker failed
            if time.monotonic() > deadline:
                pytest.fail(f"DDP workers still running after {TIMEOUT_S} s")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.terminate()
                p.join()

    ref = make_model(seed=0)
    init = {k: v.clone() for k, v in ref.state_dict().items()}
    xs, ys = make_batches()
    train(ref, xs, ys)
    want = ref.state_dict()

    got = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    for k in want:
        moved = (want[k] - init[k]).abs().max().item()
        assert moved > 1e-3, f"{k} hardly changed in training ({moved}): the check would be empty"
        for r in range(WORLD):
            torch.testing.assert_close(got[r][k], want[k], rtol=1e-10, atol=1e-12,
                                       msg=f"rank {r}, {k}")
