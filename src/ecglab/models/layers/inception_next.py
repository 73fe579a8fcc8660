"""Convolutional token and channel mixers for (batch, time, channels) tensors.

Every block of InceptionFormer keeps its activations as (B, T, C), the layout linear layers and
LayerNorm want. Convolutions over time run as (1, k) Conv2d on a channels-last view of that same
memory (`ecglab.models.layers.conv`), so no copies are made, and on CPU this is 2-3x faster than a
depthwise Conv1d.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ecglab.models.layers.conv import channels_last_2d


class TimeConv(nn.Module):
    """A Conv1d over the time axis of a (B, T, C) tensor, run as a channels-last (1, k) Conv2d."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int,
        stride: int = 1,
        padding: int | None = None,
        groups: int = 1,
        bias: bool = True,
    ):
        super().__init__()
        padding = (kernel_size - 1) // 2 if padding is None else padding
        self.conv = nn.Conv2d(
            in_chs, out_chs, (1, kernel_size), (1, stride), (0, padding), groups=groups, bias=bias
        )
        self.conv.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(channels_last_2d(x.transpose(1, 2))).squeeze(2).transpose(1, 2)


def depthwise(dim: int, kernel_size: int) -> TimeConv:
    return TimeConv(dim, dim, kernel_size, groups=dim)


class InceptionDWConv1d(nn.Module):
    """Inception depthwise convolution: channel groups through kernels of different sizes, one group untouched.

    A quarter of the channels each sees kernels 3, 11 and 31 (0.03 s to 0.3 s at 100 Hz: a notch, a QRS,
    a T wave) and the last quarter passes through. Kernels summing to 45 reproduce the notes' parameter
    counts for stages 1 and 2 exactly; the split of that sum is our choice.
    """

    def __init__(self, dim: int, kernel_sizes: tuple[int, ...] = (3, 11, 31), branch_ratio: float = 0.25):
        super().__init__()
        gc = int(dim * branch_ratio)
        self.splits = (dim - gc * len(kernel_sizes),) + (gc,) * len(kernel_sizes)
        self.convs = nn.ModuleList(depthwise(gc, k) for k in kernel_sizes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity, *groups = torch.split(x, self.splits, dim=-1)
        return torch.cat([identity] + [conv(g) for conv, g in zip(self.convs, groups, strict=True)], dim=-1)


class SqueezeExcite1d(nn.Module):
    """Squeeze-and-excitation: re-weight channels by a gate computed from their mean over time."""

    def __init__(self, dim: int, reduction: int = 4):
        super().__init__()
        self.fc1 = nn.Linear(dim, dim // reduction)
        self.fc2 = nn.Linear(dim // reduction, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.fc2(F.gelu(self.fc1(x.mean(dim=1, keepdim=True))))
        return x * gate.sigmoid()


class ChannelsFirst(nn.Module):
    """Apply a (B, T, C) module to a (B, C, T) feature map, so CNNs share the token-layout gates."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x.transpose(1, 2)).transpose(1, 2)


class CoordAttention1d(nn.Module):
    """Coordinate attention for signals: one gate per channel and one per (time, channel).

    2-D coordinate attention pools along each axis, transforms both with a shared layer and splits them
    into direction-aware gates. A signal has one axis, so the two descriptors are the time-pooled
    channel vector and the unpooled sequence: the block re-weights channels and time steps together.
    """

    def __init__(self, dim: int, reduction: int = 8):
        super().__init__()
        hidden = max(8, dim // reduction)
        self.reduce = nn.Linear(dim, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.gate_c = nn.Linear(hidden, dim)
        self.gate_t = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([x.mean(dim=1, keepdim=True), x], dim=1)
        y = F.gelu(self.norm(self.reduce(y)))
        return x * self.gate_c(y[:, :1]).sigmoid() * self.gate_t(y[:, 1:]).sigmoid()


class ConvModulation(nn.Module):
    """Convolutional modulation (Conv2Former): a large-kernel depthwise branch gates a linear value branch."""

    def __init__(self, dim: int, kernel_size: int = 11):
        super().__init__()
        self.a = nn.Linear(dim, dim)
        self.a_conv = depthwise(dim, kernel_size)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.a_conv(F.gelu(self.a(x))) * self.v(x))


class Mlp(nn.Module):
    """Linear, GELU, linear. Ratio 2 by default: the notes' parameter counts imply it, not ViT's 4."""

    def __init__(self, dim: int, ratio: float = 2.0):
        super().__init__()
        hidden = int(dim * ratio)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class GluMlp(nn.Module):
    """Gated linear unit channel mixer; the hidden width is 2/3 of the plain MLP's, so weights match."""

    def __init__(self, dim: int, ratio: float = 2.0):
        super().__init__()
        hidden = int(round(dim * ratio * 2 / 3))
        self.fc1 = nn.Linear(dim, 2 * hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.fc1(x).chunk(2, dim=-1)
        return self.fc2(a * F.gelu(b))


class DWMlp(nn.Module):
    """MLP with a depthwise convolution (kernel 3) after the expansion: local context in the channel mixer."""

    def __init__(self, dim: int, ratio: float = 2.0):
        super().__init__()
        hidden = int(dim * ratio)
        self.fc1 = nn.Linear(dim, hidden)
        self.dw = depthwise(hidden, 3)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.dw(self.fc1(x))))


CHANNEL_MIXERS = {"mlp": Mlp, "glu": GluMlp, "dwffn": DWMlp}


def channel_mixer(kind: str, dim: int, ratio: float) -> nn.Module:
    if kind not in CHANNEL_MIXERS:
        raise ValueError(f"unknown channel mixer {kind!r}; choose one of {', '.join(CHANNEL_MIXERS)}")
    return CHANNEL_MIXERS[kind](dim, ratio)
