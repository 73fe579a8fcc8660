"""Which torch device a command runs on: one resolver for train, bench, predict, explain and serve."""

from __future__ import annotations

import re

import torch

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"
_SPEC = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def available_devices() -> list[str]:
    """The devices this machine offers, in the spelling `resolve_device` accepts."""
    found = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        found.append("mps")
    return found


def check_device_spec(spec: str) -> None:
    """A spelling error in a recipe is caught when the recipe is read, before any data is prepared."""
    if not isinstance(spec, str) or not _SPEC.match(spec):
        raise ValueError(f"device: {spec!r} is not one of {DEVICE_CHOICES}")


def resolve_device(spec: str = "auto", local_rank: int | None = None) -> torch.device:
    """`auto` -> the local CUDA GPU if there is one, else the CPU (`mps` only when asked: some ops
    lack MPS kernels). With several processes (`local_rank` given) `auto` and `cuda` bind
    `cuda:LOCAL_RANK`, one GPU per process.

    A device this machine lacks is an error naming it and the ones it has.
    """
    check_device_spec(spec)
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cuda":
        spec = f"cuda:{local_rank or 0}"
    elif spec.startswith("cuda:") and local_rank is not None:
        raise ValueError(
            f"device: {spec!r} under torchrun would put every process on one GPU; "
            "use `cuda` or `auto` (each process binds cuda:LOCAL_RANK)"
        )
    if spec not in available_devices():
        raise ValueError(
            f"device {spec!r} does not exist on this machine; available: {', '.join(available_devices())}"
        )
    return torch.device(spec)
