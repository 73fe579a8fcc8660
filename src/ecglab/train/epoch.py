"""One training epoch on any device and precision: micro-batches, accumulation, clipping, loss scaling.

`run_epoch` takes the loss as a callable of the batch's tensors, so supervised training
(`loop.train_one_epoch`) and self-supervised pretraining share the same optimizer steps.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext

import torch
from torch import nn

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(device: torch.device, precision: str) -> None:
    if precision == "fp16" and device.type == "cpu":
        raise ValueError(
            "precision fp16 is for GPUs (autocast with a gradient scaler); on the CPU use precision bf16"
        )


def autocast(device: torch.device, precision: str):
    """Mixed precision for the forward pass and the loss; fp32 is a no-op context."""
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device.type, dtype=AUTOCAST_DTYPES[precision])


class Stepper:
    """Turns accumulated gradients into one optimizer step: unscale (fp16), clip, step, update the scale."""

    def __init__(
        self,
        optimizer,
        device: torch.device,
        precision: str = "fp32",
        accum_steps: int = 1,
        clip_grad_norm: float | None = None,
    ):
        check_precision(device, precision)
        self.optimizer, self.device, self.precision = optimizer, device, precision
        self.accum_steps, self.clip_grad_norm = accum_steps, clip_grad_norm
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")

    def backward(self, loss: torch.Tensor) -> None:
        self.scaler.scale(loss / self.accum_steps if self.accum_steps > 1 else loss).backward()

    def step(self, model: nn.Module) -> None:
        if self.clip_grad_norm is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), self.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def state_dict(self) -> dict:
        """The fp16 loss scale and its growth counter (empty otherwise): part of the resume state."""
        return self.scaler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        if state and self.scaler.is_enabled():
            self.scaler.load_state_dict(state)


def run_epoch(
    model: nn.Module,
    loader,
    batch_loss: Callable[..., torch.Tensor],
    stepper: Stepper,
    max_steps: int | None = None,
    on_step: Callable[[], None] | None = None,
) -> float:
    """Train one epoch; returns the mean loss per item.

    Each optimizer step sums the gradients of `stepper.accum_steps` micro-batches (trailing
    micro-batches that make no whole step are left out); `batch_loss(*tensors)` gets one
    micro-batch on the device and runs under autocast. Under DDP, gradients are all-reduced
    once per step, on its last micro-batch.
    """
    model.train()
    accum = stepper.accum_steps
    steps = len(loader) // accum if max_steps is None else min(max_steps, len(loader) // accum)
    total = torch.zeros((), dtype=torch.float64, device=stepper.device)
    seen = 0
    batches = iter(loader)
    for _ in range(steps):
        stepper.optimizer.zero_grad(set_to_none=True)
        for micro in range(accum):
            tensors = [t.to(stepper.device, non_blocking=True) for t in next(batches)]
            sync = micro == accum - 1 or not hasattr(model, "no_sync")
            with nullcontext() if sync else model.no_sync():
                with autocast(stepper.device, stepper.precision):
                    loss = batch_loss(*tensors)
                stepper.backward(loss)
            total += loss.detach().double() * len(tensors[0])
            seen += len(tensors[0])
        stepper.step(model)
        if on_step:
            on_step()
    return total.item() / max(seen, 1)
