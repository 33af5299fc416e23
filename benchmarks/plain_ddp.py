"""The peer: a plain, hand-written PyTorch DDP training loop, run under torchrun.

    torchrun --nproc-per-node N benchmarks/plain_ddp.py FEATURES.pt EPOCHS BATCH OUT.json

Same model class, optimizer, data and per-rank batch as the engine; rows are shuffled each
epoch and split across ranks by index, the cheapest way to feed tensors already in memory.
Rank 0 writes samples/s per epoch (all ranks) to OUT.json.
"""

from __future__ import annotations

import json
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from kubeforge.training.models import TabularMLP


def main() -> None:
    features_path, epochs, batch, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    data = torch.load(features_path)
    features, targets = data["features"], data["targets"]
    torch.manual_seed(0)
    model = DistributedDataParallel(TabularMLP(features.shape[1], int(targets.max()) + 1, [64, 32], 0.1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    rates = []
    for epoch in range(epochs):
        order = torch.randperm(len(features), generator=torch.Generator().manual_seed(epoch))
        mine = order[rank::world]
        model.train()
        started = time.perf_counter()
        for start in range(0, len(mine), batch):
            index = mine[start : start + batch]
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(features[index]), targets[index])
            loss.backward()
            optimizer.step()
        rates.append(len(mine) * world / (time.perf_counter() - started))
    if rank == 0:
        with open(out, "w") as handle:
            json.dump({"samples_per_second": rates, "world_size": world, "pid": os.getpid()}, handle)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
