"""Attention relevance for InceptionFormer models: where in time the attention stages look.

Each attention map (B, heads, T, T) is averaged over heads, then over queries: the attention each
time step receives. Uniform attention gives every step 1/T, so the relevance is the excess over that
share, ReLU(T * received - 1): a step counts only when attention gathers on it. Maps of every chosen
stage are stretched to the input length, averaged, and divided by their maximum.
"""

from __future__ import annotations

import re

import numpy as np
import torch
import torch.nn as nn

from ecglab.explain.gradcam import Prepare, model_device, normalize_map, stitch, stretch

_STAGE = re.compile(r"^stages\.(\d+)\.")


def has_attention(model: nn.Module) -> bool:
    return hasattr(model, "set_attention_capture") and hasattr(model, "attention_maps")


def _captured_maps(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    model.set_attention_capture(True)
    try:
        with torch.no_grad():
            model(x)
        return model.attention_maps()
    finally:
        model.set_attention_capture(False)


def attention_stages(model: nn.Module, leads: int, samples: int) -> list[int]:
    """The indices of the stages that hold attention, found by one forward pass on zeros."""
    maps = _captured_maps(model, torch.zeros(1, leads, samples, device=model_device(model)))
    return sorted({int(m.group(1)) for m in map(_STAGE.match, maps) if m})


def received_attention(attn: torch.Tensor) -> torch.Tensor:
    """(B, heads, T, T) -> (B, T): attention received by each step above the uniform share, >= 0."""
    received = attn.float().mean(dim=1).mean(dim=1)
    return torch.relu(received * attn.shape[-1] - 1.0)


def raw_attention(model: nn.Module, x: torch.Tensor, stages: list[int] | None = None) -> torch.Tensor:
    """Unnormalised attention relevance of a batch (B, leads, samples) -> (B, samples)."""
    if not has_attention(model):
        raise ValueError(
            f"{type(model).__name__}: no attention maps to draw (only InceptionFormer models capture them); "
            "use Grad-CAM instead"
        )
    maps = _captured_maps(model, x)
    found = {name: int(m.group(1)) for name in maps if (m := _STAGE.match(name))}
    chosen = [name for name, stage in found.items() if stages is None or stage in stages]
    if not chosen:
        have = sorted(set(found.values()))
        raise ValueError(
            f"{type(model).__name__}: no attention in stage(s) {stages}; attention stages: {have}"
        )
    parts = [stretch(received_attention(maps[name]), x.shape[-1]) for name in chosen]
    return torch.stack(parts).mean(dim=0)


def attention_relevance(
    model: nn.Module,
    x: np.ndarray | torch.Tensor,
    stages: list[int] | None = None,
    *,
    window: int | None = None,
    stride: int | None = None,
    prepare: Prepare | None = None,
) -> np.ndarray:
    """Attention relevance of one record (leads, samples) -> (samples,) in [0, 1]; all attention stages by default.

    Attention does not depend on the class: it shows where the model looks, not what for.
    """
    device = model_device(model)
    relevance = stitch(lambda b: raw_attention(model, b.to(device), stages), x, window, stride, prepare)
    return normalize_map(relevance)
