"""torch.distributed set-up for runs launched by torchrun: one device per process, NCCL on CUDA, gloo on the CPU."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta

import torch
import torch.distributed as dist

from ecglab.devices import resolve_device

# Rank 0 validates, predicts and evaluates alone while the others wait in a collective: longer
# than NCCL's 10-minute default, so a final evaluation with bootstrap intervals fits.
WAIT = timedelta(minutes=60)


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.size > 1:
            dist.barrier()


def init_world(device: str = "auto") -> World:
    """Join the process group when torchrun set WORLD_SIZE > 1 and bind this process's device.

    Under torchrun `auto` and `cuda` bind cuda:LOCAL_RANK; the backend follows the device.
    """
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World(device=resolve_device(device))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    bound = resolve_device(device, local_rank=local_rank)
    if bound.type == "cuda":
        torch.cuda.set_device(bound)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if bound.type == "cuda" else "gloo", timeout=WAIT)
    return World(dist.get_rank(), dist.get_world_size(), local_rank, bound)


def parallel(model: torch.nn.Module, world: World) -> torch.nn.Module:
    """The module that trains: `model` wrapped in DistributedDataParallel when there are several processes."""
    if world.size == 1:
        return model
    device_ids = [world.device.index] if world.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def close_world(world: World) -> None:
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()


def mean_over_world(value: float, world: World) -> float:
    if world.size == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=world.device)
    dist.all_reduce(t)
    return float(t.item()) / world.size


def from_main(values: list[float], world: World) -> list[float]:
    """Rank 0's values on every process (what rank 0 alone evaluated, so all stop together)."""
    if world.size == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=world.device)
    dist.broadcast(t, src=0)
    return t.tolist()


def micro_batch_size(batch_size: int, world_size: int, accum_steps: int) -> int:
    """Each process's batch per forward pass; `batch_size` is the global batch of one optimizer step."""
    parts = world_size * accum_steps
    if batch_size % parts:
        raise ValueError(
            f"batch_size {batch_size} is not divisible by {world_size} process(es) x {accum_steps} "
            f"accumulation step(s) = {parts}; choose a batch_size that is a multiple of {parts}"
        )
    return batch_size // parts
