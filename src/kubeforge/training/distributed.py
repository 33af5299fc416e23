"""Process-group set-up from torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR/PORT).

Under torch elastic, a restarted worker group reuses the agent's TCPStore, which still
holds the previous attempt's keys; each attempt therefore works in its own store prefix,
and every collective has a timeout so a dead peer fails the group instead of hanging it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """True on rank 0, which writes checkpoints and the model."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when a process group with more than one rank is active."""
        return self.world_size > 1


def init_distributed(timeout_s: float) -> DistContext:
    """Join the process group described by the environment; a single process needs none."""
    rank = int(os.environ.get("RANK", "0"))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{local_rank}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    if world_size > 1:
        timeout = timedelta(seconds=timeout_s)
        agent_hosts_store = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
        store = dist.TCPStore(  # type: ignore[attr-defined]
            os.environ["MASTER_ADDR"],
            int(os.environ["MASTER_PORT"]),
            world_size,
            is_master=rank == 0 and not agent_hosts_store,
            timeout=timeout,
        )
        attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        dist.init_process_group(
            backend="nccl" if use_cuda else "gloo",
            store=dist.PrefixStore(f"attempt_{attempt}", store),  # type: ignore[attr-defined]
            rank=rank,
            world_size=world_size,
            timeout=timeout,
        )
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def shutdown_distributed(context: DistContext) -> None:
    """Leave the process group, if one was joined."""
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()


def all_mean(value: float, context: DistContext) -> float:
    """Average a scalar over all ranks."""
    if not context.distributed:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=context.device)
    dist.all_reduce(tensor)
    return float(tensor.item()) / context.world_size


def any_rank(flag: bool, context: DistContext) -> bool:
    """True on every rank when `flag` is true on at least one (a collective: all ranks call it together)."""
    if not context.distributed:
        return flag
    tensor = torch.tensor([1.0 if flag else 0.0], device=context.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item() > 0)


def gather_floats(value: float, context: DistContext) -> list[float]:
    """Collect one float from every rank, in rank order, exactly (float64)."""
    if not context.distributed:
        return [value]
    mine = torch.tensor([value], dtype=torch.float64, device=context.device)
    gathered = [torch.zeros_like(mine) for _ in range(context.world_size)]
    dist.all_gather(gathered, mine)
    return [float(item.item()) for item in gathered]


def gather_strings(value: str, context: DistContext) -> list[str]:
    """Collect one string from every rank, in rank order."""
    if not context.distributed:
        return [value]
    gathered: list[object] = [None] * context.world_size
    dist.all_gather_object(gathered, value)
    return [str(item) for item in gathered]


def barrier(context: DistContext) -> None:
    """Wait for every rank."""
    if context.distributed:
        dist.barrier()


__all__ = [
    "DistContext",
    "all_mean",
    "any_rank",
    "barrier",
    "gather_floats",
    "gather_strings",
    "init_distributed",
    "shutdown_distributed",
]
