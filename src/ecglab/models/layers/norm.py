"""Batch normalisation for (batch, time, channels) token tensors, and a LayerNorm -> BatchNorm converter.

Why InceptionFormer normalises over the batch and time by default: a LayerNorm normalises each time
step on its own, so a flat baseline sample comes out as large as a QRS complex. Blocks then see
amplitude-free tokens, and a rhythm label (when, and how regularly, beats occur) is hard to read from
them. On the PTB-XL subset's rhythm task a LayerNorm InceptionFormer kept its training loss at the
label prior; the same model with BatchNorm (as InceptionNeXt and LeViT use) fit the training set
(`benchmarks/trainability.py`; figures in docs/benchmarks.md).
"""

from __future__ import annotations

import torch
import torch.nn as nn


class TokenBatchNorm(nn.BatchNorm1d):
    """BatchNorm over the channels (last axis) of a (..., C) tensor; statistics over every other axis."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).view(x.shape)


def layernorm_to_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every channel LayerNorm in `module` by a TokenBatchNorm with its affine weights (in place)."""
    if isinstance(module, nn.LayerNorm) and len(module.normalized_shape) == 1:
        norm = TokenBatchNorm(module.normalized_shape[0], eps=module.eps, affine=module.elementwise_affine)
        if module.elementwise_affine:
            with torch.no_grad():
                norm.weight.copy_(module.weight)
                norm.bias.copy_(module.bias)
        return norm
    for name, child in module.named_children():
        module.add_module(name, layernorm_to_batchnorm(child))
    return module
