"""MPGT: fine and coarse convolutional embeddings, MHSA-FFN-TCN-FFN blocks on each, a gated fusion.

Paper: "Multi-scale Progressive Gated Transformer for Physiological Signal Classification", ACML
2022. From the paper and the notes: multi-scale temporal feature extraction projects the signal
into a fine-grained (local waveform changes) and a coarse-grained (global trends) embedding, each
Conv-MaxPool-Conv-AvgPool; the progressive gated transformer stacks blocks of multi-head
self-attention, a feed-forward network, a temporal convolution network (TCN) and a second
feed-forward network; the branches are fused as x1 * sigmoid(tanh(fc(x1))) + x2, x1 the fine
branch and x2 the coarse one.

Our choices, where the paper's sizes were not available to us: both embeddings downsample 8x
(stride-2 convolution, 2x max-pool, convolution, 2x average-pool) so their tokens align for the
element-wise fusion, the fine one with 3-tap kernels (30 ms at 100 Hz), the coarse one with 15-tap
kernels (150 ms); width 128, 4 heads, two blocks per branch, FFN ratio 2; the TCN is a causal
3-tap convolution with dilation 2; pre-norm LayerNorm residuals as in the Transformer; no position
embedding (the convolutions and the TCN carry order); the fusion is applied once, to the two
branches' outputs.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ecglab.models._registry import register_model
from ecglab.models.layers import AvgPool1d, ClassifierHead, ClassifierMixin, ConvNormAct, MaxPool1d
from ecglab.models.layers.attention import KeyReduceAttention
from ecglab.models.layers.inception_next import Mlp


class Embedding(nn.Sequential):
    """Conv-MaxPool-Conv-AvgPool: (B, leads, L) -> (B, dim, L / 8)."""

    def __init__(self, in_chans: int, dim: int, kernel_size: int):
        super().__init__(
            ConvNormAct(in_chans, dim // 2, kernel_size, 2),
            MaxPool1d(2, 2, ceil_mode=True),
            ConvNormAct(dim // 2, dim, kernel_size),
            AvgPool1d(2, 2, ceil_mode=True),
        )


class CausalConv(nn.Module):
    """Temporal convolution network layer on (B, T, C): a dilated convolution that sees only the past, GELU."""

    def __init__(self, dim: int, kernel_size: int = 3, dilation: int = 2):
        super().__init__()
        self.pad = (kernel_size - 1) * dilation
        self.conv = nn.Conv1d(dim, dim, kernel_size, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.conv(F.pad(x.transpose(1, 2), (self.pad, 0)))).transpose(1, 2)


class PGTBlock(nn.Module):
    """MHSA, FFN, TCN, FFN on (B, T, C), each pre-normed with a residual connection."""

    def __init__(self, dim: int, num_heads: int = 4, mlp_ratio: float = 2.0):
        super().__init__()
        mixers = [
            KeyReduceAttention(dim, num_heads),
            Mlp(dim, mlp_ratio),
            CausalConv(dim),
            Mlp(dim, mlp_ratio),
        ]
        self.mixers = nn.ModuleList(mixers)
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in mixers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for norm, mixer in zip(self.norms, self.mixers, strict=True):
            x = x + mixer(norm(x))
        return x


class Branch(nn.Module):
    """An embedding and its stack of blocks: (B, leads, L) -> (B, T, dim)."""

    def __init__(self, in_chans: int, dim: int, kernel_size: int, depth: int, num_heads: int):
        super().__init__()
        self.embed = Embedding(in_chans, dim, kernel_size)
        self.blocks = nn.Sequential(*(PGTBlock(dim, num_heads) for _ in range(depth)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.embed(x).transpose(1, 2))


class GatedFusion(nn.Module):
    """x1 * sigmoid(tanh(fc(x1))) + x2 on (B, T, C) tokens, returned as a (B, C, T) map."""

    def __init__(self, dim: int):
        super().__init__()
        self.fc = nn.Linear(dim, dim)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        return (x1 * torch.sigmoid(torch.tanh(self.fc(x1))) + x2).transpose(1, 2)


class MPGT(ClassifierMixin, nn.Module):
    """Fine and coarse branches, gated fusion, average-pool classifier."""

    min_samples = 1

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 12,
        dim: int = 128,
        depth: int = 2,
        num_heads: int = 4,
        kernel_sizes=(3, 15),
        drop_rate: float = 0.0,
    ):
        super().__init__()
        self.fine = Branch(in_chans, dim, kernel_sizes[0], depth, num_heads)
        self.coarse = Branch(in_chans, dim, kernel_sizes[1], depth, num_heads)
        self.fusion = GatedFusion(dim)
        self.num_features = dim
        self.feature_info = [{"module": "fusion", "num_chs": dim, "reduction": 8}]
        self.head = ClassifierHead(dim, num_classes, drop_rate)
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.fusion(self.fine(x), self.coarse(x))


@register_model
def mpgt(num_classes, in_chans=12, **kwargs):
    """MPGT (ACML 2022): 3-tap and 15-tap embeddings, 2 MHSA-FFN-TCN-FFN blocks each, gated fusion."""
    return MPGT(num_classes, in_chans, **kwargs)
